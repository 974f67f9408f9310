package insforgejwt

import (
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	tok, err := Sign(key, map[string]any{"sub": "user_1", "exp": now.Unix() + 60, "nbf": now.Unix() - 5})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := Verify(tok, key, now)
	if err != nil || id.Sub != "user_1" || id.Role != DefaultRole {
		t.Fatalf("Verify = %+v, %v; want sub user_1 and the default role", id, err)
	}
	cases := map[string]struct {
		tok string
		key []byte
		at  time.Time
	}{
		"wrong key":  {tok, []byte("another key of enough length!!!!"), now},
		"expired":    {tok, key, now.Add(time.Minute)},
		"not yet":    {tok, key, now.Add(-time.Minute)},
		"tampered":   {tok[:len(tok)-2] + "AA", key, now},
		"not a jwt":  {"abc", key, now},
		"other alg":  {"eyJhbGciOiJub25lIn0." + strings.Split(tok, ".")[1] + ".", key, now},
		"sub absent": {mustSign(t, key, map[string]any{"role": "authenticated"}), key, now},
	}
	for name, c := range cases {
		if _, _, err := Verify(c.tok, c.key, c.at); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func mustSign(t *testing.T, key []byte, claims map[string]any) string {
	t.Helper()
	tok, err := Sign(key, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
