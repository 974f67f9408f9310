package jwtsecret

import (
	"bytes"
	"errors"
	"regexp"
	"testing"
	"testing/iotest"
)

func TestGenerate(t *testing.T) {
	a, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(nil)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(a) || a == b {
		t.Fatalf("generated %q and %q, want two distinct 64-hex-character secrets", a, b)
	}
	if len(a) < MinLength {
		t.Fatalf("secret shorter than PostgREST's minimum")
	}
	fixed, err := Generate(bytes.NewReader(bytes.Repeat([]byte{0xab}, 40)))
	if err != nil || fixed != string(bytes.Repeat([]byte("ab"), 32)) {
		t.Fatalf("Generate(reader) = %q, %v: want 32 bytes read as hex", fixed, err)
	}
	if _, err := Generate(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Fatal("a failing reader produced a secret")
	}
	if _, err := Generate(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("a short read produced a secret")
	}
}

func TestFingerprint(t *testing.T) {
	// SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
	if got := Fingerprint("abc"); got != "sha256:ba7816bf8f01" {
		t.Fatalf("Fingerprint(abc) = %q", got)
	}
	if Fingerprint("") != "" {
		t.Fatal("empty value has a fingerprint")
	}
}
