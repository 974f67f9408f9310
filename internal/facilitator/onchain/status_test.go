package onchain

import (
	"context"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/testutil/evmtest"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// payerAccount is a payer whose key the test holds (to sign other authorizations and to send
// transactions itself): funded with n payments' worth of tokens and one ether for gas.
func (e *env) payerAccount(t *testing.T, n int64) (evmtest.Account, *eip3009.Signer) {
	t.Helper()
	a := evmtest.NewAccount(t)
	if n > 0 {
		e.token.Mint(t, a.Address, big.NewInt(n*price))
	}
	e.chain.Fund(t, a.Address, big.NewInt(params.Ether))
	return a, eip3009.NewSigner(a.Key)
}

// authorizationOf decodes the authorization a payment carries.
func authorizationOf(t *testing.T, p x402.PaymentPayload) eip3009.Authorization {
	t.Helper()
	exact, err := p.ExactEVM()
	if err != nil {
		t.Fatal(err)
	}
	a, err := eip3009.ParseAuthorization(exact.Authorization)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// selfTransfer spends the payment's nonce on a transfer of 1 unit from the payer to itself,
// signed by the payer and sent by the payer: the attack on a status lookup that only asks
// whether the nonce was used.
func (e *env) selfTransfer(t *testing.T, payer evmtest.Account, signer *eip3009.Signer, p x402.PaymentPayload) *types.Receipt {
	t.Helper()
	a := authorizationOf(t, p)
	a.To, a.Value = payer.Address, big.NewInt(1)
	sig, err := signer.SignAuthorization(e.token.Domain(), a)
	if err != nil {
		t.Fatal(err)
	}
	r := e.token.SubmitAuthorization(t, payer, a, sig)
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatal("self-transfer reverted")
	}
	return r
}

// frontRunClient runs before once, ahead of the first transaction the facilitator sends: another
// transaction lands between the facilitator's simulation and its own transaction.
type frontRunClient struct {
	Client
	once   sync.Once
	before func(tx *types.Transaction)
}

func (c *frontRunClient) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	c.once.Do(func() { c.before(tx) })
	return c.Client.SendTransaction(ctx, tx)
}

// settleUnknownThenMine settles p through a facilitator whose send is front-run by before and
// whose receipt wait ends before anything is mined, so the outcome is unknown with our hash;
// then it mines our transaction and returns its hash.
func (e *env) settleUnknownThenMine(t *testing.T, p x402.PaymentPayload, before func(tx *types.Transaction)) (*Facilitator, string) {
	t.Helper()
	f := e.facilitator(t, func(c *Config) {
		c.Client = &frontRunClient{Client: e.chain.Client, before: before}
		c.AfterSend = nil
		c.ReceiptTimeout = 30 * time.Millisecond
	})
	res, err := f.Settle(context.Background(), p, e.req)
	if err != nil || res.State != facilitator.StateUnknown || res.TxHash == "" {
		t.Fatalf("settle = %+v, %v; want unknown with our hash", res, err)
	}
	e.chain.Commit()
	r, err := e.chain.Client.TransactionReceipt(context.Background(), common.HexToHash(res.TxHash))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != types.ReceiptStatusFailed {
		t.Fatal("our transaction was meant to revert")
	}
	return f, res.TxHash
}

func TestStatusSelfTransferWithTheSameNonceIsFailed(t *testing.T) {
	e := newEnv(t)
	f := e.facilitator(t, nil)
	ctx := context.Background()
	payer, signer := e.payerAccount(t, 1)
	p := sign(t, signer, e.req)
	self := e.selfTransfer(t, payer, signer, p)
	if e.token.BalanceOf(t, e.merchant.Address).Sign() != 0 {
		t.Fatal("the merchant was paid")
	}
	for name, hash := range map[string]string{"no hash": "", "the self-transfer's hash": self.TxHash.Hex()} {
		st, err := f.SettleStatus(ctx, mustRef(t, p, e.req, hash))
		if err != nil || st.State != facilitator.StateFailed || st.Reason != x402.ReasonNonceAlreadyUsed ||
			!strings.Contains(st.Message, self.TxHash.Hex()) {
			t.Fatalf("%s: status = %+v, %v; want failed naming %s", name, st, err, self.TxHash.Hex())
		}
	}
}

func TestStatusOwnRevertedTxFrontRunBySelfTransferIsFailed(t *testing.T) {
	e := newEnv(t)
	payer, signer := e.payerAccount(t, 1)
	p := sign(t, signer, e.req)
	var self *types.Receipt
	f, ours := e.settleUnknownThenMine(t, p, func(*types.Transaction) { self = e.selfTransfer(t, payer, signer, p) })
	st, err := f.SettleStatus(context.Background(), mustRef(t, p, e.req, ours))
	if err != nil || st.State != facilitator.StateFailed || st.Reason != x402.ReasonNonceAlreadyUsed ||
		st.TxHash != ours || !strings.Contains(st.Message, self.TxHash.Hex()) {
		t.Fatalf("status = %+v, %v; want failed", st, err)
	}
	if e.token.BalanceOf(t, e.merchant.Address).Sign() != 0 {
		t.Fatal("the merchant was paid")
	}
}

func TestStatusRacingRelayerDeliveredThePayment(t *testing.T) {
	e := newEnv(t)
	racer := evmtest.NewAccount(t)
	e.chain.Fund(t, racer.Address, big.NewInt(params.Ether))
	p := sign(t, e.payer(t, 1), e.req)
	var raced *types.Receipt
	f, ours := e.settleUnknownThenMine(t, p, func(tx *types.Transaction) {
		// The racer saw our transaction (or the authorization) and sends the same call first.
		r, err := e.chain.SendCall(context.Background(), racer.Key, *tx.To(), tx.Data())
		if err != nil || r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("racer: %v", err)
		}
		raced = r
	})
	st, err := f.SettleStatus(context.Background(), mustRef(t, p, e.req, ours))
	if err != nil || st.State != facilitator.StateSettled || st.TxHash != raced.TxHash.Hex() {
		t.Fatalf("status = %+v, %v; want settled with the racer's %s", st, err, raced.TxHash.Hex())
	}
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Int64() != price {
		t.Fatalf("merchant balance = %s", got)
	}
}

func TestStatusOwnRevertedTxWithTheNonceUnusedIsFailed(t *testing.T) {
	e := newEnv(t)
	payer, signer := e.payerAccount(t, 1)
	p := sign(t, signer, e.req)
	// The payer empties its balance after our simulation: our transaction reverts, the nonce stays unused.
	f, ours := e.settleUnknownThenMine(t, p, func(*types.Transaction) {
		e.token.Transfer(t, payer, evmtest.NewAccount(t).Address, big.NewInt(price))
	})
	if e.token.AuthorizationState(t, payer.Address, authorizationOf(t, p).Nonce) {
		t.Fatal("nonce used")
	}
	st, err := f.SettleStatus(context.Background(), mustRef(t, p, e.req, ours))
	if err != nil || st.State != facilitator.StateFailed || st.Reason != x402.ReasonTransactionFailed || st.TxHash != ours {
		t.Fatalf("status = %+v, %v; want failed", st, err)
	}
}

func TestStatusCancelledAuthorizationIsFailed(t *testing.T) {
	e := newEnv(t)
	f := e.facilitator(t, nil)
	payer, signer := e.payerAccount(t, 1)
	p := sign(t, signer, e.req)
	cancel := e.token.CancelAuthorization(t, payer, authorizationOf(t, p).Nonce)
	st, err := f.SettleStatus(context.Background(), mustRef(t, p, e.req, ""))
	if err != nil || st.State != facilitator.StateFailed || st.Reason != x402.ReasonNonceAlreadyUsed ||
		!strings.Contains(st.Message, "cancel") || !strings.Contains(st.Message, cancel.TxHash.Hex()) {
		t.Fatalf("status = %+v, %v; want failed (cancelled)", st, err)
	}
}

func TestStatusNeedsPayToAndValue(t *testing.T) {
	e := newEnv(t)
	f := e.facilitator(t, nil)
	ctx := context.Background()
	p := sign(t, e.payer(t, 1), e.req)
	res, err := f.Settle(ctx, p, e.req)
	if err != nil || res.State != facilitator.StateSettled {
		t.Fatalf("settle = %+v, %v", res, err)
	}
	for _, hash := range []string{"", res.TxHash} {
		full := mustRef(t, p, e.req, hash)
		if st, err := f.SettleStatus(ctx, full); err != nil || st.State != facilitator.StateSettled || st.TxHash != res.TxHash {
			t.Fatalf("full ref (hash %q) = %+v, %v", hash, st, err)
		}
		noPayTo, noValue := full, full
		noPayTo.PayTo, noValue.Value = "", ""
		for _, ref := range []facilitator.SettleRef{noPayTo, noValue} {
			st, err := f.SettleStatus(ctx, ref)
			if err != nil || st.State != facilitator.StateUnknown || !strings.Contains(st.Message, "lacks") {
				t.Fatalf("ref without payTo or value (hash %q) = %+v, %v; want unknown", hash, st, err)
			}
		}
		// The same nonce, but a payment of another amount or to another address: that payment
		// can never happen any more.
		other, elsewhere := full, full
		other.Value = "1"
		elsewhere.PayTo = evmtest.NewAccount(t).Address.Hex()
		for _, ref := range []facilitator.SettleRef{other, elsewhere} {
			st, err := f.SettleStatus(ctx, ref)
			if err != nil || st.State != facilitator.StateFailed || st.Reason != x402.ReasonNonceAlreadyUsed {
				t.Fatalf("ref of another payment (hash %q) = %+v, %v; want failed", hash, st, err)
			}
		}
	}
}

func TestLookupWithoutAKey(t *testing.T) {
	e := newEnv(t)
	f := e.facilitator(t, nil)
	ctx := context.Background()
	p := sign(t, e.payer(t, 1), e.req)
	res, err := f.Settle(ctx, p, e.req)
	if err != nil || res.State != facilitator.StateSettled {
		t.Fatalf("settle = %+v, %v", res, err)
	}
	l, err := NewLookup(LookupConfig{Client: e.chain.Client, Network: evmtest.Network})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := l.SettleStatus(ctx, mustRef(t, p, e.req, "")); err != nil || st.State != facilitator.StateSettled || st.TxHash != res.TxHash {
		t.Fatalf("lookup = %+v, %v", st, err)
	}
	// A node on another chain answers nothing.
	wrong, err := NewLookup(LookupConfig{Client: e.chain.Client, Network: "eip155:196"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.SettleStatus(ctx, mustRef(t, p, e.req, "")); err == nil || !strings.Contains(err.Error(), "eip155:196") {
		t.Fatalf("lookup on the wrong chain: %v", err)
	}
	if _, err := NewLookup(LookupConfig{Client: e.chain.Client}); err == nil {
		t.Fatal("lookup without a network accepted")
	}
}

// TestPaidPairsTheAuthorizationWithItsTransfer checks the log matching on receipts a relayer
// contract could produce (several authorizations in one transaction), which the test token
// alone cannot.
func TestPaidPairsTheAuthorizationWithItsTransfer(t *testing.T) {
	l, err := newLookup(nil, evmtest.Network, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	token, other := common.HexToAddress("0x1000000000000000000000000000000000000001"), common.HexToAddress("0x1000000000000000000000000000000000000002")
	payer, merchant := common.HexToAddress("0x2000000000000000000000000000000000000001"), common.HexToAddress("0x3000000000000000000000000000000000000001")
	n1, n2 := [32]byte{1}, [32]byte{2}
	want := payment{token: token, payer: payer, payTo: merchant, nonce: n1, value: big.NewInt(price)}
	addr := func(a common.Address) common.Hash { return common.BytesToHash(a.Bytes()) }
	used := func(tk common.Address, nonce [32]byte) *types.Log {
		return &types.Log{Address: tk, Topics: []common.Hash{l.abi.Events["AuthorizationUsed"].ID, addr(payer), nonce}}
	}
	transfer := func(tk, to common.Address, v int64) *types.Log {
		return &types.Log{Address: tk, Topics: []common.Hash{l.abi.Events["Transfer"].ID, addr(payer), addr(to)},
			Data: common.LeftPadBytes(big.NewInt(v).Bytes(), 32)}
	}
	ok := types.ReceiptStatusSuccessful
	tests := []struct {
		name   string
		status uint64
		logs   []*types.Log
		paid   bool
	}{
		{"authorization then its transfer", ok, []*types.Log{used(token, n1), transfer(token, merchant, price)}, true},
		{"transfer first (one authorization)", ok, []*types.Log{transfer(token, merchant, price), used(token, n1)}, true},
		{"reverted", types.ReceiptStatusFailed, []*types.Log{used(token, n1), transfer(token, merchant, price)}, false},
		{"self-transfer", ok, []*types.Log{used(token, n1), transfer(token, payer, 1)}, false},
		{"another value", ok, []*types.Log{used(token, n1), transfer(token, merchant, price+1)}, false},
		{"another token's transfer", ok, []*types.Log{used(token, n1), transfer(other, merchant, price)}, false},
		{"another token's authorization", ok, []*types.Log{used(other, n1), transfer(token, merchant, price)}, false},
		{"another nonce", ok, []*types.Log{used(token, n2), transfer(token, merchant, price)}, false},
		{"ours first of two", ok, []*types.Log{used(token, n1), transfer(token, merchant, price), used(token, n2), transfer(token, payer, 1)}, true},
		{"ours second of two", ok, []*types.Log{used(token, n2), transfer(token, merchant, price), used(token, n1), transfer(token, merchant, price)}, true},
		// The merchant's transfer belongs to the other authorization: ours moved 1 to the payer.
		{"the payment was the other authorization's", ok, []*types.Log{used(token, n1), transfer(token, payer, 1), used(token, n2), transfer(token, merchant, price)}, false},
		{"removed log", ok, []*types.Log{{Address: token, Topics: used(token, n1).Topics, Removed: true}, transfer(token, merchant, price)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.paid(&types.Receipt{Status: tt.status, Logs: tt.logs}, want); got != tt.paid {
				t.Fatalf("paid = %t, want %t", got, tt.paid)
			}
		})
	}
}

// When the racer lands between our simulation and our transaction and our receipt arrives, Settle
// does not claim the payment (a replay must never read as settled) but leaves it to SettleStatus.
func TestSettleRevertedBehindARacerIsUnknownThenSettled(t *testing.T) {
	e := newEnv(t)
	racer := evmtest.NewAccount(t)
	e.chain.Fund(t, racer.Address, big.NewInt(params.Ether))
	p := sign(t, e.payer(t, 1), e.req)
	var raced *types.Receipt
	f := e.facilitator(t, func(c *Config) {
		c.Client = &frontRunClient{Client: e.chain.Client, before: func(tx *types.Transaction) {
			r, err := e.chain.SendCall(context.Background(), racer.Key, *tx.To(), tx.Data())
			if err != nil || r.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("racer: %v", err)
			}
			raced = r
		}}
	})
	ctx := context.Background()
	res, err := f.Settle(ctx, p, e.req)
	if err != nil || res.State != facilitator.StateUnknown || res.TxHash == "" || !strings.Contains(res.Message, raced.TxHash.Hex()) {
		t.Fatalf("settle = %+v, %v; want unknown naming the racer", res, err)
	}
	st, err := f.SettleStatus(ctx, mustRef(t, p, e.req, res.TxHash))
	if err != nil || st.State != facilitator.StateSettled || st.TxHash != raced.TxHash.Hex() {
		t.Fatalf("status = %+v, %v", st, err)
	}

	// Front-run by the payer's self-transfer instead: failed for good.
	payer, signer := e.payerAccount(t, 1)
	p2 := sign(t, signer, e.req)
	f2 := e.facilitator(t, func(c *Config) {
		c.Client = &frontRunClient{Client: e.chain.Client, before: func(*types.Transaction) { e.selfTransfer(t, payer, signer, p2) }}
	})
	res, err = f2.Settle(ctx, p2, e.req)
	if err != nil || res.State != facilitator.StateFailed || res.Reason != x402.ReasonNonceAlreadyUsed {
		t.Fatalf("settle front-run by a self-transfer = %+v, %v", res, err)
	}
}
