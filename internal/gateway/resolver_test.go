package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/httpx402"
	"github.com/insforge/integrations-operator/internal/facilitator/onchain"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/testutil/evmtest"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// resolveWith runs the ledger's resolver with r until no row is settling or pending (or the
// test's deadline).
func resolveWith(t *testing.T, e *env, r Resolver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(t), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.ledger.RunResolver(ctx, ledger.ResolverConfig{
			Route: routeName, Resolver: r, Interval: 20 * time.Millisecond, MinAge: time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		})
	}()
	defer func() { cancel(); <-done }()
	for ctx.Err() == nil {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM x402_payments WHERE status IN ('settling','pending')`).Scan(&n); err == nil && n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("rows still unresolved: %+v", e.rows(t))
}

// chainLookup is the key-less chain lookup the gateway runs next to okx and http facilitators.
func chainLookup(t *testing.T, e *env) *onchain.Lookup {
	t.Helper()
	l, err := onchain.NewLookup(onchain.LookupConfig{Client: e.chain.Client, Network: evmtest.Network})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// keyedPayer is a payer whose key the test holds, funded with n payments' worth of tokens and
// ether for gas: it can spend its own nonces.
func keyedPayer(t *testing.T, e *env, n int64) (evmtest.Account, *eip3009.Signer) {
	t.Helper()
	a := evmtest.NewAccount(t)
	e.token.Mint(t, a.Address, big.NewInt(n*price))
	e.chain.Fund(t, a.Address, big.NewInt(params.Ether))
	return a, eip3009.NewSigner(a.Key)
}

// signed signs a payment for req and returns the header and its authorization.
func signed(t *testing.T, s *eip3009.Signer, req x402.PaymentRequirements) (string, eip3009.Authorization) {
	t.Helper()
	p, err := s.Sign(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	exact, err := p.ExactEVM()
	if err != nil {
		t.Fatal(err)
	}
	a, err := eip3009.ParseAuthorization(exact.Authorization)
	if err != nil {
		t.Fatal(err)
	}
	h, err := x402.EncodePaymentSignature(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, a
}

// selfTransferCall is the payer's attack: the payment's nonce spent on 1 unit to itself.
func selfTransferCall(e *env, s *eip3009.Signer, a eip3009.Authorization) ([]byte, error) {
	a.To, a.Value = s.Address(), big.NewInt(1)
	sig, err := s.SignAuthorization(e.token.Domain(), a)
	if err != nil {
		return nil, err
	}
	return e.token.TransferWithAuthorizationCall(a, sig)
}

// spend sends a call from key and mines it; it may run on the gateway's goroutines, so it
// reports with t.Error.
func spend(t *testing.T, e *env, key evmtest.Account, data []byte, what string) *types.Receipt {
	r, err := e.chain.SendCall(context.Background(), key.Key, e.token.Address, data)
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Errorf("%s: %v", what, err)
		return nil
	}
	return r
}

// frontRun wraps the settling client: hook runs once, before our settlement transaction is
// sent, so that another transaction lands between our simulation and our transaction.
type frontRun struct {
	onchain.Client
	once sync.Once
	hook atomic.Pointer[func(tx *types.Transaction)]
}

func (c *frontRun) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	if h := c.hook.Load(); h != nil {
		c.once.Do(func() { (*h)(tx) })
	}
	return c.Client.SendTransaction(ctx, tx)
}

// newFrontRunEnv is a gateway on the onchain facilitator whose settlement is front-run and
// whose receipt wait ends before anything is mined: the row stays pending with our hash.
func newFrontRunEnv(t *testing.T) (*env, *frontRun) {
	return newFrontRunEnvMining(t, false)
}

// newFrontRunEnvMining is newFrontRunEnv; with mine, our transaction is mined at once and its
// (reverted) receipt arrives.
func newFrontRunEnvMining(t *testing.T, mine bool) (*env, *frontRun) {
	fr := &frontRun{}
	e := newEnv(t, envOpts{onchain: func(c *onchain.Config) {
		fr.Client, c.Client = c.Client, fr
		if !mine {
			c.AfterSend, c.ReceiptTimeout = nil, 200*time.Millisecond
		}
	}})
	return e, fr
}

// payPending pays and expects the settlement outcome to be unknown; it returns the row.
func payPending(t *testing.T, e *env, h string) ledger.Payment {
	t.Helper()
	a := e.pay(t, "/weather", h)
	if a.status != http.StatusPaymentRequired || a.json.Reason != string(x402.ReasonSettlementPending) {
		t.Fatalf("status %d %s", a.status, a.body)
	}
	rows := e.rows(t)
	last := rows[len(rows)-1]
	if last.Status != ledger.StatusPending {
		t.Fatalf("row = %+v", last)
	}
	return last
}

// wantFailedNotCounted checks the attack bought nothing: the row failed, no revenue, no replay.
func wantFailedNotCounted(t *testing.T, e *env, h string) {
	t.Helper()
	rows := e.rows(t)
	if len(rows) != 1 || rows[0].Status != ledger.StatusFailed || !strings.Contains(rows[0].FailureReason, string(x402.ReasonNonceAlreadyUsed)) {
		t.Fatalf("rows = %+v, want failed (nonce used elsewhere)", rows)
	}
	tot, err := e.ledger.Totals(testCtx(t), routeName)
	if err != nil || tot.Real.SettledCount != 0 {
		t.Fatalf("totals = %+v, %v", tot.Real, err)
	}
	if e.merchantBalance(t) != 0 {
		t.Fatalf("merchant = %d", e.merchantBalance(t))
	}
	upstream := e.up.count()
	if a := e.pay(t, "/weather", h); a.status != http.StatusPaymentRequired {
		t.Fatalf("replay after the attack: %d %s", a.status, a.body)
	}
	if e.up.count() != upstream {
		t.Fatal("the replay reached the upstream")
	}
}

func TestResolverSelfTransferWithTheSameNonceIsFailed(t *testing.T) {
	e := newEnv(t, envOpts{})
	// The settle outcome is lost before anything was sent: the row waits for the resolver.
	e.fac.settle = func(context.Context, x402.PaymentPayload, x402.PaymentRequirements) (facilitator.SettleResult, error) {
		return facilitator.Unknown("", evmtest.Network, "", "settle timed out"), nil
	}
	payer, s := keyedPayer(t, e, 1)
	h, auth := signed(t, s, e.requirements())
	payPending(t, e, h)
	call, err := selfTransferCall(e, s, auth)
	if err != nil {
		t.Fatal(err)
	}
	spend(t, e, payer, call, "self-transfer")
	resolveAll(t, e)
	wantFailedNotCounted(t, e, h)
}

func TestResolverOwnRevertedTxFrontRunBySelfTransferIsFailed(t *testing.T) {
	e, fr := newFrontRunEnv(t)
	payer, s := keyedPayer(t, e, 1)
	h, auth := signed(t, s, e.requirements())
	call, err := selfTransferCall(e, s, auth)
	if err != nil {
		t.Fatal(err)
	}
	hook := func(*types.Transaction) { spend(t, e, payer, call, "self-transfer") }
	fr.hook.Store(&hook)
	row := payPending(t, e, h)
	e.chain.Commit() // our transaction: it reverts, the nonce is spent
	if r, err := e.chain.Client.TransactionReceipt(testCtx(t), common.HexToHash(row.TxHash)); err != nil || r.Status != types.ReceiptStatusFailed {
		t.Fatalf("our transaction: %+v, %v", r, err)
	}
	resolveAll(t, e)
	wantFailedNotCounted(t, e, h)
}

func TestResolverRacingRelayerSettlesWithTheRacersTx(t *testing.T) {
	for name, mine := range map[string]bool{"receipt lost": false, "receipt arrived": true} {
		t.Run(name, func(t *testing.T) { testRacingRelayer(t, mine) })
	}
}

func testRacingRelayer(t *testing.T, mine bool) {
	e, fr := newFrontRunEnvMining(t, mine)
	racer := evmtest.NewAccount(t)
	e.chain.Fund(t, racer.Address, big.NewInt(params.Ether))
	payer := e.payer(t, 1)
	h := sign(t, payer, e.requirements())
	var raced atomic.Pointer[types.Receipt]
	hook := func(tx *types.Transaction) {
		// Another relayer submits the same authorization first.
		if r := spend(t, e, racer, tx.Data(), "racer"); r != nil {
			raced.Store(r)
		}
	}
	fr.hook.Store(&hook)
	row := payPending(t, e, h)
	e.chain.Commit() // ours reverts: the racer used the nonce
	resolveAll(t, e)
	want := raced.Load().TxHash.Hex()
	rows := e.rows(t)
	if len(rows) != 1 || rows[0].Status != ledger.StatusSettled || rows[0].TxHash != want || rows[0].TxHash == row.TxHash {
		t.Fatalf("rows = %+v, want settled with the racer's %s", rows, want)
	}
	if e.merchantBalance(t) != price || e.balance(t, payer) != 0 {
		t.Fatalf("merchant %d payer %d", e.merchantBalance(t), e.balance(t, payer))
	}
	// The payer paid, so its retry gets the content.
	if a := e.pay(t, "/weather", h); a.status != http.StatusOK {
		t.Fatalf("retry after resolve: %d %s", a.status, a.body)
	}
}

func TestResolverOwnRevertedTxWithTheNonceUnusedIsFailed(t *testing.T) {
	e, fr := newFrontRunEnv(t)
	payer, s := keyedPayer(t, e, 1)
	h, auth := signed(t, s, e.requirements())
	// The payer empties its balance after our simulation: our transaction reverts and the
	// nonce stays unused.
	tt, _ := e.token.Binding()
	empty := tt.PackTransfer(evmtest.NewAccount(t).Address, big.NewInt(price))
	hook := func(*types.Transaction) { spend(t, e, payer, empty, "emptying the payer") }
	fr.hook.Store(&hook)
	row := payPending(t, e, h)
	e.chain.Commit()
	if e.token.AuthorizationState(t, payer.Address, auth.Nonce) {
		t.Fatal("nonce used")
	}
	resolveAll(t, e)
	rows := e.rows(t)
	if len(rows) != 1 || rows[0].Status != ledger.StatusFailed || rows[0].TxHash != row.TxHash ||
		!strings.Contains(rows[0].FailureReason, string(x402.ReasonTransactionFailed)) {
		t.Fatalf("rows = %+v, want failed with our reverted tx", rows)
	}
}

// statusSays answers SettleStatus with a fixed result, as a facilitator's status API might.
type statusSays struct {
	facilitator.Facilitator
	res   facilitator.SettleResult
	calls atomic.Int64
}

func (s *statusSays) SettleStatus(context.Context, facilitator.SettleRef) (facilitator.SettleResult, error) {
	s.calls.Add(1)
	return s.res, nil
}

func TestResolverConfirmsAFacilitatorsSettledOnChain(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.fac.settle = func(context.Context, x402.PaymentPayload, x402.PaymentRequirements) (facilitator.SettleResult, error) {
		return facilitator.Unknown("", evmtest.Network, "", "settle timed out"), nil
	}
	payer, s := keyedPayer(t, e, 1)
	h, auth := signed(t, s, e.requirements())
	payPending(t, e, h)
	call, err := selfTransferCall(e, s, auth)
	if err != nil {
		t.Fatal(err)
	}
	self := spend(t, e, payer, call, "self-transfer")
	// The facilitator claims success and names the self-transfer: a real, successful transaction.
	says := &statusSays{Facilitator: e.onchain, res: facilitator.SettleResult{
		State: facilitator.StateSettled, TxHash: self.TxHash.Hex(), Network: evmtest.Network,
	}}
	resolveWith(t, e, Resolver{Facilitator: says, Chain: chainLookup(t, e)})
	if says.calls.Load() == 0 {
		t.Fatal("the facilitator's status was not asked")
	}
	wantFailedNotCounted(t, e, h)
}

// x402Server serves the standard x402 facilitator API on a backend facilitator; dropSettles
// makes it settle and then close the connection without answering.
type x402Server struct {
	*httptest.Server
	backend     facilitator.Facilitator
	dropSettles atomic.Int64
	settled     atomic.Pointer[facilitator.SettleResult]
}

func newX402Server(t *testing.T, backend facilitator.Facilitator) *x402Server {
	s := &x402Server{backend: backend}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *x402Server) serve(w http.ResponseWriter, r *http.Request) {
	var body x402.FacilitatorRequest
	if r.Method == http.MethodPost {
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
	}
	var out any
	switch r.URL.Path {
	case "/verify":
		v, err := s.backend.Verify(r.Context(), body.PaymentPayload, body.PaymentRequirements)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out = v.Response()
	case "/settle":
		res, err := s.backend.Settle(r.Context(), body.PaymentPayload, body.PaymentRequirements)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		s.settled.Store(&res)
		if s.dropSettles.Add(-1) >= 0 {
			// The money moved; the answer is lost in transit.
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		}
		out = res.Response()
	case "/supported":
		sup, err := s.backend.Supported(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out = sup
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func TestResolverHTTPFacilitatorSettleLostInTransit(t *testing.T) {
	e := newEnv(t, envOpts{})
	srv := newX402Server(t, e.onchain)
	client, err := httpx402.New(httpx402.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	e.fac = &counting{Facilitator: client}
	e.start(t)
	payer := e.payer(t, 2)
	if a := e.pay(t, "/weather", sign(t, payer, e.requirements())); a.status != http.StatusOK {
		t.Fatalf("http facilitator happy path: %d %s", a.status, a.body)
	}

	srv.dropSettles.Store(1)
	h := sign(t, payer, e.requirements())
	row := payPending(t, e, h)
	onChain := srv.settled.Load()
	if onChain == nil || onChain.State != facilitator.StateSettled || row.TxHash != "" || e.merchantBalance(t) != 2*price {
		t.Fatalf("the facilitator settled %+v; row %+v; merchant %d", onChain, row, e.merchantBalance(t))
	}
	// The standard API has no status call: the chain answers.
	if _, err := client.SettleStatus(testCtx(t), facilitator.SettleRef{}); !errors.Is(err, facilitator.ErrStatusUnsupported) {
		t.Fatalf("httpx402 status: %v", err)
	}
	resolveWith(t, e, Resolver{Facilitator: client, Chain: chainLookup(t, e)})
	rows := e.rows(t)
	if rows[1].Status != ledger.StatusSettled || rows[1].TxHash != onChain.TxHash {
		t.Fatalf("rows = %+v, want settled %s", rows, onChain.TxHash)
	}
	if a := e.pay(t, "/weather", h); a.status != http.StatusOK {
		t.Fatalf("retry after resolve: %d %s", a.status, a.body)
	}
}

func TestResolverRefusesARowItsAuthorizationDisagreesWith(t *testing.T) {
	e := newEnv(t, envOpts{})
	payer := e.payer(t, 1)
	p, err := payer.Sign(e.requirements(), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	exact, _ := p.ExactEVM()
	a := exact.Authorization
	good := ledger.Payment{ID: "r", Payer: strings.ToLower(a.From), Nonce: strings.ToLower(a.Nonce), PayTo: strings.ToLower(a.To),
		Amount: a.Value, Network: evmtest.Network, Asset: e.token.Address.Hex(), Payload: raw}
	says := &statusSays{Facilitator: e.onchain, res: facilitator.SettleResult{State: facilitator.StateSettled, TxHash: "0x" + strings.Repeat("ab", 32)}}
	r := Resolver{Facilitator: says, Chain: chainLookup(t, e)}
	other := evmtest.NewAccount(t).Address.Hex()
	for name, mutate := range map[string]func(*ledger.Payment){
		"payTo":  func(p *ledger.Payment) { p.PayTo = other },
		"amount": func(p *ledger.Payment) { p.Amount = "1" },
		"payer":  func(p *ledger.Payment) { p.Payer = other },
		"nonce":  func(p *ledger.Payment) { p.Nonce = "0x" + strings.Repeat("00", 32) },
	} {
		row := good
		mutate(&row)
		if o, err := r.Resolve(testCtx(t), row); err == nil {
			t.Errorf("%s differs: resolved %+v", name, o)
		}
	}
	if says.calls.Load() != 0 {
		t.Fatal("a disagreeing row was looked up")
	}
	// The row as written: looked up (and, the nonce being unused, not settled).
	o, err := r.Resolve(testCtx(t), good)
	if err != nil || o.Status != ledger.StatusPending || says.calls.Load() != 1 {
		t.Fatalf("agreeing row = %+v, %v", o, err)
	}
}
