package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/onchain"
	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/testutil/evmtest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	price     = 10_000 // 0.01 of a 6-decimal token
	routeName = "shop/weather"
)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// counting wraps a facilitator, counts calls and lets a test intervene around them.
type counting struct {
	facilitator.Facilitator
	verifies, settles atomic.Int64
	afterVerify       func()
	settle            func(ctx context.Context, p x402.PaymentPayload, r x402.PaymentRequirements) (facilitator.SettleResult, error)
	afterSettle       func()
}

func (c *counting) Verify(ctx context.Context, p x402.PaymentPayload, r x402.PaymentRequirements) (facilitator.VerifyResult, error) {
	c.verifies.Add(1)
	v, err := c.Facilitator.Verify(ctx, p, r)
	if c.afterVerify != nil {
		c.afterVerify()
	}
	return v, err
}

func (c *counting) Settle(ctx context.Context, p x402.PaymentPayload, r x402.PaymentRequirements) (facilitator.SettleResult, error) {
	c.settles.Add(1)
	var res facilitator.SettleResult
	var err error
	if c.settle != nil {
		res, err = c.settle(ctx, p, r)
	} else {
		res, err = c.Facilitator.Settle(ctx, p, r)
	}
	if c.afterSettle != nil {
		c.afterSettle()
	}
	return res, err
}

// upstreamRecorder is the real upstream: it records what reached it.
type upstreamRecorder struct {
	mu      sync.Mutex
	calls   int
	headers []http.Header
	status  int
}

func (u *upstreamRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.calls++
	u.headers = append(u.headers, r.Header.Clone())
	status := u.status
	u.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Upstream", "yes")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"path":%q,"forecast":"sunny"}`, r.URL.Path)
}

func (u *upstreamRecorder) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls
}

func (u *upstreamRecorder) setStatus(s int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status = s
}

func (u *upstreamRecorder) last() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.headers[len(u.headers)-1]
}

// env is a gateway on a simulated chain, a real Postgres ledger and a real upstream.
type env struct {
	chain    *evmtest.Chain
	token    *evmtest.Token
	merchant evmtest.Account
	onchain  *onchain.Facilitator
	fac      *counting
	db       *pgtest.Database
	pool     *pgxpool.Pool
	ledger   *ledger.Ledger
	spool    *ledger.Spool
	spoolDir string
	up       *upstreamRecorder
	upSrv    *httptest.Server
	cfg      config.Config
	handler  *Handler
	srv      *httptest.Server
	cache    *eip3009.RecoverCache // shared by the handler and the facilitator, if set
}

type envOpts struct {
	db      *pgtest.Database // default: a fresh database on the shared server
	mutate  func(*config.Config)
	onchain func(*onchain.Config)
	cache   *eip3009.RecoverCache // shared signer cache of the handler and the facilitator
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	relayer := evmtest.NewAccount(t)
	e := &env{chain: evmtest.New(t, relayer.Address), merchant: evmtest.NewAccount(t), up: &upstreamRecorder{}, cache: o.cache}
	e.token = e.chain.DeployToken(t, "Global Dollar", "1")
	ocfg := onchain.Config{Client: e.chain.Client, RelayerKey: relayer.Key, ReceiptPoll: time.Millisecond,
		ReceiptTimeout: 20 * time.Second, AfterSend: e.chain.Mine, Verifier: eip3009.Verifier{Cache: o.cache}}
	if o.onchain != nil {
		o.onchain(&ocfg)
	}
	var err error
	if e.onchain, err = onchain.New(context.Background(), ocfg); err != nil {
		t.Fatal(err)
	}
	e.fac = &counting{Facilitator: e.onchain}
	e.upSrv = httptest.NewServer(e.up)
	t.Cleanup(e.upSrv.Close)

	e.db = o.db
	if e.db == nil {
		e.db = pgtest.NewDatabase(t)
	}
	e.pool = e.db.Pool(t)
	if _, err := ledger.Migrate(testCtx(t), e.pool, ledger.Options{}); err != nil {
		t.Fatal(err)
	}
	if e.ledger, err = ledger.New(e.pool, ledger.Options{}); err != nil {
		t.Fatal(err)
	}
	e.spoolDir = filepath.Join(t.TempDir(), "spool")
	if e.spool, err = ledger.OpenSpool(e.spoolDir); err != nil {
		t.Fatal(err)
	}
	raw := fmt.Sprintf(`{"route": %q, "upstream": %q, "network": %q,
	  "asset": {"address": %q, "decimals": 6, "eip712Name": "Global Dollar", "eip712Version": "1"},
	  "payTo": %q, "maxTimeoutSeconds": 120,
	  "routes": [{"path": "/weather", "price": "0.01", "description": "Weather", "mimeType": "application/json"},
	             {"path": "/stream/*", "price": "0.01", "settle": "beforeUpstream"}],
	  "facilitator": {"kind": "onchain", "onchain": {"rpcURL": "http://unused.invalid"}},
	  "gateway": {"settleTimeout": "10s"}}`,
		routeName, e.upSrv.URL, evmtest.Network, e.token.Address.Hex(), e.merchant.Address.Hex())
	e.cfg, err = config.Parse([]byte(raw), config.Env{
		config.EnvDatabaseURL: e.db.URL, config.EnvRelayerKey: "0x0000000000000000000000000000000000000000000000000000000000000001",
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.mutate != nil {
		o.mutate(&e.cfg)
		if err := e.cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	e.start(t)
	return e
}

// start (re)builds the handler and its server, as a restarted gateway would.
func (e *env) start(t *testing.T) {
	t.Helper()
	h, err := New(Options{Config: e.cfg, Facilitator: e.fac, Ledger: e.ledger, Spool: e.spool, Metrics: NewMetrics(prometheus.NewRegistry()),
		RecoverCache: e.cache})
	if err != nil {
		t.Fatal(err)
	}
	e.handler = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
}

func (e *env) requirements() x402.PaymentRequirements {
	return e.handler.routes.match("GET", "/weather").req
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

func sign(t *testing.T, s *eip3009.Signer, req x402.PaymentRequirements) string {
	t.Helper()
	p, err := s.Sign(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := x402.EncodePaymentSignature(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type answer struct {
	status int
	header http.Header
	body   string
	json   errorBody
}

func (e *env) get(t *testing.T, path string, headers map[string]string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &a.json)
	return a
}

func (e *env) pay(t *testing.T, path, header string) answer {
	t.Helper()
	return e.get(t, path, map[string]string{x402.HeaderPaymentSignature: header})
}

func (e *env) balance(t *testing.T, s *eip3009.Signer) int64 {
	t.Helper()
	return e.token.BalanceOf(t, s.Address()).Int64()
}

func (e *env) merchantBalance(t *testing.T) int64 {
	t.Helper()
	return e.token.BalanceOf(t, e.merchant.Address).Int64()
}

// rows returns the ledger rows as (status, tx_hash) pairs.
func (e *env) rows(t *testing.T) []ledger.Payment {
	t.Helper()
	rows, err := e.pool.Query(testCtx(t), `SELECT id::text FROM x402_payments ORDER BY created_at`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var out []ledger.Payment
	for _, id := range ids {
		p, err := e.ledger.Get(testCtx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func receiptOf(t *testing.T, a answer) x402.SettleResponse {
	t.Helper()
	v := a.header.Get(x402.HeaderPaymentResponse)
	if v == "" {
		t.Fatalf("no PAYMENT-RESPONSE header (status %d, body %s)", a.status, a.body)
	}
	sr, err := x402.DecodePaymentResponse(v)
	if err != nil {
		t.Fatal(err)
	}
	return sr
}
