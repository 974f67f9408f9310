package tokenexchange

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestKeyFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "SIGNING_KEY")
	var changes []string
	k := NewKeyFile(path, nil, func(fp string) { changes = append(changes, fp) })
	if k.Ready() == nil || k.current() != nil {
		t.Fatal("a missing file gave a key")
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Bytes are kept verbatim (InsForge's JWT_SECRET is the Secret's value as it is).
	write("secret-one\n")
	if err := k.Reload(); err != nil || string(k.current().secret) != "secret-one\n" {
		t.Fatalf("Reload: %v", err)
	}
	if err := k.Reload(); err != nil || len(changes) != 1 { // unchanged: no notification
		t.Fatalf("changes %v, %v", changes, err)
	}
	for _, bad := range []string{"", " \n\t", strings.Repeat("k", maxKeyBytes+1)} {
		write(bad)
		if err := k.Reload(); err == nil || k.current() != nil || k.Ready() == nil {
			t.Errorf("%d-byte file: key still loaded", len(bad))
		}
	}
	write("secret-two")
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	want := []string{Fingerprint([]byte("secret-one\n")), "", Fingerprint([]byte("secret-two"))}
	if strings.Join(changes, ",") != strings.Join(want, ",") {
		t.Errorf("changes %v; want %v", changes, want)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{12}$`).MatchString(k.Fingerprint()) {
		t.Errorf("fingerprint %q", k.Fingerprint())
	}
}

func TestMintedTokenShape(t *testing.T) {
	tok, err := mint(Minted{Sub: "u", Role: RoleAuthenticated, Aud: "insforge-api", Iat: 1, Exp: 2}, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" ||
		parts[1] != "eyJzdWIiOiJ1Iiwicm9sZSI6ImF1dGhlbnRpY2F0ZWQiLCJhdWQiOiJpbnNmb3JnZS1hcGkiLCJpYXQiOjEsImV4cCI6Mn0" {
		t.Errorf("minted %s", tok)
	}
}
