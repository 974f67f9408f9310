package httpx402

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/httpcall"
	"github.com/insforge/integrations-operator/internal/facilitator/onchain"
	"github.com/insforge/integrations-operator/internal/testutil/evmtest"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

const apiKeyValue = "Bearer sk-test-9d8c7b"

// standardServer serves the standard x402 facilitator API on top of a backend facilitator,
// requires an Authorization header, and can fail the next requests with a status.
type standardServer struct {
	*httptest.Server
	backend facilitator.Facilitator
	mu      sync.Mutex
	fail    map[string][]int
	calls   map[string]int
}

func newStandardServer(t *testing.T, backend facilitator.Facilitator) *standardServer {
	t.Helper()
	s := &standardServer{backend: backend, fail: map[string][]int{}, calls: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *standardServer) failNext(path string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[path] = append(s.fail[path], statuses...)
}

func (s *standardServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

func (s *standardServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != apiKeyValue {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	s.calls[r.URL.Path]++
	var status int
	if q := s.fail[r.URL.Path]; len(q) > 0 {
		status, s.fail[r.URL.Path] = q[0], q[1:]
	}
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, "injected", status)
		return
	}
	var body x402.FacilitatorRequest
	if r.Method == http.MethodPost {
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil || body.X402Version != 2 {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
	}
	var out any
	switch r.URL.Path {
	case "/verify":
		v, err := s.backend.Verify(r.Context(), body.PaymentPayload, body.PaymentRequirements)
		if err != nil {
			http.Error(w, "verify error", http.StatusInternalServerError)
			return
		}
		out = v.Response()
	case "/settle":
		res, err := s.backend.Settle(r.Context(), body.PaymentPayload, body.PaymentRequirements)
		if err != nil {
			http.Error(w, "settle error", http.StatusInternalServerError)
			return
		}
		out = res.Response()
	case "/supported":
		out, _ = s.backend.Supported(r.Context())
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

type env struct {
	token    *evmtest.Token
	merchant evmtest.Account
	server   *standardServer
	req      x402.PaymentRequirements
}

func newEnv(t *testing.T) *env {
	t.Helper()
	relayer := evmtest.NewAccount(t)
	c := evmtest.New(t, relayer.Address)
	tk := c.DeployToken(t, "Global Dollar", "1")
	oc, err := onchain.New(context.Background(), onchain.Config{Client: c.Client, RelayerKey: relayer.Key, AfterSend: c.Mine, ReceiptPoll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m := evmtest.NewAccount(t)
	return &env{token: tk, merchant: m, server: newStandardServer(t, oc), req: x402.PaymentRequirements{
		Scheme: "exact", Network: evmtest.Network, Amount: "10000", Asset: tk.Address.Hex(), PayTo: m.Address.Hex(),
		MaxTimeoutSeconds: 300, Extra: map[string]any{"name": "Global Dollar", "version": "1"},
	}}
}

func (e *env) client(t *testing.T, headers map[string]string) *Client {
	t.Helper()
	c, err := New(Config{URL: e.server.URL + "/", Headers: headers, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) payment(t *testing.T) x402.PaymentPayload {
	t.Helper()
	a := evmtest.NewAccount(t)
	e.token.Mint(t, a.Address, big.NewInt(10000))
	p, err := eip3009.NewSigner(a.Key).Sign(e.req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStandardFacilitatorMovesTokens(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, map[string]string{"Authorization": apiKeyValue})
	ctx := context.Background()
	p := e.payment(t)
	if v, err := c.Verify(ctx, p, e.req); err != nil || !v.Valid {
		t.Fatalf("verify = %+v, %v", v, err)
	}
	res, err := c.Settle(ctx, p, e.req)
	if err != nil || res.State != facilitator.StateSettled || res.TxHash == "" {
		t.Fatalf("settle = %+v, %v", res, err)
	}
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Int64() != 10000 {
		t.Fatalf("merchant balance = %s", got)
	}
	again, err := c.Settle(ctx, p, e.req)
	if err != nil || again.State != facilitator.StateFailed || again.Reason != x402.ReasonNonceAlreadyUsed {
		t.Fatalf("replay = %+v, %v", again, err)
	}
	if s, err := c.Supported(ctx); err != nil || !s.Supports(2, "exact", evmtest.Network) {
		t.Fatalf("supported = %+v, %v", s, err)
	}
	if _, err := c.SettleStatus(ctx, facilitator.SettleRef{TxHash: res.TxHash}); !errors.Is(err, facilitator.ErrStatusUnsupported) {
		t.Fatalf("status: %v", err)
	}
}

func TestStandardFacilitatorFailures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	t.Run("missing auth header refuses without charging", func(t *testing.T) {
		c := e.client(t, nil)
		p := e.payment(t)
		if _, err := c.Verify(ctx, p, e.req); err == nil {
			t.Fatal("verify without auth succeeded")
		}
		res, err := c.Settle(ctx, p, e.req)
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
			t.Fatalf("settle = %+v, %v; want a 401 refusal", res, err)
		}
	})
	t.Run("verify retried after 503", func(t *testing.T) {
		c := e.client(t, map[string]string{"Authorization": apiKeyValue})
		before := e.server.count("/verify")
		e.server.failNext("/verify", http.StatusServiceUnavailable)
		if v, err := c.Verify(ctx, e.payment(t), e.req); err != nil || !v.Valid {
			t.Fatalf("verify = %+v, %v", v, err)
		}
		if n := e.server.count("/verify") - before; n != 2 {
			t.Fatalf("%d verify calls, want 2", n)
		}
	})
	t.Run("settle 502 is unknown and not retried", func(t *testing.T) {
		c := e.client(t, map[string]string{"Authorization": apiKeyValue})
		before := e.server.count("/settle")
		e.server.failNext("/settle", http.StatusBadGateway)
		res, err := c.Settle(ctx, e.payment(t), e.req)
		if err != nil || res.State != facilitator.StateUnknown {
			t.Fatalf("settle = %+v, %v", res, err)
		}
		if n := e.server.count("/settle") - before; n != 1 {
			t.Fatalf("%d settle calls, want 1", n)
		}
	})
	// No settle above was processed (refused, verify only, or failed before processing).
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Sign() != 0 {
		t.Fatalf("merchant balance = %s, want 0", got)
	}
}

func TestSettleOutcome(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		state  facilitator.State // "" = error
		reason x402.Reason
	}{
		{"settled", 200, `{"success":true,"transaction":"0xt","network":"eip155:196"}`, facilitator.StateSettled, ""},
		{"failed", 200, `{"success":false,"errorReason":"insufficient_funds","transaction":"","network":"eip155:196"}`, facilitator.StateFailed, x402.ReasonInsufficientFunds},
		{"failed 400 with body", 400, `{"success":false,"errorReason":"invalid_payload","transaction":"","network":"eip155:196"}`, facilitator.StateFailed, x402.ReasonInvalidPayload},
		{"pending", 200, `{"success":false,"errorReason":"settlement_pending","transaction":"0xt","network":"n"}`, facilitator.StateUnknown, x402.ReasonSettlementPending},
		{"200 missing network", 200, `{"success":true,"transaction":"0xt"}`, facilitator.StateUnknown, x402.ReasonSettlementPending},
		{"200 success without hash", 200, `{"success":true,"transaction":"","network":"n"}`, facilitator.StateUnknown, x402.ReasonSettlementPending},
		{"500", 500, `oops`, facilitator.StateUnknown, x402.ReasonSettlementPending},
		{"403 text", 403, `forbidden`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := settleOutcome(httpcall.Response{Status: tt.status, Body: []byte(tt.body)}, "eip155:196")
			if tt.state == "" {
				if err == nil {
					t.Fatalf("want error, got %+v", res)
				}
				return
			}
			if err != nil || res.State != tt.state || res.Reason != tt.reason {
				t.Fatalf("got %+v, %v", res, err)
			}
		})
	}
}

func TestConfigRedactsHeaders(t *testing.T) {
	cfg := Config{URL: "https://f.example", Headers: map[string]string{"Authorization": apiKeyValue}}
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, "sk-test") {
			t.Fatalf("config formatting exposes a header value: %s", s)
		}
	}
	if _, err := New(Config{URL: "ftp://x"}); err == nil {
		t.Fatal("non-http URL accepted")
	}
}

// authRecorder counts the requests that reach a host and those that carried the API key.
type authRecorder struct {
	mu       sync.Mutex
	requests int
	withKey  int
}

func (a *authRecorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.requests++
		if r.Header.Get("Authorization") != "" {
			a.withKey++
		}
		a.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (a *authRecorder) counts() (int, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests, a.withKey
}

// TestRedirectIsNotFollowed: the facilitator URL redirects to a host that would settle. Nothing
// is sent there; the redirected settle has an unknown outcome (it reached a server), never
// failed, and is not repeated.
func TestRedirectIsNotFollowed(t *testing.T) {
	e := newEnv(t)
	rec := &authRecorder{}
	target := httptest.NewServer(rec.wrap(e.server.Config.Handler)) // the real standard facilitator
	t.Cleanup(target.Close)
	var hits atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, target.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(front.Close)
	c, err := New(Config{URL: front.URL, Headers: map[string]string{"Authorization": apiKeyValue}, RetryBackoff: time.Millisecond,
		HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	p := e.payment(t)
	if _, err := c.Verify(context.Background(), p, e.req); err == nil {
		t.Fatal("verify answered by a redirect returned no error")
	}
	res, err := c.Settle(context.Background(), p, e.req)
	if err != nil || res.State != facilitator.StateUnknown {
		t.Fatalf("settle = %+v, %v; want an unknown outcome", res, err)
	}
	if hits.Load() != 2 {
		t.Errorf("the redirecting URL got %d requests, want 2 (verify is not retried on a redirect, settle never)", hits.Load())
	}
	if n, withKey := rec.counts(); n != 0 || withKey != 0 {
		t.Fatalf("the redirect target got %d requests, %d with the API key", n, withKey)
	}
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Sign() != 0 {
		t.Fatalf("merchant balance = %s: a redirected settle was carried out", got)
	}
}

// TestSettleNotSentOnTLSHandshakeFailure: an untrusted certificate ends the exchange before the
// request is written, so the settle is "not sent" (the payment was not charged).
func TestSettleNotSentOnTLSHandshakeFailure(t *testing.T) {
	e := newEnv(t)
	rec := &authRecorder{}
	untrusted := httptest.NewTLSServer(rec.wrap(e.server.Config.Handler))
	t.Cleanup(untrusted.Close)
	c, err := New(Config{URL: untrusted.URL, Headers: map[string]string{"Authorization": apiKeyValue}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Settle(context.Background(), e.payment(t), e.req)
	if err == nil || !httpcall.NotSent(err) || !strings.Contains(err.Error(), "not sent") {
		t.Fatalf("settle = %+v, %v; want a not-sent error", res, err)
	}
	if n, _ := rec.counts(); n != 0 {
		t.Fatalf("%d requests reached the facilitator", n)
	}
}
