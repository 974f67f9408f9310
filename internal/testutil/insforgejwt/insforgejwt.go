// Package insforgejwt signs HS256 tokens the way Clerk and Auth0 do with a custom key, and
// verifies them the way InsForge's verifyToken does with JWT_SECRET (token.manager.ts): HS256
// only, signature, exp and nbf checked (jsonwebtoken's defaults), sub required, aud and iss not
// checked, a missing role read as "authenticated". Tests use it to prove a provider's token is
// one InsForge accepts, and with which role.
package insforgejwt

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultRole is the role InsForge assumes for a token without one.
const DefaultRole = "authenticated"

// Sign returns a compact HS256 JWT of claims, keyed with key's bytes (as jsonwebtoken uses a
// string secret).
func Sign(key []byte, claims map[string]any) (string, error) {
	head, err := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(head) + "." + enc.EncodeToString(body)
	return signing + "." + enc.EncodeToString(mac(key, signing)), nil
}

func mac(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// Identity is what InsForge takes from a verified token.
type Identity struct {
	Sub, Email, Role string
}

// Verify checks token with key at time now and returns the identity InsForge would see and all
// claims.
func Verify(token string, key []byte, now time.Time) (Identity, map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Identity{}, nil, errors.New("not a compact JWS")
	}
	enc := base64.RawURLEncoding
	var head struct {
		Alg string `json:"alg"`
	}
	rawHead, err := enc.DecodeString(parts[0])
	if err != nil || json.Unmarshal(rawHead, &head) != nil {
		return Identity{}, nil, errors.New("malformed header")
	}
	if head.Alg != "HS256" {
		return Identity{}, nil, fmt.Errorf("algorithm %q is not HS256", head.Alg)
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac(key, parts[0]+"."+parts[1])) {
		return Identity{}, nil, errors.New("invalid signature")
	}
	rawBody, err := enc.DecodeString(parts[1])
	if err != nil {
		return Identity{}, nil, errors.New("malformed payload")
	}
	var claims map[string]any
	if err := json.Unmarshal(rawBody, &claims); err != nil {
		return Identity{}, nil, errors.New("malformed payload")
	}
	unix := float64(now.Unix())
	if exp, ok := claims["exp"].(float64); ok && unix >= exp {
		return Identity{}, nil, errors.New("jwt expired")
	}
	if nbf, ok := claims["nbf"].(float64); ok && unix < nbf {
		return Identity{}, nil, errors.New("jwt not active")
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return Identity{}, nil, errors.New("token has no sub")
	}
	id := Identity{Sub: sub, Role: DefaultRole}
	id.Email, _ = claims["email"].(string)
	if r, ok := claims["role"].(string); ok && r != "" {
		id.Role = r
	}
	return id, claims, nil
}
