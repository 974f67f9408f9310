package jwtsecret

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// Keys of the Secret.
const (
	// KeyCurrent signs new tokens.
	KeyCurrent = "JWT_SECRET"
	// KeyPrevious is the key being retired, kept during the grace period so that consumers that
	// accept two keys can still verify tokens signed before the rotation.
	KeyPrevious = "JWT_SECRET_PREVIOUS"
)

// SecretBytes is the entropy of a generated secret: 256 bits, the HS256 key size.
const SecretBytes = 32

// MinLength is the shortest JWT_SECRET PostgREST accepts.
const MinLength = 32

// Generate returns a new secret read from r (crypto/rand.Reader when nil): 32 random bytes as 64
// lowercase hex characters. InsForge, PostgREST and jsonwebtoken use the secret's characters as
// the HMAC key, not a decoding of them, so hex loses nothing, keeps the 32-character minimum of
// PostgREST, and survives copy and paste into the Clerk and Auth0 dashboards, shell variables and
// URLs without quoting.
func Generate(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, SecretBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("reading randomness for a JWT secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// NewSecret generates a secret from crypto/rand; it is the generator Decide is normally given.
func NewSecret() (string, error) { return Generate(nil) }

// Fingerprint identifies a secret in status and events without revealing it: "sha256:" and the
// first 12 hex characters of its SHA-256. An empty value has no fingerprint.
func Fingerprint(value string) string {
	if value == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(value))
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}
