package attack

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/insforge/integrations-operator/internal/x402"
)

// testReplayWindow: on a route with replayWindow, a replay of the same request (method,
// canonical path, query, body) within the window gets the stored response, never a fresh
// upstream call; the same payment on a different request gets 402 payment_already_used.
func testReplayWindow(t *testing.T, w *world) {
	s := w.newStack(t, stackOpts{route: "shop/replay", routes: []map[string]any{
		{"path": "/feed/*", "method": "GET", "price": "0.01", "replayWindow": "1m"},
	}})
	payer := w.payer(t, 2*price)
	c := w.client()
	reqs, res := c.challenge(t, s.gw, "/feed/r1?q=1")
	h := sign(t, payer, reqs, res)
	first := c.pay(t, s.gw, "/feed/r1?q=1", h)
	if first.Status != 200 || first.Receipt == nil {
		t.Fatalf("payment: %v", first)
	}
	tx := first.Receipt.Transaction
	for _, target := range []string{"/feed/r1?q=1", "//feed/./r1?q=1"} {
		a := w.client().pay(t, s.gw, target, h)
		if a.Status != 200 || !bytes.Equal(a.Body, first.Body) {
			t.Errorf("replay of the same request %s: %v, want the stored 200 %s", target, a, first.Body)
		}
		wantReceipt(t, a, true, tx)
	}
	for _, target := range []string{"/feed/r1?q=2", "/feed/r1"} {
		a := w.client().pay(t, s.gw, target, h)
		want402(t, a, x402.ReasonPaymentUsed)
		wantReceipt(t, a, true, tx)
	}
	// Another method is another request (a HEAD answer has no body to carry the reason).
	head := w.client().do(t, s.gw, req{Method: http.MethodHead, Target: "/feed/r1?q=1", Header: [][2]string{{x402.HeaderPaymentSignature, h}}})
	if head.Status != 402 {
		t.Errorf("HEAD replay: %v, want 402", head)
	}
	wantReceipt(t, head, true, tx)
	if n := s.up.count("/feed/r1"); n != 1 {
		t.Errorf("upstream calls %d, want 1", n)
	}
	if b := w.balance(t, payer.Address()); b != price {
		t.Errorf("payer balance %d, want %d", b, price)
	}
}
