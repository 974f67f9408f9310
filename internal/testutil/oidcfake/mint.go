package oidcfake

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintOptions choose how a token is signed.
type MintOptions struct {
	// Alg picks the tenant's current key for that algorithm (default RS256); ignored when Key is
	// set.
	Alg string
	// Key signs the token (default: the tenant's current key for Alg). It may be another
	// tenant's key, for issuer-confusion tests.
	Key *Key
	// KID overrides the header kid (default: the key's); NoKID leaves kid out.
	KID   string
	NoKID bool
	// Header adds header parameters.
	Header map[string]any
}

// Claims are valid claims of the tenant for sub: iss, sub, iat now, exp in ten minutes. Mods
// change them.
func (t *Tenant) Claims(sub string, mods ...func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": t.Issuer, "sub": sub, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	for _, m := range mods {
		m(c)
	}
	return c
}

// Set sets a claim (nil deletes it).
func Set(name string, v any) func(map[string]any) {
	return func(c map[string]any) {
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
	}
}

// Expired moves exp (and iat) into the past by d.
func Expired(d time.Duration) func(map[string]any) {
	return func(c map[string]any) {
		now := time.Now()
		c["iat"], c["exp"] = now.Add(-d-time.Hour).Unix(), now.Add(-d).Unix()
	}
}

// Mint signs claims as the tenant (or with o.Key).
func (t *Tenant) Mint(claims map[string]any, o MintOptions) string {
	t.srv.tb.Helper()
	k := o.Key
	if k == nil {
		alg := o.Alg
		if alg == "" {
			alg = RS256
		}
		if k = t.Key(alg); k == nil {
			t.srv.tb.Fatalf("oidcfake: tenant %s has no %s key", t.Host, alg)
		}
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.Alg), jwt.MapClaims(claims))
	switch {
	case o.NoKID:
	case o.KID != "":
		tok.Header["kid"] = o.KID
	default:
		tok.Header["kid"] = k.KID
	}
	maps.Copy(tok.Header, o.Header)
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.srv.tb.Fatalf("oidcfake: signing: %v", err)
	}
	return s
}

// AlgNone is an unsigned token: header {"alg":"none"} and an empty signature.
func AlgNone(claims map[string]any) string {
	return segment(map[string]any{"alg": "none", "typ": "JWT"}) + "." + segment(claims) + "."
}

// HS256 signs claims with an HMAC secret: with a public key's PEM or JWK bytes as the secret,
// it is the algorithm-confusion forgery. kid is set when not empty.
func HS256(claims map[string]any, secret []byte, kid string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims))
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(secret)
	if err != nil {
		panic(err)
	}
	return s
}

func segment(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}
