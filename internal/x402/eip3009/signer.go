package eip3009

import (
	"crypto/ecdsa"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/x402"
)

// DefaultMaxTimeout is the validity window used when requirements give no maxTimeoutSeconds.
const DefaultMaxTimeout = 300 * time.Second

// Signer is the client side: it builds and signs EIP-3009 authorizations for requirements.
// Its String method prints only the address, so a Signer is safe to log.
type Signer struct {
	key  *ecdsa.PrivateKey
	addr common.Address

	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Rand is the source of authorization nonces; nil means crypto/rand.
	Rand io.Reader
	// Backdate is subtracted from now to form validAfter, to tolerate clock skew between
	// client, server and chain; 0 means one minute.
	Backdate time.Duration
}

// NewSigner returns a signer for key.
func NewSigner(key *ecdsa.PrivateKey) *Signer {
	return &Signer{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
}

// Address is the payer address.
func (s *Signer) Address() common.Address { return s.addr }

// String implements fmt.Stringer without exposing the key.
func (s *Signer) String() string { return "eip3009.Signer(" + s.addr.Hex() + ")" }

// GoString keeps %#v from printing the key.
func (s *Signer) GoString() string { return s.String() }

// Authorize builds an authorization paying req.Amount to req.PayTo, valid from now-Backdate
// until now+maxTimeoutSeconds, with a random nonce.
func (s *Signer) Authorize(req x402.PaymentRequirements) (Authorization, error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	backdate := s.Backdate
	if backdate <= 0 {
		backdate = time.Minute
	}
	timeout := time.Duration(req.MaxTimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = DefaultMaxTimeout
	}
	value, ok := new(big.Int).SetString(req.Amount, 10)
	if !ok || value.Sign() < 0 {
		return Authorization{}, fmt.Errorf("requirements amount %q is not an atomic amount", req.Amount)
	}
	if !common.IsHexAddress(req.PayTo) {
		return Authorization{}, fmt.Errorf("requirements payTo %q is not an address", req.PayTo)
	}
	a := Authorization{
		From:        s.addr,
		To:          common.HexToAddress(req.PayTo),
		Value:       value,
		ValidAfter:  big.NewInt(max(0, now.Add(-backdate).Unix())),
		ValidBefore: big.NewInt(now.Add(timeout).Unix()),
	}
	r := s.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, a.Nonce[:]); err != nil {
		return Authorization{}, fmt.Errorf("read authorization nonce: %w", err)
	}
	return a, nil
}

// SignAuthorization signs a under domain d and returns r ‖ s ‖ v with v = 27/28 (low-s).
func (s *Signer) SignAuthorization(d Domain, a Authorization) ([]byte, error) {
	digest := a.Digest(d)
	sig, err := crypto.Sign(digest[:], s.key)
	if err != nil {
		return nil, fmt.Errorf("sign authorization: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

// Sign builds, signs and wraps a v2 payment payload for req.
func (s *Signer) Sign(req x402.PaymentRequirements, resource *x402.ResourceInfo) (x402.PaymentPayload, error) {
	d, err := DomainFor(req)
	if err != nil {
		return x402.PaymentPayload{}, fmt.Errorf("token domain: %w", err)
	}
	a, err := s.Authorize(req)
	if err != nil {
		return x402.PaymentPayload{}, err
	}
	return s.SignWith(req, resource, d, a)
}

// SignWith signs a caller-built authorization a (tests use it to craft invalid payments).
func (s *Signer) SignWith(req x402.PaymentRequirements, resource *x402.ResourceInfo, d Domain, a Authorization) (x402.PaymentPayload, error) {
	sig, err := s.SignAuthorization(d, a)
	if err != nil {
		return x402.PaymentPayload{}, err
	}
	return x402.NewPaymentPayload(req, resource, x402.ExactEVMPayload{
		Signature:     "0x" + common.Bytes2Hex(sig),
		Authorization: a.Wire(),
	})
}
