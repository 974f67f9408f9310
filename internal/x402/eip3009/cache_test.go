package eip3009

import (
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/x402"
)

func TestRecoverCache(t *testing.T) {
	c := NewRecoverCache(2)
	vf := Verifier{Cache: c}
	s := testSigner(t)
	s.Rand = nil // distinct nonces
	req := testRequirements()
	payments := make([]x402.PaymentPayload, 3)
	for i := range payments {
		payments[i] = mustSign(t, s, req)
	}
	for round := range 2 {
		for i, p := range payments {
			v, err := vf.Verify(p, req, testNow)
			if err != nil || v.Payer != s.Address() {
				t.Fatalf("round %d payment %d: %+v, %v", round, i, v, err)
			}
		}
	}
	if c.Len() != 2 {
		t.Fatalf("cache holds %d entries, want its size 2", c.Len())
	}
	// A cached signer must not make a forged payment pass: the key includes the signature, and
	// recovery of a different signature is not cached.
	other, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	forged := mustSign(t, NewSigner(other), req)
	setExact(t, &forged, func(e *x402.ExactEVMPayload) {
		orig, _ := payments[2].ExactEVM()
		e.Authorization = orig.Authorization // from = s, but signed by another key over another nonce
	})
	if _, err := vf.Verify(forged, req, testNow); x402.ReasonOf(err) != x402.ReasonSignature {
		t.Fatalf("forged payment with a cache: %v", err)
	}
}

// A payment the cache remembers as checked must still be checked against the requirements and
// the time of each call, and callers must not be able to change what the cache remembers.
func TestRecoverCacheRechecks(t *testing.T) {
	vf := Verifier{Cache: NewRecoverCache(16)}
	req := testRequirements()
	p := mustSign(t, testSigner(t), req)
	first, err := vf.Verify(p, req, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if first.PayerHex != first.Payer.Hex() {
		t.Fatalf("PayerHex = %s, want %s", first.PayerHex, first.Payer.Hex())
	}
	// Requirements that the payment's accepted copy also names, so only the later checks differ.
	other := func(f func(r *x402.PaymentRequirements)) (x402.PaymentPayload, x402.PaymentRequirements) {
		r := testRequirements()
		f(&r)
		q := p
		q.Accepted = r
		return q, r
	}
	tests := []struct {
		name   string
		change func(r *x402.PaymentRequirements)
		now    time.Time
		reason x402.Reason
	}{
		{"expired", func(*x402.PaymentRequirements) {}, testNow.Add(time.Hour), x402.ReasonValidBefore},
		{"not yet valid", func(*x402.PaymentRequirements) {}, testNow.Add(-time.Hour), x402.ReasonValidAfter},
		{"other price", func(r *x402.PaymentRequirements) { r.Amount = "1" }, testNow, x402.ReasonValueMismatch},
		{"other payTo", func(r *x402.PaymentRequirements) { r.PayTo = "0x3333333333333333333333333333333333333333" }, testNow, x402.ReasonRecipientMismatch},
		{"other domain", func(r *x402.PaymentRequirements) { r.Extra = map[string]any{"name": "Global Dollar", "version": "2"} }, testNow, x402.ReasonSignature},
		{"other chain", func(r *x402.PaymentRequirements) { r.Network = "eip155:1" }, testNow, x402.ReasonSignature},
		{"no domain", func(r *x402.PaymentRequirements) { r.Extra = nil }, testNow, x402.ReasonMissingEIP712Domain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, r := other(tt.change)
			for range 2 { // the second time with whatever the first left in the cache
				if _, err := vf.Verify(q, r, tt.now); x402.ReasonOf(err) != tt.reason {
					t.Fatalf("reason = %q (err %v), want %q", x402.ReasonOf(err), err, tt.reason)
				}
			}
		})
	}

	first.Authorization.Value.SetInt64(1)
	first.Authorization.ValidBefore.SetInt64(1)
	first.Signature[0] ^= 1
	first.Domain.ChainID.SetInt64(1)
	again, err := vf.Verify(p, req, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want, err := VerifyLocal(p, req, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, want) || again.Authorization.Value.Cmp(big.NewInt(10000)) != 0 {
		t.Fatalf("from the cache: %+v\nuncached: %+v", again, want)
	}
}
