package mock_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/mock"
	"github.com/insforge/integrations-operator/internal/testutil/cpustat"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// BenchmarkPaidRequest is the payment work of one paid request through the gateway with the
// mock facilitator: what gateway.decodePayment does (decode PAYMENT-SIGNATURE, match, local
// check, re-encode for the ledger), then the facilitator's Verify and Settle, all sharing one
// RecoverCache as cmd/gateway wires them. Every iteration pays with a fresh authorization, so
// the gateway's check recovers the signer (once, as in production) and the facilitator's
// checks find it cached.
func BenchmarkPaidRequest(b *testing.B) { benchPaidRequest(b, false) }

// BenchmarkPaidRequestWarmRecover is the same with every signer already in the RecoverCache
// (recovered from a differently encoded copy of the payload), so that the one unavoidable
// recovery is left out and what remains is decoding, hashing and checking.
func BenchmarkPaidRequestWarmRecover(b *testing.B) { benchPaidRequest(b, true) }

func benchPaidRequest(b *testing.B, warmRecover bool) {
	now := time.Unix(1_750_000_000, 0)
	req := x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: "eip155:196", Amount: "10000", Asset: "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8",
		PayTo: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", MaxTimeoutSeconds: 300, Extra: map[string]any{"name": "Global Dollar", "version": "1"},
	}
	offer := []x402.PaymentRequirements{req}
	key, err := crypto.HexToECDSA("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcb5d6b7f2ff80f482")
	if err != nil {
		b.Fatal(err)
	}
	s := eip3009.NewSigner(key)
	s.Now = func() time.Time { return now }
	// cmd/gateway's size, or larger so that no warmed signer is evicted before its turn.
	vf := eip3009.Verifier{Cache: eip3009.NewRecoverCache(max(1<<14, b.N))}
	headers := make([]string, b.N)
	for i := range headers {
		p, err := s.Sign(req, &x402.ResourceInfo{URL: "https://gw.example/v1/report"})
		if err != nil {
			b.Fatal(err)
		}
		if headers[i], err = x402.EncodePaymentSignature(p); err != nil {
			b.Fatal(err)
		}
		if warmRecover {
			// A trailing space changes the bytes but not the signed content.
			p.Payload = append(p.Payload, ' ')
			if _, err := vf.Verify(p, req, now); err != nil {
				b.Fatal(err)
			}
		}
	}
	f := mock.New(mock.Config{Networks: []string{req.Network}, Now: func() time.Time { return now }, Verifier: vf})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer cpustat.ReportPerOp(b)()
	for i := 0; i < b.N; i++ {
		p, err := x402.DecodePaymentSignature(headers[i])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := x402.Match(p.Accepted, offer); err != nil {
			b.Fatal(err)
		}
		if _, err := vf.Verify(p, req, now); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(p); err != nil {
			b.Fatal(err)
		}
		if vr, err := f.Verify(ctx, p, req); err != nil || !vr.Valid {
			b.Fatalf("verify = %+v, %v", vr, err)
		}
		if sr, err := f.Settle(ctx, p, req); err != nil || sr.State != facilitator.StateSettled {
			b.Fatalf("settle = %+v, %v", sr, err)
		}
	}
}
