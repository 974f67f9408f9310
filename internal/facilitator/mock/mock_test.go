package mock

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

var now = time.Unix(1_750_000_000, 0)

func setup(t *testing.T) (*Facilitator, *eip3009.Signer, x402.PaymentRequirements) {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s := eip3009.NewSigner(k)
	s.Now = func() time.Time { return now }
	req := x402.PaymentRequirements{
		Scheme: "exact", Network: "eip155:196", Amount: "10000", Asset: "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8",
		PayTo: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", MaxTimeoutSeconds: 60, Extra: map[string]any{"name": "Global Dollar", "version": "1"},
	}
	return New(Config{Networks: []string{"eip155:196"}, Now: func() time.Time { return now }}), s, req
}

func TestMockSettlesOnce(t *testing.T) {
	f, s, req := setup(t)
	ctx := context.Background()
	p, err := s.Sign(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Verify(ctx, p, req)
	if err != nil || !v.Valid || v.Payer != s.Address().Hex() {
		t.Fatalf("verify = %+v, %v", v, err)
	}
	res, err := f.Settle(ctx, p, req)
	if err != nil || res.State != facilitator.StateSettled || len(res.TxHash) != 66 {
		t.Fatalf("settle = %+v, %v", res, err)
	}
	again, err := f.Settle(ctx, p, req)
	if err != nil || again.State != facilitator.StateFailed || again.Reason != x402.ReasonNonceAlreadyUsed {
		t.Fatalf("replay = %+v, %v", again, err)
	}
	if v, _ := f.Verify(ctx, p, req); v.Valid || v.Reason != x402.ReasonNonceAlreadyUsed {
		t.Fatalf("verify replay = %+v", v)
	}
	ref, err := facilitator.RefFor(p, req, "")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := f.SettleStatus(ctx, ref); st.TxHash != res.TxHash || st.State != facilitator.StateSettled {
		t.Fatalf("status by authorization = %+v", st)
	}
	ref.TxHash = res.TxHash
	if st, _ := f.SettleStatus(ctx, ref); st.State != facilitator.StateSettled {
		t.Fatalf("status by hash = %+v", st)
	}
	if st, _ := f.SettleStatus(ctx, facilitator.SettleRef{TxHash: "0x01"}); st.State != facilitator.StateFailed {
		t.Fatalf("status of unknown hash = %+v", st)
	}
}

func TestMockStillVerifiesSignatures(t *testing.T) {
	f, s, req := setup(t)
	other, _ := crypto.GenerateKey()
	a, err := s.Authorize(req)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := eip3009.DomainFor(req)
	forged, err := eip3009.NewSigner(other).SignWith(req, nil, d, a) // from = s, signed by other
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Settle(context.Background(), forged, req)
	if err != nil || res.State != facilitator.StateFailed || res.Reason != x402.ReasonSignature {
		t.Fatalf("forged settle = %+v, %v", res, err)
	}
	wrongNet := req
	wrongNet.Network = "eip155:1"
	p, _ := s.Sign(wrongNet, nil)
	if v, _ := f.Verify(context.Background(), p, wrongNet); v.Reason != x402.ReasonInvalidNetwork {
		t.Fatalf("unsupported network = %+v", v)
	}
}

func TestMockConcurrentReplaySettlesOnce(t *testing.T) {
	f, s, req := setup(t)
	f.cfg.Rand = bytes.NewReader(bytes.Repeat([]byte{1, 2, 3}, 1000))
	p, _ := s.Sign(req, nil)
	var mu sync.Mutex
	settled := 0
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			r, err := f.Settle(context.Background(), p, req)
			if err != nil {
				t.Error(err)
			}
			if r.State == facilitator.StateSettled {
				mu.Lock()
				settled++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if settled != 1 {
		t.Fatalf("settled %d times", settled)
	}
}

// SettleStatus finds an authorization however its hex is cased, with or without the nonce's 0x.
func TestMockSettleStatusRefForms(t *testing.T) {
	f, s, req := setup(t)
	ctx := context.Background()
	p, _ := s.Sign(req, nil)
	if res, err := f.Settle(ctx, p, req); err != nil || res.State != facilitator.StateSettled {
		t.Fatalf("settle = %+v, %v", res, err)
	}
	ref, err := facilitator.RefFor(p, req, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		edit  func(r *facilitator.SettleRef)
		found bool
	}{
		{"as built", func(*facilitator.SettleRef) {}, true},
		{"lower case", func(r *facilitator.SettleRef) {
			r.Asset, r.Payer, r.Nonce = strings.ToLower(r.Asset), strings.ToLower(r.Payer), strings.ToLower(r.Nonce)
		}, true},
		{"upper case", func(r *facilitator.SettleRef) {
			r.Asset, r.Payer, r.Nonce = strings.ToUpper(r.Asset), strings.ToUpper(r.Payer), strings.ToUpper(r.Nonce)
		}, true},
		{"nonce without 0x", func(r *facilitator.SettleRef) { r.Nonce = r.Nonce[2:] }, true},
		{"payer without 0x", func(r *facilitator.SettleRef) { r.Payer = r.Payer[2:] }, false},
		{"short payer", func(r *facilitator.SettleRef) { r.Payer = r.Payer[:41] }, false},
		{"no nonce", func(r *facilitator.SettleRef) { r.Nonce = "" }, false},
		{"no asset", func(r *facilitator.SettleRef) { r.Asset = "" }, false},
		{"nonce 0x twice", func(r *facilitator.SettleRef) { r.Nonce = "0x" + r.Nonce }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ref
			tt.edit(&r)
			st, err := f.SettleStatus(ctx, r)
			if err != nil || (st.State == facilitator.StateSettled) != tt.found {
				t.Fatalf("status of %+v = %+v, %v; want found %v", r, st, err, tt.found)
			}
		})
	}
}
