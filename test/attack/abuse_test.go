package attack

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/testutil/evmtest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/x402"
)

// refusalLimit is the number of refused payments a client may send in a minute.
const refusalLimit = 20

// testNegativeCache: the same unfunded payer sending five payments costs one facilitator verify
// (the bridge's eth_call count does not grow after the first) and at most one ledger row. It
// must run while nothing else uses the stack's bridge.
func testNegativeCache(t *testing.T, w *world, s *stack) {
	payer := w.payer(t, 0)
	c := w.client()
	reqs, res := c.challenge(t, s.gw, "/reports/broke")
	before := s.bridge.Calls("eth_call")
	want402(t, c.pay(t, s.gw, "/reports/broke", sign(t, payer, reqs, res)), x402.ReasonInsufficientFunds)
	oneVerify := s.bridge.Calls("eth_call") - before
	if oneVerify == 0 {
		t.Fatal("the first payment was not verified with the chain")
	}
	for range 4 {
		want402(t, c.pay(t, s.gw, "/reports/broke", sign(t, payer, reqs, res)), x402.ReasonInsufficientFunds)
	}
	if got := s.bridge.Calls("eth_call") - before; got != oneVerify {
		t.Errorf("five payments of an unfunded payer cost %d eth_calls, one verify costs %d", got, oneVerify)
	}
	if rows := s.rows(t, payer.Address()); len(rows) > 1 {
		t.Errorf("%d ledger rows for one unfunded payer, want at most 1: %s", len(rows), describe(rows))
	}
	if n := s.up.count("/reports/broke"); n != 0 {
		t.Errorf("upstream calls %d, want 0", n)
	}
}

// testAbuse runs the cheaper abuses against the main gateway.
func testAbuse(t *testing.T, w *world, s *stack) {
	t.Run("one balance, eight concurrent payments", func(t *testing.T) {
		t.Parallel()
		payer := w.payer(t, price)
		c := w.client()
		reqs, res := c.challenge(t, s.gw, "/reports/a1")
		headers := make([]string, 8)
		for i := range headers {
			headers[i] = sign(t, payer, reqs, res)
		}
		answers := make([]answer, len(headers))
		var wg sync.WaitGroup
		for i, h := range headers {
			wg.Go(func() {
				a, err := c.try(s.gw, req{Target: "/reports/a1", Header: [][2]string{{x402.HeaderPaymentSignature, h}}})
				if err != nil {
					t.Errorf("payment %d: %v", i, err)
				}
				answers[i] = a
			})
		}
		wg.Wait()
		ok := 0
		for _, a := range answers {
			switch {
			case a.Status == 200:
				ok++
			case a.Status == http.StatusTooManyRequests && a.JSON.Reason == string(x402.ReasonPaymentInFlight) && retryAfter(a) == 2:
			case a.Status == 402:
			default:
				t.Errorf("unexpected answer %v (Retry-After %q)", a, a.Header.Get("Retry-After"))
			}
		}
		if ok != 1 {
			t.Errorf("%d payments were served, want 1", ok)
		}
		if n := s.up.count("/reports/a1"); n != 1 {
			t.Errorf("one balance bought %d upstream calls, want 1", n)
		}
		if b := w.balance(t, payer.Address()); b != 0 {
			t.Errorf("payer balance %d, want 0", b)
		}
	})

	t.Run("unfunded payers from one client are rate limited", func(t *testing.T) {
		t.Parallel()
		c := w.client()
		reqs, res := c.challenge(t, s.gw, "/reports/a2")
		var got []string
		for i := 1; i <= 30; i++ {
			a := c.pay(t, s.gw, "/reports/a2", sign(t, w.payer(t, 0), reqs, res))
			got = append(got, fmt.Sprintf("%d:%d/%s", i, a.Status, a.JSON.Reason))
			switch {
			case i <= refusalLimit:
				if a.Status != 402 || a.JSON.Reason != string(x402.ReasonInsufficientFunds) {
					t.Errorf("payment %d: %v, want 402 %s", i, a, x402.ReasonInsufficientFunds)
				}
			case i == refusalLimit+1:
				// The 21st is the first past the limit; whether it is refused by the facilitator
				// or by the limiter depends on when the count is taken.
				if a.Status != 402 && a.Status != http.StatusTooManyRequests {
					t.Errorf("payment %d: %v, want 402 or 429", i, a)
				}
			default:
				if a.Status != http.StatusTooManyRequests || a.JSON.Reason != string(x402.ReasonRateLimited) || retryAfter(a) < 1 {
					t.Errorf("payment %d: %v (Retry-After %q), want 429 %s with Retry-After", i, a, a.Header.Get("Retry-After"), x402.ReasonRateLimited)
				}
			}
		}
		if t.Failed() {
			t.Logf("answers: %s", strings.Join(got, " "))
		}
	})

	t.Run("client headers that normalise to payer or forwarded headers never reach the upstream", func(t *testing.T) {
		t.Parallel()
		c := w.client()
		a := c.get(t, s.gw, "/free/hdr",
			[2]string{"X_Payment_Payer", spoofPayer},
			[2]string{"x-payment_payer", spoofPayer},
			[2]string{"Payment_Signature", "stolen"},
			[2]string{"X_Payment", "stolen"},
			[2]string{"x_forwarded_host", "evil.example"},
			[2]string{"X_Forwarded_For", "6.6.6.6"},
			[2]string{"X-Forwarded-Host", "evil.example"},
			[2]string{"X-Forwarded-For", "6.6.6.6"},
			[2]string{"X-Forwarded-Proto", "https"},
			[2]string{"X-Forwarded-Prefix", "/evil"},
			[2]string{"Forwarded", "for=6.6.6.6;host=evil.example"},
		)
		hits := s.up.hitsOf("/free/hdr")
		if a.Status != 200 || len(hits) != 1 {
			t.Fatalf("unpriced request: %v, upstream calls %d", a, len(hits))
		}
		h := hits[0].Header
		for name, vs := range h {
			norm := strings.ReplaceAll(strings.ToLower(name), "_", "-")
			switch {
			case norm == strings.ToLower(config.DefaultPayerHeader) || norm == "payment-signature" || norm == "x-payment" || norm == "forwarded":
				t.Errorf("the client's %s: %v reached the upstream", name, vs)
			case strings.HasPrefix(norm, "x-forwarded-") && strings.Contains(name, "_"):
				t.Errorf("the client's %s: %v reached the upstream", name, vs)
			}
			for _, v := range vs {
				if strings.Contains(v, "evil") || strings.Contains(v, "6.6.6.6") || strings.Contains(v, "stolen") || strings.Contains(strings.ToLower(v), "dead") {
					t.Errorf("a client-supplied value reached the upstream: %s: %s", name, v)
				}
			}
		}
		// The gateway's own forwarded headers describe this hop.
		if got := h.Get("X-Forwarded-Host"); got != s.gw.Addr {
			t.Errorf("X-Forwarded-Host = %q, want %q", got, s.gw.Addr)
		}
		if got := h.Get("X-Forwarded-For"); got != c.ip.String() {
			t.Errorf("X-Forwarded-For = %q, want %q", got, c.ip.String())
		}
		if got := h.Get("X-Forwarded-Proto"); got != "http" {
			t.Errorf("X-Forwarded-Proto = %q, want http", got)
		}
	})

	t.Run("client forwarded headers do not move the challenge's resource URL", func(t *testing.T) {
		t.Parallel()
		a := w.client().get(t, s.gw, "/reports/weekly",
			[2]string{"X-Forwarded-Host", "evil.example"}, [2]string{"X-Forwarded-Proto", "https"}, [2]string{"X-Forwarded-Prefix", "/evil"})
		if a.Status != 402 || a.resourceURL() != s.url("/reports/weekly") {
			t.Errorf("challenge %v names %q, want %q", a, a.resourceURL(), s.url("/reports/weekly"))
		}
	})

	t.Run("a POST route without settle settles before the upstream runs", func(t *testing.T) {
		t.Parallel()
		payer := w.payer(t, price)
		// The upstream notes the payer's balance when the order reaches it: already charged
		// means the payment settled first.
		s.up.setProbe(func(res string) string {
			if res != "/orders" {
				return ""
			}
			return w.balanceNow(payer.Address())
		})
		c := w.client()
		get := c.do(t, s.gw, req{Method: http.MethodPost, Target: "/orders", Body: []byte(`{}`)})
		if get.Status != 402 || get.Required == nil || len(get.Required.Accepts) != 1 {
			t.Fatalf("POST challenge: %v", get)
		}
		h := sign(t, payer, get.Required.Accepts[0], get.Required.Resource)
		a := c.do(t, s.gw, req{Method: http.MethodPost, Target: "/orders", Body: []byte(`{"item":1}`),
			Header: [][2]string{{x402.HeaderPaymentSignature, h}}})
		if a.Status != 200 {
			t.Fatalf("paid POST: %v", a)
		}
		hits := s.up.hitsOf("/orders")
		if len(hits) != 1 {
			t.Fatalf("upstream calls %d, want 1", len(hits))
		}
		if hits[0].Probe != "0" {
			t.Errorf("the upstream ran the order while the payer still held %s: the payment was settled after it", hits[0].Probe)
		}
	})

}

// testRetention: released rows older than a day are deleted by the route's resolver, and only
// the route's. The rows are in the table before the gateway starts, so the first resolver pass
// may delete them.
func testRetention(t *testing.T, w *world) {
	db := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool := db.Pool(t)
	if _, err := ledger.Migrate(ctx, pool, ledger.Options{}); err != nil {
		t.Fatal(err)
	}
	insert := func(route string) common.Address {
		payer := evmtest.NewAccount(t).Address
		_, err := pool.Exec(ctx, `INSERT INTO x402_payments (payer_address, endpoint, amount, nonce, route, resource,
			network, asset, pay_to, facilitator, status, failure_reason, created_at, updated_at)
			VALUES ($1, '/old', '10000', $2, $3, 'http://old/old', $4, $5, $6, 'mock', 'released',
			'verify: insufficient_funds', now() - interval '25 hours', now() - interval '25 hours')`,
			strings.ToLower(payer.Hex()), "0x"+strings.Repeat("ab", 32), route, "eip155:1337",
			strings.ToLower(w.token.Address.Hex()), strings.ToLower(payer.Hex()))
		if err != nil {
			t.Fatalf("inserting an old released row: %v", err)
		}
		return payer
	}
	mine, others := insert("shop/retention"), insert("other/route")
	s := w.newStack(t, stackOpts{route: "shop/retention", kind: config.KindMock, db: db,
		routes: []map[string]any{{"path": "/old", "price": "0.01"}}})
	eventually(t, 30*time.Second, "the route's old released row is deleted", func() (bool, string) {
		rows := s.rows(t, mine)
		return len(rows) == 0, describe(rows)
	})
	if rows := s.rows(t, others); len(rows) != 1 {
		t.Errorf("another route's row was touched: %s", describe(rows))
	}
}
