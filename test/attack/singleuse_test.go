package attack

import (
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// spoofPayer is an address a client claims to be in payer headers.
const spoofPayer = "0x000000000000000000000000000000000000dEaD"

// testReplay: a settled payment is not a bearer token. Its replays, from any client, with any
// query, spelling or body, get 402 payment_already_used with the receipt of the settlement;
// the upstream is called once.
func testReplay(t *testing.T, w *world, s *stack) {
	payer := w.payer(t, 2*price)
	c := w.client()
	reqs, res := c.challenge(t, s.gw, "/reports/s1")
	h := sign(t, payer, reqs, res)
	first := c.pay(t, s.gw, "/reports/s1", h,
		[2]string{"X_Payment_Payer", spoofPayer}, [2]string{config.DefaultPayerHeader, spoofPayer})
	if first.Status != 200 || !strings.Contains(string(first.Body), "paid content of /reports/s1") {
		t.Fatalf("payment: %v", first)
	}
	wantReceipt(t, first, true, "")
	if first.Receipt == nil {
		t.FailNow()
	}
	tx := first.Receipt.Transaction
	// The upstream sees the verified payer, never the client's claim (in any spelling).
	hits := s.up.hitsOf("/reports/s1")
	if len(hits) != 1 {
		t.Fatalf("upstream calls %d, want 1", len(hits))
	}
	for name, vs := range hits[0].Header {
		for _, v := range vs {
			if strings.Contains(strings.ToLower(v), strings.ToLower(spoofPayer)) {
				t.Errorf("the client's payer claim reached the upstream as %s: %s", name, v)
			}
		}
	}
	if got := hits[0].Header.Get(config.DefaultPayerHeader); got != payer.Address().Hex() {
		t.Errorf("upstream %s = %q, want %s", config.DefaultPayerHeader, got, payer.Address().Hex())
	}

	replays := []struct {
		name   string
		client client
		r      req
	}{
		{"same request", c, req{Target: "/reports/s1"}},
		{"another client", w.client(), req{Target: "/reports/s1"}},
		{"another query", w.client(), req{Target: "/reports/s1?page=2"}},
		{"another spelling", w.client(), req{Target: "//reports/./s1"}},
		{"with a body", w.client(), req{Method: http.MethodPost, Target: "/reports/s1", Body: []byte(`{"more":true}`)}},
	}
	for _, rp := range replays {
		rp.r.Header = append(rp.r.Header, [2]string{x402.HeaderPaymentSignature, h})
		a := rp.client.do(t, s.gw, rp.r)
		want402(t, a, x402.ReasonPaymentUsed)
		wantReceipt(t, a, true, tx)
		if a.amount() != priceReports {
			t.Errorf("%s: the replay's answer carries no fresh challenge: %v", rp.name, a)
		}
	}
	// Another resource: the payment was for /reports/s1.
	other := w.client().pay(t, s.gw, "/reports/other-s1", h)
	want402(t, other, x402.ReasonNonceAlreadyUsed)

	if n := s.up.count("/reports/s1"); n != 1 {
		t.Errorf("upstream calls for /reports/s1: %d, want 1", n)
	}
	if n := s.up.count("/reports/other-s1"); n != 0 {
		t.Errorf("upstream calls for /reports/other-s1: %d, want 0", n)
	}
	rows := s.rows(t, payer.Address())
	if len(rows) != 1 || rows[0].Status != "settled" || rows[0].Endpoint != "/reports/s1" || !strings.EqualFold(rows[0].TxHash, tx) {
		t.Errorf("ledger rows %s, want one settled /reports/s1 with %s", describe(rows), tx)
	}
	if b := w.balance(t, payer.Address()); b != price {
		t.Errorf("payer balance %d, want %d (charged once)", b, price)
	}
}

// testConcurrentCopies: 50 clients send copies of one payment at once and retry while it is
// in flight, as clients do: one of them gets the content, the others 402 payment_already_used,
// and the upstream is called once.
func testConcurrentCopies(t *testing.T, w *world, s *stack) {
	payer := w.payer(t, 2*price)
	reqs, res := w.client().challenge(t, s.gw, "/reports/s2")
	h := sign(t, payer, reqs, res)
	const n = 50
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		c := w.client()
		wg.Go(func() {
			deadline := time.Now().Add(30 * time.Second)
			for {
				a, err := c.try(s.gw, req{Target: "/reports/s2", Header: [][2]string{{x402.HeaderPaymentSignature, h}}})
				if err != nil {
					t.Errorf("copy %d: %v", i, err)
					return
				}
				answers[i] = a
				// In flight elsewhere: retry, as a client honouring Retry-After would.
				busy := a.JSON.Reason == string(x402.ReasonSettlementPending) || a.JSON.Reason == string(x402.ReasonPaymentInFlight)
				if !busy || time.Now().After(deadline) {
					return
				}
				time.Sleep(100 * time.Millisecond) // shorter than Retry-After, to press harder
			}
		})
	}
	wg.Wait()
	ok := 0
	for _, a := range answers {
		switch {
		case a.Status == 200:
			ok++
		case a.Status == 402 && a.JSON.Reason == string(x402.ReasonPaymentUsed):
		default:
			t.Errorf("unexpected final answer %v", a)
		}
	}
	if ok != 1 {
		t.Errorf("%d copies got the content, want exactly 1", ok)
	}
	if got := s.up.count("/reports/s2"); got != 1 {
		t.Errorf("upstream calls %d, want 1", got)
	}
	if b := w.balance(t, payer.Address()); b != price {
		t.Errorf("payer balance %d, want %d", b, price)
	}
}

// testPaidSpelling: a payment made on a spelling of the path is recorded and served under the
// canonical path; the upstream receives the canonical path.
func testPaidSpelling(t *testing.T, w *world, s *stack) {
	payer := w.payer(t, price)
	c := w.client()
	reqs, res := c.challenge(t, s.gw, "/reports/s3")
	h := sign(t, payer, reqs, res)
	a := c.pay(t, s.gw, "/reports/./s3;x=1", h)
	if a.Status != 200 {
		t.Fatalf("payment on a spelling: %v", a)
	}
	if hits := s.up.hitsOf("/reports/s3"); len(hits) != 1 || hits[0].Target != "/reports/s3" {
		t.Errorf("upstream received %v, want [GET /reports/s3]", targets(hits))
	}
	if rows := s.rows(t, payer.Address()); len(rows) != 1 || rows[0].Endpoint != "/reports/s3" {
		t.Errorf("ledger rows %s, want endpoint /reports/s3", describe(rows))
	}
	want402(t, c.pay(t, s.gw, "/reports/s3", h), x402.ReasonPaymentUsed)
}

// testValidity: a payment valid for 50 years is refused before anything is recorded.
func testValidity(t *testing.T, w *world, s *stack) {
	t.Run("validBefore 50 years out", func(t *testing.T) {
		t.Parallel()
		payer := w.payer(t, price)
		c := w.client()
		reqs, res := c.challenge(t, s.gw, "/reports/v1")
		h, _ := signWith(t, payer, reqs, res, func(a *eip3009.Authorization) {
			a.ValidBefore = big.NewInt(time.Now().AddDate(50, 0, 0).Unix())
		})
		want402(t, c.pay(t, s.gw, "/reports/v1", h), x402.ReasonValidBefore)
		if rows := s.rows(t, payer.Address()); len(rows) != 0 {
			t.Errorf("ledger rows %s, want none", describe(rows))
		}
		if n := s.up.count("/reports/v1"); n != 0 {
			t.Errorf("upstream calls %d, want 0", n)
		}
		if b := w.balance(t, payer.Address()); b != price {
			t.Errorf("payer balance %d, want %d", b, price)
		}
	})
	t.Run("validAfter in the future", func(t *testing.T) {
		t.Parallel()
		payer := w.payer(t, price)
		c := w.client()
		reqs, res := c.challenge(t, s.gw, "/reports/v2")
		h, _ := signWith(t, payer, reqs, res, func(a *eip3009.Authorization) {
			a.ValidAfter = big.NewInt(time.Now().Add(time.Hour).Unix())
		})
		want402(t, c.pay(t, s.gw, "/reports/v2", h), x402.ReasonValidAfter)
		if rows := s.rows(t, payer.Address()); len(rows) != 0 {
			t.Errorf("ledger rows %s, want none", describe(rows))
		}
	})
}
