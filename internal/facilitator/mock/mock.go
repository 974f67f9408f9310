// Package mock is a facilitator for demos and development without a chain. Unlike a stub it
// still runs every local check, signature recovery included, and refuses a reused
// authorization; settling returns a random transaction hash. The gateway records payments it
// settles as mock (its config names this facilitator) so that they are kept out of settled
// totals. Never use it in production.
package mock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// Config configures the mock.
type Config struct {
	// Networks the mock claims to support (CAIP-2); empty means any eip155 network.
	Networks []string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Rand is the source of fake transaction hashes; nil means crypto/rand.
	Rand io.Reader
	// Verifier holds the local check settings.
	Verifier eip3009.Verifier
}

// authKey names an authorization: token, payer and nonce. Binary, so that the hot path needs
// no hex formatting (a checksummed address costs a keccak).
type authKey struct {
	asset, payer common.Address
	nonce        [32]byte
}

// Facilitator is the mock facilitator. It is safe for concurrent use.
type Facilitator struct {
	cfg Config

	mu   sync.Mutex
	used map[authKey]facilitator.SettleResult // settled authorizations
	byTx map[string]facilitator.SettleResult
}

var _ facilitator.Facilitator = (*Facilitator)(nil)

// New returns a mock facilitator.
func New(cfg Config) *Facilitator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Verifier.Cache == nil {
		cfg.Verifier.Cache = eip3009.NewRecoverCache(4096)
	}
	return &Facilitator{cfg: cfg, used: map[authKey]facilitator.SettleResult{}, byTx: map[string]facilitator.SettleResult{}}
}

func (f *Facilitator) networkOK(network string) bool {
	if len(f.cfg.Networks) == 0 {
		return strings.HasPrefix(network, "eip155:")
	}
	for _, n := range f.cfg.Networks {
		if n == network {
			return true
		}
	}
	return false
}

func (f *Facilitator) verify(payment x402.PaymentPayload, req x402.PaymentRequirements) (eip3009.Verified, error) {
	if !f.networkOK(req.Network) {
		return eip3009.Verified{}, x402.Invalid(x402.ReasonInvalidNetwork, "network %s is not supported by the mock", req.Network)
	}
	return f.cfg.Verifier.Verify(payment, req, f.cfg.Now())
}

func keyOf(v eip3009.Verified) authKey {
	return authKey{asset: v.Domain.VerifyingContract, payer: v.Payer, nonce: v.Authorization.Nonce}
}

// refKey is the authKey a SettleRef names: 0x-hex addresses and nonce, in either case, the
// nonce's 0x optional. ok is false for anything else, which names no settled authorization.
func refKey(ref facilitator.SettleRef) (k authKey, ok bool) {
	nonce := ref.Nonce
	if len(nonce) == 64 {
		nonce = "0x" + nonce
	}
	ok = decodeHex0x(k.asset[:], ref.Asset) && decodeHex0x(k.payer[:], ref.Payer) && decodeHex0x(k.nonce[:], nonce)
	return k, ok
}

// decodeHex0x fills dst from s, which must be 0x (or 0X) and exactly len(dst) bytes of hex.
func decodeHex0x(dst []byte, s string) bool {
	if len(s) != 2+2*len(dst) || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return false
	}
	b, err := hex.DecodeString(s[2:])
	return err == nil && copy(dst, b) == len(dst)
}

// Verify implements facilitator.Facilitator.
func (f *Facilitator) Verify(_ context.Context, payment x402.PaymentPayload, req x402.PaymentRequirements) (facilitator.VerifyResult, error) {
	v, err := f.verify(payment, req)
	if err != nil {
		return facilitator.Invalid(err, ""), nil
	}
	f.mu.Lock()
	_, used := f.used[keyOf(v)]
	f.mu.Unlock()
	if used {
		return facilitator.VerifyResult{Reason: x402.ReasonNonceAlreadyUsed, Message: "authorization already settled (mock)", Payer: v.PayerHex}, nil
	}
	return facilitator.VerifyResult{Valid: true, Payer: v.PayerHex}, nil
}

// Settle implements facilitator.Facilitator.
func (f *Facilitator) Settle(ctx context.Context, payment x402.PaymentPayload, req x402.PaymentRequirements) (facilitator.SettleResult, error) {
	if err := ctx.Err(); err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("mock settle: %w", err)
	}
	v, err := f.verify(payment, req)
	if err != nil {
		inv := facilitator.Invalid(err, "")
		return facilitator.SettleResult{State: facilitator.StateFailed, Network: req.Network, Reason: inv.Reason, Message: inv.Message}, nil
	}
	k, payer := keyOf(v), v.PayerHex
	f.mu.Lock()
	defer f.mu.Unlock()
	// Under the lock: Config.Rand need not be safe for concurrent use.
	var hash [32]byte
	if _, err := io.ReadFull(f.cfg.Rand, hash[:]); err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("mock settle: random tx hash: %w", err)
	}
	if _, used := f.used[k]; used {
		return facilitator.SettleResult{State: facilitator.StateFailed, Network: req.Network, Payer: payer,
			Reason: x402.ReasonNonceAlreadyUsed, Message: "authorization already settled (mock)"}, nil
	}
	res := facilitator.SettleResult{State: facilitator.StateSettled, TxHash: "0x" + hex.EncodeToString(hash[:]), Network: req.Network, Payer: payer}
	f.used[k] = res
	f.byTx[res.TxHash] = res
	return res, nil
}

// SettleStatus implements facilitator.Facilitator from the mock's memory. The mock knows every
// settlement it made, so anything it does not know was not settled.
func (f *Facilitator) SettleStatus(_ context.Context, ref facilitator.SettleRef) (facilitator.SettleResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.byTx[strings.ToLower(ref.TxHash)]; ok && ref.TxHash != "" {
		return r, nil
	}
	if k, ok := refKey(ref); ok {
		if r, ok := f.used[k]; ok {
			return r, nil
		}
	}
	return facilitator.SettleResult{State: facilitator.StateFailed, TxHash: ref.TxHash, Network: ref.Network, Payer: ref.Payer,
		Reason: x402.ReasonInvalidTransactionState, Message: "not settled by this mock"}, nil
}

// Supported implements facilitator.Facilitator.
func (f *Facilitator) Supported(context.Context) (x402.SupportedResponse, error) {
	var kinds []x402.SupportedKind
	for _, n := range f.cfg.Networks {
		kinds = append(kinds, x402.SupportedKind{X402Version: x402.Version2, Scheme: x402.SchemeExact, Network: n})
	}
	return x402.SupportedResponse{Kinds: kinds}, nil
}
