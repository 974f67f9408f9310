package attack

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/testutil/rpcbridge"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// resolveTimeout bounds waiting for the resolver (resolver.minAge is 6 s, interval 250 ms).
const resolveTimeout = 60 * time.Second

// final reports whether a ledger status is terminal.
func final(status string) bool {
	return status == "settled" || status == "failed" || status == "released"
}

// waitFinal waits until payer's only row leaves verifying/settling/pending and returns it.
func waitFinal(t *testing.T, s *stack, payer common.Address) row {
	t.Helper()
	var r row
	eventually(t, resolveTimeout, "the resolver decides the row", func() (bool, string) {
		rows := s.rows(t, payer)
		if len(rows) != 1 {
			return false, describe(rows)
		}
		r = rows[0]
		return final(r.Status), describe(rows)
	})
	return r
}

// wantPending checks a 402 settlement_pending answer.
func wantPending(t *testing.T, a answer) {
	t.Helper()
	want402(t, a, x402.ReasonSettlementPending)
	wantReceipt(t, a, false, "")
	if retryAfter(a) < 1 {
		t.Errorf("settlement_pending without Retry-After: %v", a.Header)
	}
}

// testPhantomRevenue: the gateway's settle outcome is unknown (its transaction never reached
// the chain), and the payer spends the same nonce on a 1-unit transfer to themselves. The
// resolver must book nothing: the row fails, the route's settled total stays 0, the merchant
// got nothing, and a replay is not served.
func testPhantomRevenue(t *testing.T, w *world) {
	s := w.newStack(t, stackOpts{route: "shop/phantom", routes: []map[string]any{{"path": "/reports/*", "price": "0.01"}}})
	payer := w.payer(t, price)
	s.bridge.SetSendHook(func(tx *types.Transaction) rpcbridge.Action {
		if authorizationFrom(tx) == payer.Address() {
			return rpcbridge.Drop
		}
		return rpcbridge.Forward
	})
	c := w.client()
	reqs, res := c.challenge(t, s.gw, "/reports/p1")
	h, auth := signWith(t, payer, reqs, res, nil)
	wantPending(t, c.pay(t, s.gw, "/reports/p1", h))
	if s.bridge.Calls(rpcbridge.MethodSendRawTransaction) == 0 {
		t.Fatal("the gateway never tried to send its settlement")
	}

	// The payer spends the nonce on 1 unit to themselves.
	self := auth
	self.To, self.Value = payer.Address(), big.NewInt(1)
	d, err := eip3009.DomainFor(reqs)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := payer.SignAuthorization(d, self)
	if err != nil {
		t.Fatal(err)
	}
	w.submit(t, self, sig)

	r := waitFinal(t, s, payer.Address())
	if r.Status != "failed" {
		t.Errorf("the resolver booked the self-transfer: row %+v, want failed", r)
	}
	if n, sum := s.settledTotal(t, s.route); n != 0 || sum != "0" {
		t.Errorf("the route's settled total is %s in %d rows, want 0", sum, n)
	}
	if b := w.balance(t, s.merchant); b != 0 {
		t.Errorf("merchant balance %d, want 0", b)
	}
	a := c.pay(t, s.gw, "/reports/p1", h)
	want402(t, a, x402.ReasonNonceAlreadyUsed)
	if n := s.up.count("/reports/p1"); n != 1 {
		t.Errorf("upstream calls %d, want 1 (the first attempt, whose answer was withheld)", n)
	}
}

// testHTTPFacilitator: a standard x402 facilitator reached over HTTP. Its settle answer lost
// after it settled wedges nothing: 402 settlement_pending, resolved settled through rpcURL, the
// payer's retry gets the content once. A facilitator that redirects is never followed.
func testHTTPFacilitator(t *testing.T, w *world) {
	fs := newFacilitatorServer(t, w)
	s := w.newStack(t, stackOpts{route: "shop/http", kind: config.KindHTTP, facilitatorURL: fs.URL,
		routes: []map[string]any{{"path": "/reports/*", "price": "0.01"}},
		env:    []string{config.EnvFacilitatorHeaderPrefix + "Authorization=" + facilitatorToken}})
	t.Cleanup(func() {
		if !secretFree(s.gw.Logs(), facilitatorToken) {
			t.Error("the facilitator credential appears in the gateway's logs")
		}
	})

	t.Run("settle answer lost after settling", func(t *testing.T) {
		t.Parallel()
		payer := w.payer(t, price)
		fs.set(payer.Address(), behaviour{loseSettleAnswer: true})
		c := w.client()
		reqs, res := c.challenge(t, s.gw, "/reports/w1")
		h := sign(t, payer, reqs, res)
		wantPending(t, c.pay(t, s.gw, "/reports/w1", h))
		tx := fs.settledTx(payer.Address())
		if tx == "" {
			t.Fatal("the facilitator did not settle")
		}
		if n := s.up.count("/reports/w1"); n != 1 {
			t.Errorf("upstream calls after the first attempt: %d, want 1", n)
		}
		r := waitFinal(t, s, payer.Address())
		if r.Status != "settled" || !strings.EqualFold(r.TxHash, tx) {
			t.Fatalf("row %+v, want settled with %s", r, tx)
		}
		a := c.pay(t, s.gw, "/reports/w1", h)
		if a.Status != 200 || !strings.Contains(string(a.Body), "paid content of /reports/w1") {
			t.Fatalf("the payer's retry: %v", a)
		}
		wantReceipt(t, a, true, tx)
		want402(t, c.pay(t, s.gw, "/reports/w1", h), x402.ReasonPaymentUsed)
		if n := s.up.count("/reports/w1"); n != 2 {
			t.Errorf("upstream calls %d, want 2 (the withheld first answer and the retry)", n)
		}
		if b := w.balance(t, s.merchant); b != price {
			t.Errorf("merchant balance %d, want %d", b, price)
		}
		if b := w.balance(t, payer.Address()); b != 0 {
			t.Errorf("payer balance %d, want 0 (charged once)", b)
		}
	})

	t.Run("verify redirect is not followed", func(t *testing.T) {
		t.Parallel()
		payer := w.payer(t, price)
		th := newThief(t)
		fs.set(payer.Address(), behaviour{redirectVerify: th.URL})
		c := w.client()
		reqs, res := c.challenge(t, s.gw, "/reports/r1")
		a := c.pay(t, s.gw, "/reports/r1", sign(t, payer, reqs, res))
		if a.Status != 503 || a.JSON.Reason != string(x402.ReasonUnexpectedVerifyError) {
			t.Errorf("answer %v, want 503 %s", a, x402.ReasonUnexpectedVerifyError)
		}
		th.wantUntouched(t)
		if n := s.up.count("/reports/r1"); n != 0 {
			t.Errorf("upstream calls %d, want 0", n)
		}
	})

	t.Run("settle redirect is not followed", func(t *testing.T) {
		t.Parallel()
		payer := w.payer(t, price)
		th := newThief(t)
		fs.set(payer.Address(), behaviour{redirectSettle: th.URL})
		c := w.client()
		reqs, res := c.challenge(t, s.gw, "/reports/r2")
		// A settle that was redirected may have been acted on: its outcome is unknown.
		wantPending(t, c.pay(t, s.gw, "/reports/r2", sign(t, payer, reqs, res)))
		th.wantUntouched(t)
		if b := w.balance(t, payer.Address()); b != price {
			t.Errorf("payer balance %d, want %d", b, price)
		}
	})
}

// testPerRouteResolution: two gateways, two routes, one table, one mock and one onchain. The
// mock route's resolver runs first and alone; it must not decide the onchain route's pending
// row, which its own resolver settles from the chain.
func testPerRouteResolution(t *testing.T, w *world) {
	alpha := w.newStack(t, stackOpts{route: "shop/alpha", kind: config.KindMock, routes: []map[string]any{{"path": "/alpha/*", "price": "0.01"}}})
	// Let the mock route's resolver take whatever lock it takes before the other gateway starts,
	// so that on a gateway with one resolver lock per table the mock one holds it. Best effort:
	// the order only makes the old behaviour fail every time.
	deadline := time.Now().Add(10 * time.Second)
	for !leading(alpha.gw.Metrics(t)) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	beta := w.newStack(t, stackOpts{route: "shop/beta", db: alpha.db, routes: []map[string]any{{"path": "/beta/*", "price": "0.01"}}})

	payer := w.payer(t, price)
	beta.bridge.SetSendHook(func(tx *types.Transaction) rpcbridge.Action {
		if authorizationFrom(tx) == payer.Address() {
			return rpcbridge.ForwardThenFail
		}
		return rpcbridge.Forward
	})
	c := w.client()
	reqs, res := c.challenge(t, beta.gw, "/beta/x")
	h := sign(t, payer, reqs, res)
	wantPending(t, c.pay(t, beta.gw, "/beta/x", h))
	sent := beta.bridge.Sent()
	if len(sent) != 1 {
		t.Fatalf("forwarded transactions %v, want 1", sent)
	}
	r := waitFinal(t, beta, payer.Address())
	if r.Status != "settled" || !strings.EqualFold(r.TxHash, sent[0]) || r.Route != "shop/beta" {
		t.Fatalf("the onchain route's paid row is %+v, want settled with %s", r, sent[0])
	}
	a := c.pay(t, beta.gw, "/beta/x", h)
	if a.Status != 200 {
		t.Fatalf("the payer's retry: %v", a)
	}
	wantReceipt(t, a, true, sent[0])
	if b := w.balance(t, beta.merchant); b != price {
		t.Errorf("merchant balance %d, want %d", b, price)
	}
	// The mock route still works.
	mp := w.payer(t, 0)
	reqs, res = c.challenge(t, alpha.gw, "/alpha/y")
	if a := c.pay(t, alpha.gw, "/alpha/y", sign(t, mp, reqs, res)); a.Status != 200 {
		t.Errorf("mock payment: %v", a)
	}
}

// leading reports whether metrics show a resolver leading.
func leading(metrics string) bool {
	for line := range strings.SplitSeq(metrics, "\n") {
		if strings.HasPrefix(line, "x402_gateway_resolver_leader") && strings.HasSuffix(line, " 1") {
			return true
		}
	}
	return false
}

// testMockRowsAfterSwitch: a payment settled by the mock facilitator does not unlock content
// once the route switches to a real facilitator on the same table.
func testMockRowsAfterSwitch(t *testing.T, w *world) {
	routes := []map[string]any{{"path": "/weather", "price": "0.01"}}
	s := w.newStack(t, stackOpts{route: "shop/switch", kind: config.KindMock, routes: routes})
	payer := w.payer(t, 0)
	c := w.client()
	reqs, res := c.challenge(t, s.gw, "/weather")
	h := sign(t, payer, reqs, res)
	if a := c.pay(t, s.gw, "/weather", h); a.Status != 200 {
		t.Fatalf("mock payment: %v", a)
	}
	if rows := s.rows(t, payer.Address()); len(rows) != 1 || rows[0].Status != "settled" || !rows[0].Mock {
		t.Fatalf("ledger rows %s, want one settled mock row", describe(rows))
	}

	// The same route, now on the chain: same table, same payTo and price.
	cfg := make(map[string]any, len(s.cfg))
	for k, v := range s.cfg {
		cfg[k] = v
	}
	var keyEnv string
	_, cfg["facilitator"], keyEnv = w.onchainFacilitator(t)
	s.gw.Restart(t, cfg, append(s.env, keyEnv))

	a := c.pay(t, s.gw, "/weather", h)
	want402(t, a, x402.ReasonNonceAlreadyUsed)
	if n := s.up.count("/weather"); n != 1 {
		t.Errorf("upstream calls %d, want 1 (the mock-paid one)", n)
	}
}
