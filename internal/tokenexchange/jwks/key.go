package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// RSA modulus bounds: below 2048 bits a key is too weak to trust; above 8192 every verification
// gets expensive, which a hostile JWKS could use to slow the exchange down.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// Key is one usable public key of a set.
type Key struct {
	// ID is the JWK's kid ("" when absent).
	ID string
	// Alg is the JWK's alg member ("" when absent): when set, the key serves only that algorithm.
	Alg string
	// Public is *rsa.PublicKey, *ecdsa.PublicKey (P-256 or P-384) or ed25519.PublicKey.
	Public crypto.PublicKey
}

// Fits reports whether the key may verify a token signed with alg: the key type (and curve) must
// be the one alg uses, and the JWK's own alg, when present, must be alg. This is what stops a
// token from choosing how its key is used.
func (k *Key) Fits(alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return (alg == "ES256" && pub.Curve == elliptic.P256()) || (alg == "ES384" && pub.Curve == elliptic.P384())
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// rawJWK holds the JWK members the exchange reads (RFC 7517, RFC 7518 §6, RFC 8037).
type rawJWK struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// errSkip marks a key that is fine but not for us (an encryption key, an unknown type).
var errSkip = errors.New("not a signature verification key")

// parseSet decodes a JWK Set. Keys that are not for signature verification are skipped, and so
// are malformed ones (one bad key must not take the provider's other keys down); the set is an
// error only when it is not a JWK Set at all or has no usable key.
func parseSet(body []byte) ([]*Key, []error, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	var (
		keys    []*Key
		skipped []error
	)
	for i, raw := range doc.Keys {
		k, err := parseKey(raw)
		switch {
		case errors.Is(err, errSkip):
		case err != nil:
			skipped = append(skipped, fmt.Errorf("keys[%d]: %w", i, err))
		default:
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("no usable signature key among %d keys", len(doc.Keys))
	}
	return keys, skipped, nil
}

func parseKey(raw json.RawMessage) (*Key, error) {
	var j rawJWK
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("malformed JWK: %w", err)
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, errSkip
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return nil, errSkip
	}
	k := &Key{ID: j.Kid, Alg: j.Alg}
	var err error
	switch j.Kty {
	case "RSA":
		k.Public, err = rsaKey(j)
	case "EC":
		k.Public, err = ecKey(j)
	case "OKP":
		k.Public, err = okpKey(j)
	default:
		return nil, errSkip
	}
	if err != nil {
		return nil, fmt.Errorf("kid %q: %w", j.Kid, err)
	}
	return k, nil
}

func rsaKey(j rawJWK) (*rsa.PublicKey, error) {
	n, err := b64("n", j.N)
	if err != nil {
		return nil, err
	}
	e, err := b64("e", j.E)
	if err != nil {
		return nil, err
	}
	N := new(big.Int).SetBytes(n)
	if bits := N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits is outside %d..%d", bits, minRSABits, maxRSABits)
	}
	if len(e) == 0 || len(e) > 4 {
		return nil, errors.New("RSA exponent out of range")
	}
	E := int(new(big.Int).SetBytes(e).Int64())
	if E < 3 || E%2 == 0 {
		return nil, errors.New("RSA exponent out of range")
	}
	return &rsa.PublicKey{N: N, E: E}, nil
}

func ecKey(j rawJWK) (*ecdsa.PublicKey, error) {
	var (
		curve elliptic.Curve
		size  int
	)
	switch j.Crv {
	case "P-256":
		curve, size = elliptic.P256(), 32
	case "P-384":
		curve, size = elliptic.P384(), 48
	default:
		return nil, fmt.Errorf("EC curve %q is not P-256 or P-384", j.Crv)
	}
	x, err := b64("x", j.X)
	if err != nil {
		return nil, err
	}
	y, err := b64("y", j.Y)
	if err != nil {
		return nil, err
	}
	if len(x) != size || len(y) != size {
		return nil, fmt.Errorf("EC coordinates must be %d bytes each", size)
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("EC point: %w", err)
	}
	return pub, nil
}

func okpKey(j rawJWK) (ed25519.PublicKey, error) {
	if j.Crv != "Ed25519" {
		return nil, fmt.Errorf("OKP curve %q is not Ed25519", j.Crv)
	}
	x, err := b64("x", j.X)
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("Ed25519 key must be %d bytes", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(x), nil
}

// b64 decodes base64url without padding (RFC 7515 §2), tolerating padding some issuers add.
func b64(member, s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("member %q is missing", member)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("member %q is not base64url", member)
	}
	return b, nil
}
