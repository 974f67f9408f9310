package oidcfake

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
)

// Algorithms of the keys NewKey makes.
const (
	RS256 = "RS256"
	PS256 = "PS256"
	ES256 = "ES256"
	ES384 = "ES384"
	EdDSA = "EdDSA"
)

// Key is a signing key pair with its JWK identity.
type Key struct {
	KID, Alg string
	Private  crypto.Signer
	Public   crypto.PublicKey
	// NoAlg leaves alg out of the published JWK; Use overrides its use ("" leaves it out).
	NoAlg bool
	Use   string
}

// NewKey generates a key for alg (RSA keys are 2048 bits) with a random kid.
func NewKey(alg string) (*Key, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case RS256, PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("oidcfake: no keys for algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("oidcfake: generating a %s key: %w", alg, err)
	}
	kid := make([]byte, 8)
	_, _ = rand.Read(kid)
	return &Key{KID: fmt.Sprintf("%s-%x", alg, kid), Alg: alg, Private: priv, Public: priv.Public(), Use: "sig"}, nil
}

// JWK is the public key as a JWK object.
func (k *Key) JWK() map[string]any {
	enc := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": k.KID}
	if !k.NoAlg {
		m["alg"] = k.Alg
	}
	if k.Use != "" {
		m["use"] = k.Use
	}
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", enc(pub.N.Bytes()), enc(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		raw, _ := pub.Bytes() // 0x04 || x || y
		m["kty"], m["crv"] = "EC", pub.Curve.Params().Name
		m["x"], m["y"] = enc(raw[1:1+size]), enc(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", enc(pub)
	}
	return m
}

// JWKJSON is JWK marshalled: also the bytes an attacker might use as an HMAC secret.
func (k *Key) JWKJSON() []byte {
	b, _ := json.Marshal(k.JWK())
	return b
}

// PublicPEM is the public key as a PKIX PEM block, the classic HMAC-confusion secret.
func (k *Key) PublicPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
