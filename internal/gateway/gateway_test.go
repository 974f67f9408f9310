package gateway

import (
	"context"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

func TestChallengeHonoursForwardedHeadersAndExposesX402Headers(t *testing.T) {
	e := newEnv(t, envOpts{mutate: func(c *config.Config) { c.Gateway.TrustForwarded = ptrTo(true) }})
	a := e.get(t, "/weather", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com", "X-Forwarded-Prefix": "/pay"})
	if a.status != http.StatusPaymentRequired {
		t.Fatalf("status = %d, body %s", a.status, a.body)
	}
	pr, err := x402.DecodePaymentRequired(a.header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		t.Fatal(err)
	}
	if pr.Resource == nil || pr.Resource.URL != "https://api.example.com/pay/weather" || pr.Resource.Description != "Weather" {
		t.Errorf("resource = %+v", pr.Resource)
	}
	want := e.requirements()
	if len(pr.Accepts) != 1 || pr.Accepts[0].Amount != "10000" || pr.Accepts[0].PayTo != want.PayTo || pr.Accepts[0].Network != "eip155:1337" {
		t.Errorf("accepts = %+v", pr.Accepts)
	}
	if name, version, ok := pr.Accepts[0].EIP712Domain(); !ok || name != "Global Dollar" || version != "1" {
		t.Errorf("extra = %+v", pr.Accepts[0].Extra)
	}
	if len(a.json.Accepts) != 1 || a.json.X402Version != 2 {
		t.Errorf("JSON body = %s", a.body)
	}
	if exp := a.header.Get("Access-Control-Expose-Headers"); !strings.Contains(exp, x402.HeaderPaymentRequired) || !strings.Contains(exp, x402.HeaderPaymentResponse) {
		t.Errorf("expose headers = %q", exp)
	}
	if e.up.count() != 0 || e.fac.verifies.Load() != 0 {
		t.Errorf("a challenge reached the upstream (%d) or facilitator (%d)", e.up.count(), e.fac.verifies.Load())
	}
	// Without forwarded headers the URL is the one the client used.
	a = e.get(t, "/weather", nil)
	pr, _ = x402.DecodePaymentRequired(a.header.Get(x402.HeaderPaymentRequired))
	if pr.Resource.URL != e.srv.URL+"/weather" {
		t.Errorf("resource URL = %q, want %q", pr.Resource.URL, e.srv.URL+"/weather")
	}
}

func TestPreflightOnPricedPath(t *testing.T) {
	e := newEnv(t, envOpts{})
	req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+"/weather", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "payment-signature")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), x402.HeaderPaymentSignature) {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestHappyPathMovesExactBalancesAndRecordsOneRow(t *testing.T) {
	e := newEnv(t, envOpts{})
	payer := e.payer(t, 3)
	a := e.pay(t, "/weather", sign(t, payer, e.requirements()))
	if a.status != http.StatusOK || !strings.Contains(a.body, `"forecast":"sunny"`) {
		t.Fatalf("status %d body %s", a.status, a.body)
	}
	sr := receiptOf(t, a)
	if !sr.Success || sr.Transaction == "" || !strings.EqualFold(sr.Payer, payer.Address().Hex()) || sr.Network != "eip155:1337" {
		t.Errorf("receipt = %+v", sr)
	}
	if got := e.balance(t, payer); got != 2*price {
		t.Errorf("payer balance = %d, want %d", got, 2*price)
	}
	if got := e.merchantBalance(t); got != price {
		t.Errorf("merchant balance = %d, want %d", got, price)
	}
	rows := e.rows(t)
	if len(rows) != 1 || rows[0].Status != ledger.StatusSettled || rows[0].TxHash != sr.Transaction ||
		rows[0].Route != routeName || rows[0].Endpoint != "/weather" || rows[0].Amount != "10000" ||
		rows[0].Payer != strings.ToLower(payer.Address().Hex()) || rows[0].Mock {
		t.Errorf("ledger rows = %+v", rows)
	}
	up := e.up.last()
	if up.Get(config.DefaultPayerHeader) != payer.Address().Hex() {
		t.Errorf("payer header upstream = %q", up.Get(config.DefaultPayerHeader))
	}
	if up.Get(x402.HeaderPaymentSignature) != "" || up.Get(x402.HeaderXPayment) != "" {
		t.Error("the payment header reached the upstream")
	}
	if a.header.Get("X-Upstream") != "yes" {
		t.Error("upstream headers not passed through")
	}
}

// With one cache shared by the gateway and the facilitator, the signature of a paid request is
// recovered once: the gateway's check fills the cache and the facilitator's verify and settle
// find the same signer there.
func TestSharedRecoverCacheHoldsOneSignerPerPayment(t *testing.T) {
	cache := eip3009.NewRecoverCache(64)
	e := newEnv(t, envOpts{cache: cache})
	payer := e.payer(t, 2)
	for i := 1; i <= 2; i++ {
		if a := e.pay(t, "/weather", sign(t, payer, e.requirements())); a.status != http.StatusOK {
			t.Fatalf("payment %d: status %d body %s", i, a.status, a.body)
		}
		if got := cache.Len(); got != i {
			t.Errorf("after payment %d the cache holds %d signers, want %d", i, got, i)
		}
	}
	if got := e.fac.settles.Load(); got != 2 {
		t.Errorf("settles = %d, want 2", got)
	}
}

func TestClientCannotSpoofThePayerHeader(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.get(t, "/free", map[string]string{config.DefaultPayerHeader: "0xdeadbeef", "Connection": "X-Secret-Hop", "X-Secret-Hop": "1"})
	if a.status != http.StatusOK {
		t.Fatalf("unpriced path: %d %s", a.status, a.body)
	}
	up := e.up.last()
	if up.Get(config.DefaultPayerHeader) != "" || up.Get("X-Secret-Hop") != "" {
		t.Errorf("upstream saw %v", up)
	}
}

func TestV1XPaymentIsAccepted(t *testing.T) {
	e := newEnv(t, envOpts{})
	payer := e.payer(t, 1)
	p, err := payer.Sign(e.requirements(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := x402.EncodeXPayment(x402.PaymentPayloadV1{X402Version: 1, Scheme: "exact", Network: "eip155:1337", Payload: p.Payload})
	if err != nil {
		t.Fatal(err)
	}
	a := e.get(t, "/weather", map[string]string{x402.HeaderXPayment: h})
	if a.status != http.StatusOK {
		t.Fatalf("status %d body %s", a.status, a.body)
	}
	sr, err := x402.DecodeXPaymentResponse(a.header.Get(x402.HeaderXPaymentResponse))
	if err != nil || !sr.Success || sr.Transaction == "" {
		t.Fatalf("X-PAYMENT-RESPONSE = %+v, %v", sr, err)
	}
	if e.merchantBalance(t) != price {
		t.Errorf("merchant balance = %d", e.merchantBalance(t))
	}
}

// TestSequentialReplayIsChargedOnceAndServedOnce: a payment buys one response; the replay gets
// 402 payment_already_used with the receipt of the one settlement.
func TestSequentialReplayIsChargedOnceAndServedOnce(t *testing.T) {
	e := newEnv(t, envOpts{})
	payer := e.payer(t, 3)
	h := sign(t, payer, e.requirements())
	first := e.pay(t, "/weather", h)
	second := e.pay(t, "/weather", h)
	if first.status != http.StatusOK || second.status != http.StatusPaymentRequired || second.json.Reason != string(x402.ReasonPaymentUsed) {
		t.Fatalf("statuses %d, %d: %s", first.status, second.status, second.body)
	}
	if a, b := receiptOf(t, first).Transaction, receiptOf(t, second).Transaction; a != b {
		t.Errorf("replay tx %s differs from %s", b, a)
	}
	if e.fac.settles.Load() != 1 || e.merchantBalance(t) != price || e.balance(t, payer) != 2*price {
		t.Errorf("settles %d, merchant %d, payer %d", e.fac.settles.Load(), e.merchantBalance(t), e.balance(t, payer))
	}
	// The same payment for another resource is refused.
	other := e.pay(t, "/stream/x", h)
	if other.status != http.StatusPaymentRequired || other.json.Reason != string(x402.ReasonNonceAlreadyUsed) {
		t.Errorf("reuse elsewhere: %d %s", other.status, other.body)
	}
	if n := len(e.rows(t)); n != 1 {
		t.Errorf("%d ledger rows", n)
	}
}

func TestConcurrentReplaySettlesExactlyOnce(t *testing.T) {
	e := newEnv(t, envOpts{})
	payer := e.payer(t, 5)
	h := sign(t, payer, e.requirements())
	const n = 100
	statuses := make([]int, n)
	receipts := make([]x402.SettleResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a := e.pay(t, "/weather", h)
			statuses[i] = a.status
			if a.status == http.StatusOK || a.status == http.StatusPaymentRequired {
				receipts[i], _ = x402.DecodePaymentResponse(a.header.Get(x402.HeaderPaymentResponse))
			}
			if a.status == http.StatusPaymentRequired && a.json.Reason == string(x402.ReasonSettlementPending) && a.header.Get(x402.HeaderPaymentRequired) != "" {
				t.Errorf("a pending answer carried a fresh challenge: %s", a.body)
			}
		})
	}
	wg.Wait()
	ok, pending := 0, 0
	for i, s := range statuses {
		switch {
		case s == http.StatusOK && receipts[i].Success:
			ok++
		case s == http.StatusPaymentRequired && receipts[i].ErrorReason == string(x402.ReasonSettlementPending),
			s == http.StatusPaymentRequired && receipts[i].Success: // payment_already_used, with its receipt
			pending++
		default:
			t.Errorf("request %d: status %d receipt %+v", i, s, receipts[i])
		}
	}
	if ok != 1 || ok+pending != n {
		t.Errorf("ok %d, pending %d of %d", ok, pending, n)
	}
	if e.fac.settles.Load() != 1 {
		t.Errorf("settle called %d times", e.fac.settles.Load())
	}
	if e.merchantBalance(t) != price || e.balance(t, payer) != 4*price {
		t.Errorf("merchant %d payer %d", e.merchantBalance(t), e.balance(t, payer))
	}
	rows := e.rows(t)
	if len(rows) != 1 || rows[0].Status != ledger.StatusSettled {
		t.Errorf("rows = %+v", rows)
	}
}

func TestUpstreamFailureIsNotCharged(t *testing.T) {
	e := newEnv(t, envOpts{})
	payer := e.payer(t, 1)
	h := sign(t, payer, e.requirements())
	e.up.setStatus(http.StatusInternalServerError)
	a := e.pay(t, "/weather", h)
	if a.status != http.StatusInternalServerError || !strings.Contains(a.body, "sunny") {
		t.Fatalf("upstream 500 not passed through: %d %s", a.status, a.body)
	}
	if a.header.Get(x402.HeaderPaymentResponse) != "" {
		t.Error("a receipt was sent for an uncharged request")
	}
	if e.fac.settles.Load() != 0 || e.merchantBalance(t) != 0 || e.balance(t, payer) != price {
		t.Errorf("settles %d, merchant %d, payer %d", e.fac.settles.Load(), e.merchantBalance(t), e.balance(t, payer))
	}
	if rows := e.rows(t); len(rows) != 1 || rows[0].Status != ledger.StatusReleased {
		t.Errorf("rows = %+v", rows)
	}
	// The same signed payment is still good once the upstream recovers.
	e.up.setStatus(http.StatusOK)
	if a := e.pay(t, "/weather", h); a.status != http.StatusOK || e.merchantBalance(t) != price {
		t.Errorf("retry after recovery: %d %s, merchant %d", a.status, a.body, e.merchantBalance(t))
	}
}

func TestInvalidPaymentsAreRefusedWithTheirReasonAndNeverSettled(t *testing.T) {
	e := newEnv(t, envOpts{})
	payer := e.payer(t, 5)
	req := e.requirements()
	d, err := eip3009.DomainFor(req)
	if err != nil {
		t.Fatal(err)
	}
	craft := func(mut func(*eip3009.Authorization)) string {
		a, err := payer.Authorize(req)
		if err != nil {
			t.Fatal(err)
		}
		mut(&a)
		p, err := payer.SignWith(req, nil, d, a)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := x402.EncodePaymentSignature(p)
		return h
	}
	other := common.HexToAddress("0x2222222222222222222222222222222222222222")
	tampered := func() string {
		// A well-formed signature over another authorization (another nonce): the wrong signer recovers.
		p, _ := payer.Sign(req, nil)
		ex, _ := p.ExactEVM()
		a, _ := payer.Authorize(req)
		sig, _ := payer.SignAuthorization(d, a)
		ex.Signature = "0x" + common.Bytes2Hex(sig)
		np, _ := x402.NewPaymentPayload(req, nil, ex)
		h, _ := x402.EncodePaymentSignature(np)
		return h
	}
	wrongAccepted := func() string {
		r2 := req
		r2.PayTo = other.Hex()
		p, _ := payer.Sign(r2, nil)
		h, _ := x402.EncodePaymentSignature(p)
		return h
	}
	cases := []struct {
		name   string
		header string
		reason x402.Reason
	}{
		{"bad signature", tampered(), x402.ReasonSignature},
		{"expired", craft(func(a *eip3009.Authorization) { a.ValidBefore = big.NewInt(time.Now().Add(-time.Minute).Unix()) }), x402.ReasonValidBefore},
		{"not yet valid", craft(func(a *eip3009.Authorization) { a.ValidAfter = big.NewInt(time.Now().Add(time.Hour).Unix()) }), x402.ReasonValidAfter},
		{"wrong payTo in authorization", craft(func(a *eip3009.Authorization) { a.To = other }), x402.ReasonRecipientMismatch},
		{"wrong payTo accepted", wrongAccepted(), x402.ReasonNoMatchingRequirement},
		{"wrong amount", craft(func(a *eip3009.Authorization) { a.Value = big.NewInt(price - 1) }), x402.ReasonValueMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.pay(t, "/weather", c.header)
			if a.status != http.StatusPaymentRequired || a.json.Reason != string(c.reason) {
				t.Errorf("status %d reason %q, want 402 %q (%s)", a.status, a.json.Reason, c.reason, a.body)
			}
			if a.header.Get(x402.HeaderPaymentRequired) == "" {
				t.Error("no challenge with the refusal")
			}
		})
	}
	// An unfunded payer passes the local checks but not the facilitator's simulation.
	broke := e.payer(t, 0)
	a := e.pay(t, "/weather", sign(t, broke, req))
	if a.status != http.StatusPaymentRequired || a.json.Reason != string(x402.ReasonInsufficientFunds) {
		t.Errorf("unfunded: %d %s", a.status, a.body)
	}
	if e.fac.settles.Load() != 0 || e.up.count() != 0 || e.merchantBalance(t) != 0 {
		t.Errorf("settles %d, upstream calls %d, merchant %d", e.fac.settles.Load(), e.up.count(), e.merchantBalance(t))
	}
	for _, r := range e.rows(t) {
		if r.Status != ledger.StatusReleased {
			t.Errorf("row %+v not released", r)
		}
	}
}

func TestMalformedPaymentHeadersAre400(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, h := range []string{"not base64!", "e30=", "eyJ4NDAyVmVyc2lvbiI6Mn0=", strings.Repeat("A", 20000)} {
		a := e.pay(t, "/weather", h)
		if a.status != http.StatusBadRequest || a.json.Reason == "" {
			t.Errorf("header %.20q: %d %s", h, a.status, a.body)
		}
	}
	if n := len(e.rows(t)); n != 0 {
		t.Errorf("%d ledger rows for malformed payments", n)
	}
}

func TestSettleFailureAnswers402WithFailedReceipt(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.fac.settle = func(_ context.Context, p x402.PaymentPayload, r x402.PaymentRequirements) (facilitator.SettleResult, error) {
		return facilitator.SettleResult{State: facilitator.StateFailed, Network: r.Network, Reason: x402.ReasonInsufficientFunds, Message: "balance too low"}, nil
	}
	payer := e.payer(t, 1)
	a := e.pay(t, "/weather", sign(t, payer, e.requirements()))
	if a.status != http.StatusPaymentRequired || a.json.Reason != string(x402.ReasonInsufficientFunds) || strings.Contains(a.body, "sunny") {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if sr := receiptOf(t, a); sr.Success || sr.ErrorReason != string(x402.ReasonInsufficientFunds) {
		t.Errorf("receipt = %+v", sr)
	}
	if rows := e.rows(t); len(rows) != 1 || rows[0].Status != ledger.StatusFailed {
		t.Errorf("rows = %+v", rows)
	}
}

func TestPendingSettlementAnswersRetryAfterThenContentOnceResolved(t *testing.T) {
	e := newEnv(t, envOpts{})
	var hash string
	// The facilitator settles for real but the gateway does not learn the outcome.
	e.fac.settle = func(ctx context.Context, p x402.PaymentPayload, r x402.PaymentRequirements) (facilitator.SettleResult, error) {
		res, err := e.onchain.Settle(ctx, p, r)
		hash = res.TxHash
		return facilitator.Unknown("", r.Network, "", "timed out"), err
	}
	payer := e.payer(t, 2)
	h := sign(t, payer, e.requirements())
	a := e.pay(t, "/weather", h)
	if a.status != http.StatusPaymentRequired || a.json.Reason != string(x402.ReasonSettlementPending) || a.header.Get("Retry-After") == "" {
		t.Fatalf("%d %v %s", a.status, a.header, a.body)
	}
	if a.header.Get(x402.HeaderPaymentRequired) != "" || strings.Contains(a.body, "sunny") {
		t.Error("a pending settlement got a fresh challenge or the content")
	}
	retry := e.pay(t, "/weather", h)
	if retry.status != http.StatusPaymentRequired || retry.json.Reason != string(x402.ReasonSettlementPending) || retry.header.Get(x402.HeaderPaymentRequired) != "" {
		t.Fatalf("retry while pending: %d %s", retry.status, retry.body)
	}
	if rows := e.rows(t); len(rows) != 1 || rows[0].Status != ledger.StatusPending {
		t.Fatalf("rows = %+v", rows)
	}
	// The resolver finds the settlement on chain from (payer, nonce).
	resolveAll(t, e)
	rows := e.rows(t)
	if len(rows) != 1 || rows[0].Status != ledger.StatusSettled || !strings.EqualFold(rows[0].TxHash, hash) {
		t.Fatalf("after resolve: %+v (tx %s)", rows, hash)
	}
	done := e.pay(t, "/weather", h)
	if done.status != http.StatusOK || !strings.Contains(done.body, "sunny") || !strings.EqualFold(receiptOf(t, done).Transaction, hash) {
		t.Fatalf("after resolve: %d %s", done.status, done.body)
	}
	if e.fac.settles.Load() != 1 || e.merchantBalance(t) != price {
		t.Errorf("settles %d merchant %d", e.fac.settles.Load(), e.merchantBalance(t))
	}
}

// resolveAll runs the ledger's resolver with the gateway's Resolver until no row is settling or
// pending (or the test's deadline).
func resolveAll(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(t), 30*time.Second)
	defer cancel()
	go func() {
		_ = e.ledger.RunResolver(ctx, ledger.ResolverConfig{
			Route: routeName, Resolver: Resolver{Facilitator: e.onchain}, Interval: 20 * time.Millisecond, MinAge: time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		})
	}()
	for ctx.Err() == nil {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM x402_payments WHERE status IN ('settling','pending')`).Scan(&n); err == nil && n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("rows still unresolved")
}

func TestSettleBeforeUpstreamChargesThenStreams(t *testing.T) {
	e := newEnv(t, envOpts{})
	payer := e.payer(t, 1)
	req := e.handler.routes.match("GET", "/stream/live").req
	a := e.pay(t, "/stream/live", sign(t, payer, req))
	if a.status != http.StatusOK || !strings.Contains(a.body, `"/stream/live"`) || !receiptOf(t, a).Success {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if e.merchantBalance(t) != price {
		t.Errorf("merchant = %d", e.merchantBalance(t))
	}
}

func TestUnpricedPathsProxiedOrRejected(t *testing.T) {
	e := newEnv(t, envOpts{})
	if a := e.get(t, "/free/thing?q=1", nil); a.status != http.StatusOK || !strings.Contains(a.body, "/free/thing") {
		t.Errorf("proxied: %d %s", a.status, a.body)
	}
	r := newEnv(t, envOpts{mutate: func(c *config.Config) { c.Gateway.UnpricedPaths = config.UnpricedReject }})
	if a := r.get(t, "/free", nil); a.status != http.StatusNotFound || r.up.count() != 0 {
		t.Errorf("rejected: %d, upstream calls %d", a.status, r.up.count())
	}
}
