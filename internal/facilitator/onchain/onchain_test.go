package onchain

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/testutil/evmtest"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

const price = 10_000 // 0.01 token

type env struct {
	chain    *evmtest.Chain
	token    *evmtest.Token
	relayer  evmtest.Account
	merchant evmtest.Account
	req      x402.PaymentRequirements
}

func newEnv(t *testing.T) *env {
	t.Helper()
	relayer := evmtest.NewAccount(t)
	c := evmtest.New(t, relayer.Address)
	tk := c.DeployToken(t, "Global Dollar", "1")
	merchant := evmtest.NewAccount(t)
	return &env{chain: c, token: tk, relayer: relayer, merchant: merchant, req: x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: evmtest.Network, Amount: fmt.Sprint(price), Asset: tk.Address.Hex(),
		PayTo: merchant.Address.Hex(), MaxTimeoutSeconds: 300, Extra: map[string]any{"name": "Global Dollar", "version": "1"},
	}}
}

// payer returns a signer funded with n payments' worth of tokens.
func (e *env) payer(t *testing.T, n int64) *eip3009.Signer {
	t.Helper()
	a := evmtest.NewAccount(t)
	if n > 0 {
		e.token.Mint(t, a.Address, big.NewInt(n*price))
	}
	return eip3009.NewSigner(a.Key)
}

func (e *env) facilitator(t *testing.T, mutate func(*Config)) *Facilitator {
	t.Helper()
	cfg := Config{Client: e.chain.Client, RelayerKey: e.relayer.Key, ReceiptPoll: time.Millisecond, ReceiptTimeout: 20 * time.Second, AfterSend: e.chain.Mine}
	if mutate != nil {
		mutate(&cfg)
	}
	f, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func sign(t *testing.T, s *eip3009.Signer, req x402.PaymentRequirements) x402.PaymentPayload {
	t.Helper()
	p, err := s.Sign(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifyAndSettleMoveTokensOnce(t *testing.T) {
	e := newEnv(t)
	f := e.facilitator(t, nil)
	ctx := context.Background()
	payer := e.payer(t, 3)
	p := sign(t, payer, e.req)

	v, err := f.Verify(ctx, p, e.req)
	if err != nil || !v.Valid || v.Payer != payer.Address().Hex() {
		t.Fatalf("verify = %+v, %v", v, err)
	}
	res, err := f.Settle(ctx, p, e.req)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != facilitator.StateSettled || res.TxHash == "" || res.Network != evmtest.Network {
		t.Fatalf("settle = %+v", res)
	}
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Int64() != price {
		t.Fatalf("merchant balance = %s", got)
	}

	// The same authorization again: the token refuses it, nothing moves.
	v, err = f.Verify(ctx, p, e.req)
	if err != nil || v.Valid || v.Reason != x402.ReasonNonceAlreadyUsed {
		t.Fatalf("verify replay = %+v, %v", v, err)
	}
	res2, err := f.Settle(ctx, p, e.req)
	if err != nil || res2.State != facilitator.StateFailed || res2.Reason != x402.ReasonNonceAlreadyUsed {
		t.Fatalf("settle replay = %+v, %v", res2, err)
	}
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Int64() != price {
		t.Fatalf("merchant balance after replay = %s", got)
	}
	if got := e.token.BalanceOf(t, payer.Address()); got.Int64() != 2*price {
		t.Fatalf("payer balance = %s", got)
	}
	// The payer paid no gas: it never had ether.
	if bal, _ := e.chain.Client.BalanceAt(ctx, payer.Address(), nil); bal.Sign() != 0 {
		t.Fatalf("payer ether balance = %s", bal)
	}

	st, err := f.SettleStatus(ctx, mustRef(t, p, e.req, res.TxHash))
	if err != nil || st.State != facilitator.StateSettled || st.TxHash != res.TxHash {
		t.Fatalf("status = %+v, %v", st, err)
	}
}

func mustRef(t *testing.T, p x402.PaymentPayload, req x402.PaymentRequirements, hash string) facilitator.SettleRef {
	t.Helper()
	ref, err := facilitator.RefFor(p, req, hash)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestVerifyRejections(t *testing.T) {
	e := newEnv(t)
	f := e.facilitator(t, nil)
	ctx := context.Background()
	otherNet := e.req
	otherNet.Network = "eip155:196"
	wrongDomain := e.req
	wrongDomain.Extra = map[string]any{"name": "Global Dollar", "version": "2"}
	tests := []struct {
		name   string
		pay    func() (x402.PaymentPayload, x402.PaymentRequirements)
		reason x402.Reason
	}{
		{"no balance", func() (x402.PaymentPayload, x402.PaymentRequirements) {
			return sign(t, e.payer(t, 0), e.req), e.req
		}, x402.ReasonInsufficientFunds},
		{"other network", func() (x402.PaymentPayload, x402.PaymentRequirements) {
			return sign(t, e.payer(t, 1), otherNet), otherNet
		}, x402.ReasonInvalidNetwork},
		{"domain the token does not have", func() (x402.PaymentPayload, x402.PaymentRequirements) {
			// Locally consistent (signed for version 2 and checked against version 2), but the
			// token's domain is version 1: only the simulation can tell.
			return sign(t, e.payer(t, 1), wrongDomain), wrongDomain
		}, x402.ReasonSimulationFailed},
		{"local check", func() (x402.PaymentPayload, x402.PaymentRequirements) {
			p := sign(t, e.payer(t, 1), e.req)
			r := e.req
			r.Amount = "1"
			p.Accepted.Amount = "1"
			return p, r
		}, x402.ReasonValueMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, req := tt.pay()
			v, err := f.Verify(ctx, p, req)
			if err != nil || v.Valid || v.Reason != tt.reason {
				t.Fatalf("verify = %+v, %v; want reason %s", v, err, tt.reason)
			}
			res, err := f.Settle(ctx, p, req)
			if err != nil || res.State != facilitator.StateFailed || res.Reason != tt.reason {
				t.Fatalf("settle = %+v, %v", res, err)
			}
		})
	}
	if n, _ := e.chain.Client.NonceAt(ctx, e.relayer.Address, nil); n != 0 {
		t.Fatalf("relayer sent %d transactions for invalid payments", n)
	}
}

func TestConcurrentSettlesGetDistinctNonces(t *testing.T) {
	e := newEnv(t)
	// No per-send mining: a background miner batches concurrent transactions into blocks, as a
	// real chain does.
	miner := e.chain.AutoMine(t, time.Millisecond)
	f := e.facilitator(t, func(c *Config) { c.AfterSend = nil; c.Client = miner })
	const n = 24
	payments := make([]x402.PaymentPayload, n)
	for i := range payments {
		payments[i] = sign(t, e.payer(t, 1), e.req)
	}
	results := make([]facilitator.SettleResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range payments {
		wg.Go(func() { results[i], errs[i] = f.Settle(context.Background(), payments[i], e.req) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range results {
		if errs[i] != nil || results[i].State != facilitator.StateSettled {
			t.Fatalf("settle %d = %+v, %v", i, results[i], errs[i])
		}
		if seen[results[i].TxHash] {
			t.Fatalf("duplicate tx hash %s", results[i].TxHash)
		}
		seen[results[i].TxHash] = true
	}
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Int64() != n*price {
		t.Fatalf("merchant balance = %s, want %d", got, n*price)
	}
	if nonce, _ := e.chain.Client.NonceAt(context.Background(), e.relayer.Address, nil); nonce != n {
		t.Fatalf("relayer nonce = %d, want %d", nonce, n)
	}
}

func TestConcurrentReplayMovesFundsOnce(t *testing.T) {
	e := newEnv(t)
	miner := e.chain.AutoMine(t, time.Millisecond)
	f := e.facilitator(t, func(c *Config) { c.AfterSend = nil; c.Client = miner })
	p := sign(t, e.payer(t, 5), e.req)
	const n = 4
	results := make([]facilitator.SettleResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			results[i], err = f.Settle(context.Background(), p, e.req)
			if err != nil {
				t.Errorf("settle %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	settled, winner := 0, ""
	for _, r := range results {
		if r.State == facilitator.StateSettled {
			settled++
			winner = r.TxHash
		}
	}
	if settled != 1 {
		t.Fatalf("%d settles succeeded, want exactly 1: %+v", settled, results)
	}
	for _, r := range results {
		switch {
		case r.State == facilitator.StateSettled:
		case r.State == facilitator.StateFailed && r.Reason == x402.ReasonNonceAlreadyUsed:
			// Refused before sending: the simulation saw the nonce used.
		case r.State == facilitator.StateUnknown && r.TxHash != "":
			// Sent and reverted because the winner got there first: never "settled" from Settle,
			// but the lookup books the winner's transaction.
			st, err := f.SettleStatus(context.Background(), mustRef(t, p, e.req, r.TxHash))
			if err != nil || st.State != facilitator.StateSettled || st.TxHash != winner {
				t.Fatalf("status of a reverted replay = %+v, %v; want settled %s", st, err, winner)
			}
		default:
			t.Fatalf("unexpected result %+v", r)
		}
	}
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Int64() != price {
		t.Fatalf("merchant balance = %s", got)
	}
}

func TestReceiptTimeoutIsUnknownThenResolved(t *testing.T) {
	e := newEnv(t)
	// Nobody mines: the receipt cannot arrive within the bound.
	f := e.facilitator(t, func(c *Config) { c.AfterSend = nil; c.ReceiptTimeout = 30 * time.Millisecond })
	ctx := context.Background()
	p := sign(t, e.payer(t, 1), e.req)
	res, err := f.Settle(ctx, p, e.req)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != facilitator.StateUnknown || res.TxHash == "" || res.Reason != x402.ReasonSettlementPending {
		t.Fatalf("settle = %+v, want unknown with a tx hash", res)
	}
	if resp := res.Response(); resp.Success || resp.ErrorReason != string(x402.ReasonSettlementPending) || resp.Transaction != res.TxHash {
		t.Fatalf("response = %+v", resp)
	}
	st, err := f.SettleStatus(ctx, mustRef(t, p, e.req, res.TxHash))
	if err != nil || st.State != facilitator.StateUnknown {
		t.Fatalf("status before mining = %+v, %v", st, err)
	}
	e.chain.Commit()
	st, err = f.SettleStatus(ctx, mustRef(t, p, e.req, res.TxHash))
	if err != nil || st.State != facilitator.StateSettled || st.TxHash != res.TxHash {
		t.Fatalf("status by hash = %+v, %v", st, err)
	}
	// Without the hash (a response that never arrived), the chain still names the transaction.
	st, err = f.SettleStatus(ctx, mustRef(t, p, e.req, ""))
	if err != nil || st.State != facilitator.StateSettled || st.TxHash != res.TxHash {
		t.Fatalf("status by authorization = %+v, %v", st, err)
	}
}

func TestSettleStatusUnsentAndExpired(t *testing.T) {
	e := newEnv(t)
	f := e.facilitator(t, nil)
	ctx := context.Background()
	payer := e.payer(t, 1)
	p := sign(t, payer, e.req)
	st, err := f.SettleStatus(ctx, mustRef(t, p, e.req, ""))
	if err != nil || st.State != facilitator.StateUnknown {
		t.Fatalf("unsent, still valid = %+v, %v", st, err)
	}
	ref := mustRef(t, p, e.req, "")
	ref.ValidBefore = "1"
	st, err = f.SettleStatus(ctx, ref)
	if err != nil || st.State != facilitator.StateFailed || st.Reason != x402.ReasonValidBefore {
		t.Fatalf("unsent, expired = %+v, %v", st, err)
	}
	// Nothing to look for: unknown, never a guess.
	if st, err := f.SettleStatus(ctx, facilitator.SettleRef{}); err != nil || st.State != facilitator.StateUnknown {
		t.Fatalf("empty ref = %+v, %v", st, err)
	}
	if _, err := f.SettleStatus(ctx, facilitator.SettleRef{Network: "eip155:1"}); !errors.Is(err, facilitator.ErrStatusUnsupported) {
		t.Fatalf("other network: %v", err)
	}
	if _, err := f.SettleStatus(ctx, facilitator.SettleRef{TxHash: "0x12"}); err == nil {
		t.Fatal("short hash accepted")
	}
}

// lossyClient forwards SendTransaction but reports a transport failure, like a connection that
// drops after the node received the request.
type lossyClient struct {
	Client
	mu    sync.Mutex
	drops int
}

func (c *lossyClient) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	err := c.Client.SendTransaction(ctx, tx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && c.drops > 0 {
		c.drops--
		return errors.New("read tcp: connection reset by peer")
	}
	return err
}

func TestSendLostInTransitIsUnknown(t *testing.T) {
	e := newEnv(t)
	lossy := &lossyClient{Client: e.chain.Client, drops: 1}
	f := e.facilitator(t, func(c *Config) { c.Client = lossy })
	ctx := context.Background()
	p1 := sign(t, e.payer(t, 1), e.req)
	res, err := f.Settle(ctx, p1, e.req)
	if err != nil || res.State != facilitator.StateUnknown || res.TxHash == "" {
		t.Fatalf("settle with lost send = %+v, %v", res, err)
	}
	// The next settlement resynchronises the nonce and works; it also mines the first one.
	p2 := sign(t, e.payer(t, 1), e.req)
	res2, err := f.Settle(ctx, p2, e.req)
	if err != nil || res2.State != facilitator.StateSettled {
		t.Fatalf("next settle = %+v, %v", res2, err)
	}
	st, err := f.SettleStatus(ctx, mustRef(t, p1, e.req, res.TxHash))
	if err != nil || st.State != facilitator.StateSettled {
		t.Fatalf("status of lost send = %+v, %v", st, err)
	}
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Int64() != 2*price {
		t.Fatalf("merchant balance = %s", got)
	}
}

func TestCancelledContextBeforeSendIsAnError(t *testing.T) {
	e := newEnv(t)
	f := e.facilitator(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Settle(ctx, sign(t, e.payer(t, 1), e.req), e.req); err == nil {
		t.Fatal("settle with a cancelled context returned no error")
	}
	if n, _ := e.chain.Client.NonceAt(context.Background(), e.relayer.Address, nil); n != 0 {
		t.Fatalf("relayer sent %d transactions", n)
	}
}

func TestSupportedAndNoSecrets(t *testing.T) {
	e := newEnv(t)
	f := e.facilitator(t, nil)
	s, err := f.Supported(context.Background())
	if err != nil || !s.Supports(2, "exact", evmtest.Network) || s.Signers["eip155:*"][0] != e.relayer.Address.Hex() {
		t.Fatalf("supported = %+v, %v", s, err)
	}
	keyHex := common.Bytes2Hex(crypto.FromECDSA(e.relayer.Key))
	for _, s := range []string{f.String(), fmt.Sprintf("%v", f), fmt.Sprintf("%+v", f), fmt.Sprintf("%#v", f), fmt.Sprintf("%+v", f.cfg), fmt.Sprintf("%#v", f.cfg)} {
		if strings.Contains(s, keyHex) {
			t.Fatal("facilitator formatting exposes the relayer key")
		}
	}
}
