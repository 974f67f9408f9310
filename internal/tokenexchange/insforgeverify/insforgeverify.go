// Package insforgeverify checks a token the way InsForge's backend does (verifyToken in
// backend/src/infra/security/token.manager.ts): HS256 with JWT_SECRET only, exp and nbf checked
// when present, sub required, aud and iss ignored, role defaulting to "authenticated". Tests of
// the exchange and of the controller use it to show that a minted token is one InsForge takes.
package insforgeverify

import (
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the three values InsForge keeps of a token.
type Claims struct {
	Sub   string
	Email string
	Role  string
}

// Verify checks token with key as InsForge does and returns what InsForge would keep.
func Verify(token string, key []byte) (Claims, error) {
	if len(key) == 0 {
		return Claims{}, errors.New("insforgeverify: empty key")
	}
	var mc jwt.MapClaims
	// jsonwebtoken's verify: the algorithm list is the only header check; exp and nbf are
	// checked when present, without leeway; iat is not.
	_, err := jwt.ParseWithClaims(token, &mc, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		return Claims{}, fmt.Errorf("insforgeverify: %w", err)
	}
	sub, _ := mc["sub"].(string)
	if sub == "" {
		return Claims{}, errors.New("insforgeverify: sub is required")
	}
	c := Claims{Sub: sub, Role: "authenticated"}
	if e, ok := mc["email"].(string); ok {
		c.Email = e
	}
	if r, ok := mc["role"].(string); ok && r != "" {
		c.Role = r
	}
	return c, nil
}
