package eip3009

import (
	"testing"

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
