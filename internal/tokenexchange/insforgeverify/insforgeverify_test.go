package insforgeverify

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func sign(t *testing.T, m any, claims jwt.MapClaims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m.(jwt.SigningMethod), claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyMirrorsInsForge(t *testing.T) {
	key := []byte("insforge-jwt-secret-0123456789abcdef")
	exp := time.Now().Add(time.Minute).Unix()
	// role defaults to authenticated; email is kept; aud and iss are not checked.
	c, err := Verify(sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1", "exp": exp, "aud": "anything", "iss": "x"}, key), key)
	if err != nil || c != (Claims{Sub: "u1", Role: "authenticated"}) {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = Verify(sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1", "role": "project_admin", "email": "a@b"}, key), key)
	if err != nil || c != (Claims{Sub: "u1", Role: "project_admin", Email: "a@b"}) {
		t.Fatalf("%+v %v", c, err)
	}
	for name, tok := range map[string]string{
		"no sub":     sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp}, key),
		"empty sub":  sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": ""}, key),
		"expired":    sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(-time.Second).Unix()}, key),
		"nbf":        sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u", "nbf": time.Now().Add(time.Minute).Unix()}, key),
		"HS512":      sign(t, jwt.SigningMethodHS512, jwt.MapClaims{"sub": "u"}, key),
		"other key":  sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u"}, []byte("another-secret")),
		"not a JWT":  "x.y.z",
		"empty":      "",
		"alg none":   "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.",
		"sub number": sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": 7}, key),
	} {
		if _, err := Verify(tok, key); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
