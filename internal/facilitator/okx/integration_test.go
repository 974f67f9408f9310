package okx

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
	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/okxfake"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

const (
	apiKey     = "test-api-key-0001"
	secretKey  = "TEST-SECRET-7f3a9c"
	passphrase = "Test-Passphrase-42"
	price      = 10_000
)

type env struct {
	chain    *evmtest.Chain
	token    *evmtest.Token
	merchant evmtest.Account
	onchain  *onchain.Facilitator
	fake     *okxfake.Server
	req      x402.PaymentRequirements
}

func newEnv(t *testing.T, numericCode bool) *env {
	t.Helper()
	relayer := evmtest.NewAccount(t)
	c := evmtest.New(t, relayer.Address)
	tk := c.DeployToken(t, "Global Dollar", "1")
	oc, err := onchain.New(context.Background(), onchain.Config{Client: c.Client, RelayerKey: relayer.Key, AfterSend: c.Mine, ReceiptPoll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	merchant := evmtest.NewAccount(t)
	fake := okxfake.New(t, okxfake.Config{APIKey: apiKey, SecretKey: secretKey, Passphrase: passphrase, Backend: oc, NumericCode: numericCode})
	return &env{chain: c, token: tk, merchant: merchant, onchain: oc, fake: fake, req: x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: evmtest.Network, Amount: fmt.Sprint(price), Asset: tk.Address.Hex(),
		PayTo: merchant.Address.Hex(), MaxTimeoutSeconds: 300, Extra: map[string]any{"name": "Global Dollar", "version": "1"},
	}}
}

func (e *env) client(t *testing.T, mutate func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: e.fake.URL, Credentials: Credentials{APIKey: apiKey, SecretKey: secretKey, Passphrase: passphrase}, RetryBackoff: time.Millisecond}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) payment(t *testing.T) (x402.PaymentPayload, *eip3009.Signer) {
	t.Helper()
	a := evmtest.NewAccount(t)
	e.token.Mint(t, a.Address, big.NewInt(price))
	s := eip3009.NewSigner(a.Key)
	p, err := s.Sign(e.req, &x402.ResourceInfo{URL: "https://gw.example/r"})
	if err != nil {
		t.Fatal(err)
	}
	return p, s
}

func TestOKXVerifyAndSettleMoveTokens(t *testing.T) {
	for _, numeric := range []bool{false, true} {
		t.Run(fmt.Sprintf("numericCode=%t", numeric), func(t *testing.T) {
			e := newEnv(t, numeric)
			c := e.client(t, nil)
			ctx := context.Background()
			p, s := e.payment(t)

			v, err := c.Verify(ctx, p, e.req)
			if err != nil || !v.Valid || !strings.EqualFold(v.Payer, s.Address().Hex()) {
				t.Fatalf("verify = %+v, %v", v, err)
			}
			res, err := c.Settle(ctx, p, e.req)
			if err != nil || res.State != facilitator.StateSettled || res.TxHash == "" {
				t.Fatalf("settle = %+v, %v", res, err)
			}
			if got := e.token.BalanceOf(t, e.merchant.Address); got.Int64() != price {
				t.Fatalf("merchant balance = %s", got)
			}
			// The settle body carried x402Version 2 and an explicit syncSettle.
			var body map[string]any
			reqs := e.fake.Accepted()
			if err := json.Unmarshal(reqs[len(reqs)-1].Body, &body); err != nil {
				t.Fatal(err)
			}
			if body["x402Version"] != float64(2) || body["syncSettle"] != true {
				t.Fatalf("settle body = %v", body)
			}
			// Replay through OKX: refused, nothing moves.
			again, err := c.Settle(ctx, p, e.req)
			if err != nil || again.State != facilitator.StateFailed || again.Reason != x402.ReasonNonceAlreadyUsed {
				t.Fatalf("replay = %+v, %v", again, err)
			}
			if got := e.token.BalanceOf(t, e.merchant.Address); got.Int64() != price {
				t.Fatalf("merchant balance after replay = %s", got)
			}
			st, err := c.SettleStatus(ctx, facilitator.SettleRef{TxHash: res.TxHash, Network: e.req.Network})
			if err != nil || st.State != facilitator.StateSettled || st.TxHash != res.TxHash {
				t.Fatalf("status = %+v, %v", st, err)
			}
			sup, err := c.Supported(ctx)
			if err != nil || !sup.Supports(2, "exact", evmtest.Network) {
				t.Fatalf("supported = %+v, %v", sup, err)
			}
		})
	}
}

func TestOKXSettleResponseNeverArrives(t *testing.T) {
	e := newEnv(t, false)
	c := e.client(t, nil)
	ctx := context.Background()
	p, _ := e.payment(t)
	e.fake.Inject(okxfake.PathSettle, okxfake.FaultDropResponse)

	res, err := c.Settle(ctx, p, e.req)
	if err != nil || res.State != facilitator.StateUnknown {
		t.Fatalf("settle = %+v, %v; want unknown", res, err)
	}
	if n := e.fake.Count(okxfake.PathSettle); n != 1 {
		t.Fatalf("settle sent %d times; it must never be retried", n)
	}
	// OKX's status API needs the hash we never got; the chain resolves it.
	if _, err := c.SettleStatus(ctx, facilitator.SettleRef{}); !errors.Is(err, facilitator.ErrStatusUnsupported) {
		t.Fatalf("status without hash: %v", err)
	}
	ref, err := facilitator.RefFor(p, e.req, res.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.onchain.SettleStatus(ctx, ref)
	if err != nil || st.State != facilitator.StateSettled || st.TxHash == "" {
		t.Fatalf("chain status = %+v, %v", st, err)
	}
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Int64() != price {
		t.Fatalf("merchant balance = %s, want exactly one payment", got)
	}
}

func TestOKXSettleTimeoutThenStatus(t *testing.T) {
	e := newEnv(t, false)
	c := e.client(t, nil)
	ctx := context.Background()
	p, _ := e.payment(t)
	e.fake.Inject(okxfake.PathSettle, okxfake.FaultSettleTimeout)
	res, err := c.Settle(ctx, p, e.req)
	if err != nil || res.State != facilitator.StateUnknown || res.TxHash == "" {
		t.Fatalf("settle = %+v, %v; want unknown with hash", res, err)
	}
	st, err := c.SettleStatus(ctx, facilitator.SettleRef{TxHash: res.TxHash, Network: e.req.Network})
	if err != nil || st.State != facilitator.StateSettled || st.TxHash != res.TxHash {
		t.Fatalf("status = %+v, %v", st, err)
	}
	st, err = c.SettleStatus(ctx, facilitator.SettleRef{TxHash: "0x" + strings.Repeat("ee", 32)})
	if err != nil || st.State != facilitator.StateUnknown {
		t.Fatalf("status of an unknown hash = %+v, %v; want unknown (not_found)", st, err)
	}
}

func TestOKXSettle5xxIsUnknownAndNotRetried(t *testing.T) {
	for _, fault := range []okxfake.Fault{okxfake.FaultServerError, okxfake.FaultServerErrorAfterProcessing} {
		t.Run(fmt.Sprint(fault), func(t *testing.T) {
			e := newEnv(t, false)
			c := e.client(t, nil)
			p, _ := e.payment(t)
			e.fake.Inject(okxfake.PathSettle, fault)
			res, err := c.Settle(context.Background(), p, e.req)
			if err != nil || res.State != facilitator.StateUnknown {
				t.Fatalf("settle = %+v, %v", res, err)
			}
			if n := e.fake.Count(okxfake.PathSettle); n != 1 {
				t.Fatalf("settle sent %d times", n)
			}
			want := int64(0)
			if fault == okxfake.FaultServerErrorAfterProcessing {
				want = price
			}
			if got := e.token.BalanceOf(t, e.merchant.Address); got.Int64() != want {
				t.Fatalf("merchant balance = %s, want %d", got, want)
			}
		})
	}
}

func TestOKXVerifyRetriesAreResigned(t *testing.T) {
	e := newEnv(t, false)
	var tick atomic.Int64
	base := time.Now()
	c := e.client(t, func(cfg *Config) {
		cfg.Now = func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Second) }
	})
	p, _ := e.payment(t)
	e.fake.Inject(okxfake.PathVerify, okxfake.FaultServerError, okxfake.FaultServerError)
	v, err := c.Verify(context.Background(), p, e.req)
	if err != nil || !v.Valid {
		t.Fatalf("verify = %+v, %v", v, err)
	}
	reqs := e.fake.Accepted()
	if len(reqs) != 3 {
		t.Fatalf("%d verify attempts, want 3", len(reqs))
	}
	if reqs[0].Timestamp == reqs[1].Timestamp || reqs[1].Timestamp == reqs[2].Timestamp {
		t.Fatalf("retries reused a signature timestamp: %s %s %s", reqs[0].Timestamp, reqs[1].Timestamp, reqs[2].Timestamp)
	}
	// Exhausted attempts surface as an error, not a verdict.
	e.fake.Inject(okxfake.PathVerify, okxfake.FaultServerError, okxfake.FaultServerError, okxfake.FaultServerError)
	if _, err := c.Verify(context.Background(), p, e.req); err == nil {
		t.Fatal("verify after three 500s returned no error")
	}
}

func TestOKXAuthenticationFailures(t *testing.T) {
	e := newEnv(t, false)
	tests := []struct {
		name   string
		mutate func(*Config)
		code   string
	}{
		{"wrong secret", func(c *Config) { c.Credentials.SecretKey = "wrong-" + secretKey }, "50113"},
		{"wrong passphrase", func(c *Config) { c.Credentials.Passphrase = "wrong-" + passphrase }, "50105"},
		{"wrong key", func(c *Config) { c.Credentials.APIKey = "other-key" }, "50111"},
		{"clock 31s behind", func(c *Config) { c.Now = func() time.Time { return time.Now().Add(-31 * time.Second) } }, "50112"},
		{"clock 31s ahead", func(c *Config) { c.Now = func() time.Time { return time.Now().Add(31 * time.Second) } }, "50112"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.client(t, tt.mutate)
			p, _ := e.payment(t)
			before := e.fake.Rejections(tt.code)
			_, verr := c.Verify(context.Background(), p, e.req)
			res, serr := c.Settle(context.Background(), p, e.req)
			var apiErr *APIError
			if !errors.As(verr, &apiErr) || apiErr.Code != tt.code {
				t.Fatalf("verify err = %v, want OKX code %s", verr, tt.code)
			}
			if !errors.As(serr, &apiErr) || apiErr.Code != tt.code {
				t.Fatalf("settle = %+v, %v; want an error with code %s (nothing processed)", res, serr, tt.code)
			}
			if e.fake.Rejections(tt.code)-before != 2 {
				t.Fatal("the fake did not reject both requests")
			}
			for _, err := range []error{verr, serr} {
				for _, secret := range []string{secretKey, passphrase} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error exposes a secret: %v", err)
					}
				}
			}
		})
	}
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Sign() != 0 {
		t.Fatalf("tokens moved despite failed authentication: %s", got)
	}
}

func TestOKXSettleNotSentWhenUnreachable(t *testing.T) {
	url := "http://" + freeport.MustAddr(t) // nothing listens: the dial fails, so the request certainly was not sent
	c, err := New(Config{BaseURL: url, Credentials: Credentials{APIKey: "k", SecretKey: "s", Passphrase: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Settle(context.Background(), x402.PaymentPayload{X402Version: 2, Payload: []byte(`{}`)}, x402.PaymentRequirements{Network: "eip155:196"})
	if err == nil {
		t.Fatalf("settle to a closed port = %+v, want an error (not sent)", res)
	}
}

func TestOKXLegacyBodies(t *testing.T) {
	var got map[string]any
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got)
		_, _ = io.WriteString(w, `{"code":"0","msg":"","data":[{"success":true,"txHash":"0xfeed","payer":"0xp"}]}`)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Legacy: true, Credentials: Credentials{APIKey: "k", SecretKey: "s", Passphrase: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	req := x402.PaymentRequirements{Scheme: "exact", Network: "eip155:196", Amount: "10000", Asset: "0xa", PayTo: "0xb", MaxTimeoutSeconds: 60}
	p := x402.PaymentPayload{X402Version: 2, Accepted: req, Resource: &x402.ResourceInfo{URL: "https://r"}, Payload: []byte(`{"signature":"0x1"}`)}
	res, err := c.Settle(context.Background(), p, req)
	if err != nil || res.State != facilitator.StateSettled || res.TxHash != "0xfeed" {
		t.Fatalf("legacy settle = %+v, %v", res, err)
	}
	pr, _ := got["paymentRequirements"].(map[string]any)
	pp, _ := got["paymentPayload"].(map[string]any)
	switch {
	case path != "/api/v6/x402/settle":
		t.Fatalf("path = %s", path)
	case got["x402Version"] != float64(1) || got["chainIndex"] != "196" || got["syncSettle"] != true:
		t.Fatalf("legacy body = %v", got)
	case pr["maxAmountRequired"] != "10000" || pr["resource"] != "https://r" || pr["network"] != nil:
		t.Fatalf("legacy requirements = %v", pr)
	case pp["x402Version"] != float64(1) || pp["scheme"] != "exact" || pp["network"] != nil:
		t.Fatalf("legacy payload = %v", pp)
	}
	if _, err := c.SettleStatus(context.Background(), facilitator.SettleRef{TxHash: "0x1"}); !errors.Is(err, facilitator.ErrStatusUnsupported) {
		t.Fatalf("legacy status: %v", err)
	}
}

// headerRecorder counts the requests that reach a host and whether they carried OKX credentials.
type headerRecorder struct {
	mu          sync.Mutex
	requests    int
	credentials int
}

func (h *headerRecorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.requests++
		if r.Header.Get(HeaderKey) != "" || r.Header.Get(HeaderSign) != "" || r.Header.Get(HeaderPassphrase) != "" {
			h.credentials++
		}
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (h *headerRecorder) counts() (int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests, h.credentials
}

// TestOKXRedirectIsNotFollowed: a facilitator URL that redirects (a hijacked DNS name, a
// misconfigured proxy) to a host that would act on the request. Following it would send the
// API key and signature to that host and could settle there; the client follows nothing, and a
// settle that was answered with a redirect has an unknown outcome (it did arrive somewhere).
func TestOKXRedirectIsNotFollowed(t *testing.T) {
	e := newEnv(t, false)
	rec := &headerRecorder{}
	target := httptest.NewServer(rec.wrap(e.fake.Config.Handler)) // the real fake facilitator
	t.Cleanup(target.Close)
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+r.URL.RequestURI(), status)
			}))
			t.Cleanup(front.Close)
			c := e.client(t, func(cfg *Config) { cfg.BaseURL = front.URL; cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second} })
			p, _ := e.payment(t)
			if _, err := c.Verify(context.Background(), p, e.req); err == nil {
				t.Fatal("verify answered by a redirect returned no error")
			}
			res, err := c.Settle(context.Background(), p, e.req)
			if err != nil || res.State != facilitator.StateUnknown {
				t.Fatalf("settle = %+v, %v; want an unknown outcome (the settle reached a server)", res, err)
			}
			if _, err := c.SettleStatus(context.Background(), facilitator.SettleRef{TxHash: "0x" + strings.Repeat("ab", 32)}); err == nil {
				t.Fatal("status answered by a redirect returned no error")
			}
		})
	}
	if n, creds := rec.counts(); n != 0 || creds != 0 {
		t.Fatalf("the redirect target got %d requests, %d with OKX credentials", n, creds)
	}
	if got := e.token.BalanceOf(t, e.merchant.Address); got.Sign() != 0 {
		t.Fatalf("merchant balance = %s: a redirected settle was carried out", got)
	}
}

// TestOKXSettleNotSentOnTLSHandshakeFailure: a facilitator whose certificate the gateway does not
// trust never sees the settle, so the payment was not charged and may be refused at once.
func TestOKXSettleNotSentOnTLSHandshakeFailure(t *testing.T) {
	e := newEnv(t, false)
	rec := &headerRecorder{}
	untrusted := httptest.NewTLSServer(rec.wrap(e.fake.Config.Handler))
	t.Cleanup(untrusted.Close)
	c := e.client(t, func(cfg *Config) { cfg.BaseURL = untrusted.URL })
	p, _ := e.payment(t)
	res, err := c.Settle(context.Background(), p, e.req)
	if err == nil || !httpcall.NotSent(err) || !strings.Contains(err.Error(), "not sent") {
		t.Fatalf("settle = %+v, %v; want a not-sent error", res, err)
	}
	if n, _ := rec.counts(); n != 0 {
		t.Fatalf("%d requests reached the facilitator", n)
	}
}
