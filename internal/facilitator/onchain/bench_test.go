package onchain

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/testutil/cpustat"
	"github.com/insforge/integrations-operator/internal/testutil/evmtest"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

func benchEnv(b *testing.B) (*Facilitator, *eip3009.Signer, x402.PaymentRequirements, *evmtest.Token) {
	b.Helper()
	return benchEnvWith(b, true)
}

// benchEnvWith builds the chain; mineEachSend selects one block per settle (AfterSend) instead of
// a background miner that batches whatever is pending every millisecond.
func benchEnvWith(b *testing.B, mineEachSend bool) (*Facilitator, *eip3009.Signer, x402.PaymentRequirements, *evmtest.Token) {
	b.Helper()
	relayer := evmtest.NewAccount(b)
	c := evmtest.New(b, relayer.Address)
	tk := c.DeployToken(b, "Global Dollar", "1")
	payer := evmtest.NewAccount(b)
	tk.Mint(b, payer.Address, new(big.Int).Lsh(big.NewInt(1), 200))
	merchant := evmtest.NewAccount(b)
	cfg := Config{Client: c.Client, RelayerKey: relayer.Key, ReceiptPoll: 100 * time.Microsecond}
	if mineEachSend {
		cfg.AfterSend = c.Mine
	} else {
		// Many waiters: poll less often so that polling does not eat the CPU the chain needs.
		cfg.ReceiptPoll = 2 * time.Millisecond
		cfg.Client = c.AutoMine(b, 10*time.Millisecond)
	}
	f, err := New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	req := x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: evmtest.Network, Amount: "10000", Asset: tk.Address.Hex(), PayTo: merchant.Address.Hex(),
		MaxTimeoutSeconds: 300, Extra: map[string]any{"name": "Global Dollar", "version": "1"},
	}
	return f, eip3009.NewSigner(payer.Key), req, tk
}

// One payment per iteration: sign, Verify (local checks + eth_call), Settle (re-verify, gas
// estimate, send, mine one block, receipt).
func BenchmarkVerifySettle(b *testing.B) {
	f, s, req, _ := benchEnv(b)
	ctx := context.Background()
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	for b.Loop() {
		p, err := s.Sign(req, nil)
		if err != nil {
			b.Fatal(err)
		}
		if v, err := f.Verify(ctx, p, req); err != nil || !v.Valid {
			b.Fatalf("verify = %+v, %v", v, err)
		}
		if r, err := f.Settle(ctx, p, req); err != nil || r.State != facilitator.StateSettled {
			b.Fatalf("settle = %+v, %v", r, err)
		}
	}
}

// Verify alone (local checks + eth_call simulation), without settling.
func BenchmarkVerifyOnChain(b *testing.B) {
	f, s, req, _ := benchEnv(b)
	p, err := s.Sign(req, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	for b.Loop() {
		if v, err := f.Verify(ctx, p, req); err != nil || !v.Valid {
			b.Fatalf("verify = %+v, %v", v, err)
		}
	}
}

// Concurrent settlements (16 goroutines per CPU) with a background miner that commits 10 ms after
// a send, so one block carries many settlements as on a real chain: measures throughput with the
// facilitator's serialised nonce assignment. Run it with a fixed count (-benchtime 300x): every
// block moves chain time at least a second ahead.
func BenchmarkSettleParallel(b *testing.B) {
	f, s, req, _ := benchEnvWith(b, false)
	b.SetParallelism(16)
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			p, err := s.Sign(req, nil)
			if err != nil {
				b.Error(err)
				return
			}
			if r, err := f.Settle(ctx, p, req); err != nil || r.State != facilitator.StateSettled {
				b.Errorf("settle = %+v, %v", r, err)
				return
			}
		}
	})
}
