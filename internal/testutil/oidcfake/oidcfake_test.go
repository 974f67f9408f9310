package oidcfake

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func get(t *testing.T, c *http.Client, url string) (int, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Real provider URLs reach the fake over TLS, each host its own tenant, and tokens verify with
// the published keys.
func TestTenantsByHostOverTLS(t *testing.T) {
	s := New(t, Options{TLS: true})
	a := s.Tenant("api.workos.com", TenantOptions{JWKSPaths: []string{"/sso/jwks/client_x"}, Algs: []string{ES256}})
	b := s.Tenant("acme.kinde.com", TenantOptions{JWKSPaths: []string{"/.well-known/jwks"}, Algs: []string{EdDSA}})
	c := s.Client()
	code, body := get(t, c, "https://api.workos.com/sso/jwks/client_x")
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(body, &set); code != 200 || err != nil || len(set.Keys) != 1 || set.Keys[0]["kid"] != a.Key(ES256).KID {
		t.Fatalf("workos JWKS: %d %s", code, body)
	}
	if code, _ := get(t, c, "https://acme.kinde.com/sso/jwks/client_x"); code != 404 {
		t.Errorf("another tenant's path: %d", code)
	}
	if code, _ := get(t, c, "https://unknown.example.com/.well-known/jwks.json"); code != 404 {
		t.Errorf("unknown host: %d", code)
	}
	if a.Fetches() != 1 || b.Fetches() != 0 || s.Fetches() != 1 {
		t.Errorf("fetches %d %d %d", a.Fetches(), b.Fetches(), s.Fetches())
	}
	if a.Issuer != "https://api.workos.com" {
		t.Errorf("issuer %s", a.Issuer)
	}
	// The default client does not trust the fake's CA.
	if _, err := http.Get(s.URL()); err == nil {
		t.Error("an untrusting client got through")
	}
	b.Rotate(EdDSA)
	for _, k := range b.Keys() {
		tok := b.Mint(b.Claims("u"), MintOptions{Key: k})
		parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return k.Public, nil }, jwt.WithValidMethods([]string{"EdDSA"}))
		if err != nil || parsed.Header["kid"] != k.KID {
			t.Fatalf("minted token: %v", err)
		}
	}
	if n := len(b.Keys()); n != 2 {
		t.Errorf("%d keys after a rotation", n)
	}
}

func TestForgedTokens(t *testing.T) {
	s := New(t, Options{})
	ten := s.Tenant("127.0.0.1", TenantOptions{Algs: []string{RS256}})
	k := ten.Key(RS256)
	if _, err := jwt.Parse(AlgNone(ten.Claims("u")), func(*jwt.Token) (any, error) { return jwt.UnsafeAllowNoneSignatureType, nil }); err != nil {
		t.Errorf("alg none token: %v", err)
	}
	tok := HS256(ten.Claims("u"), k.PublicPEM(), k.KID)
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return k.PublicPEM(), nil }); err != nil {
		t.Errorf("HS256 with the PEM: %v", err)
	}
	if code, _ := get(t, s.Client(), ten.JWKSURL()); code != 200 {
		t.Errorf("plain HTTP JWKS: %d", code)
	}
}
