package tokenexchange

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// RoleAuthenticated is the only role the exchange mints. InsForge takes the role from the token
// and project_admin bypasses row-level security, so it is a constant, never read from the
// provider token.
const RoleAuthenticated = "authenticated"

// mintedHeader is base64url({"alg":"HS256","typ":"JWT"}); InsForge verifies HS256 tokens with
// JWT_SECRET whatever their kid, so none is set.
var mintedHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// Minted are the claims of an InsForge token. InsForge reads sub, email and role.
type Minted struct {
	Sub   string `json:"sub"`
	Role  string `json:"role"`
	Aud   string `json:"aud"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
	Email string `json:"email,omitempty"`
	Iss   string `json:"iss,omitempty"`
}

// mint signs claims with HS256.
func mint(c Minted, secret []byte) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("minting: %w", err)
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(mintedHeader)+1+enc.EncodedLen(len(payload))+1+43)
	buf = append(buf, mintedHeader...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := jwt.SigningMethodHS256.Sign(string(buf), secret)
	if err != nil {
		return "", fmt.Errorf("minting: %w", err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// claimsFor builds the InsForge claims for a verified identity at now: the lifetime never
// outlives the provider token. ok is false when less than a second of it is left.
func claimsFor(id Identity, now time.Time, lifetime time.Duration, aud, iss string) (Minted, bool) {
	exp := now.Add(lifetime)
	if id.Expires.Before(exp) {
		exp = id.Expires
	}
	iat, e := now.Unix(), exp.Unix()
	if e-iat < 1 {
		return Minted{}, false
	}
	return Minted{Sub: id.Subject, Role: RoleAuthenticated, Aud: aud, Iat: iat, Exp: e, Email: id.Email, Iss: iss}, true
}
