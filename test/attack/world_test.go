package attack

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/testutil/evmtest"
	"github.com/insforge/integrations-operator/internal/testutil/gatewayproc"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/testutil/rpcbridge"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// price is the atomic amount of a "0.01" route of the 6-decimal test token.
const price = 10_000

// world is what every gateway of the suite shares: the gateway binary, one simulated chain
// with the EIP-3009 token, relayer accounts funded at genesis, and loopback client addresses.
type world struct {
	bin      string
	chain    *evmtest.Chain
	token    *evmtest.Token
	relayers chan evmtest.Account

	deployer sync.Mutex // the deployer's transactions (mints, submissions) need distinct nonces
	ipMu     sync.Mutex
	nextIP   int
}

// relayerCount bounds the gateways and facilitators that relay on the chain.
const relayerCount = 12

func newWorld(t *testing.T, bin string) *world {
	t.Helper()
	w := &world{bin: bin, relayers: make(chan evmtest.Account, relayerCount)}
	var funded []common.Address
	for range relayerCount {
		a := evmtest.NewAccount(t)
		w.relayers <- a
		funded = append(funded, a.Address)
	}
	w.chain = evmtest.New(t, funded...)
	w.token = w.chain.DeployToken(t, "Global Dollar", "1")
	w.chain.AutoCommit(t, 20*time.Millisecond)
	return w
}

// relayer takes a funded relayer account.
func (w *world) relayer(t *testing.T) evmtest.Account {
	t.Helper()
	select {
	case a := <-w.relayers:
		return a
	default:
		t.Fatal("attack: out of relayer accounts; raise relayerCount")
		return evmtest.Account{}
	}
}

// client returns a client with a loopback address of its own (127.0.1.1, 127.0.1.2, …).
func (w *world) client() client {
	w.ipMu.Lock()
	defer w.ipMu.Unlock()
	w.nextIP++
	return client{ip: net.IPv4(127, 0, byte(1+w.nextIP/250), byte(1+w.nextIP%250))}
}

// payer returns a signer holding atomic units of the token.
func (w *world) payer(t *testing.T, atomic int64) *eip3009.Signer {
	t.Helper()
	a := evmtest.NewAccount(t)
	if atomic > 0 {
		w.deployer.Lock()
		w.token.Mint(t, a.Address, big.NewInt(atomic))
		w.deployer.Unlock()
	}
	return eip3009.NewSigner(a.Key)
}

// balanceNow reads a balance without a testing.T, for servers' goroutines.
func (w *world) balanceNow(a common.Address) string {
	abi, bound := w.token.Binding()
	v, err := bind.Call(bound, nil, abi.PackBalanceOf(a), abi.UnpackBalanceOf)
	if err != nil {
		return "error: " + err.Error()
	}
	return v.String()
}

func (w *world) balance(t *testing.T, a common.Address) int64 {
	t.Helper()
	return w.token.BalanceOf(t, a).Int64()
}

// submit sends transferWithAuthorization(a, sig) from the deployer, as anyone may, and
// returns the mined receipt.
func (w *world) submit(t *testing.T, a eip3009.Authorization, sig []byte) *types.Receipt {
	t.Helper()
	w.deployer.Lock()
	defer w.deployer.Unlock()
	abi, bound := w.token.Binding()
	opts := bind.NewKeyedTransactor(w.chain.Deployer.Key, w.chain.ChainID)
	tx, err := bind.Transact(bound, opts, abi.PackTransferWithAuthorization(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, sig))
	if err != nil {
		t.Fatalf("submitting transferWithAuthorization: %v", err)
	}
	w.chain.Commit()
	r, err := w.chain.Client.TransactionReceipt(context.Background(), tx.Hash())
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("transferWithAuthorization %s: receipt %v, %v", tx.Hash().Hex(), r, err)
	}
	return r
}

// stack is one gateway process with its upstream, ledger database and, for gateways that
// reach the chain, the JSON-RPC bridge they use.
type stack struct {
	gw       *gatewayproc.Gateway
	up       *upstream
	db       *pgtest.Database
	pool     *pgxpool.Pool
	bridge   *rpcbridge.Bridge // nil for mock gateways
	merchant common.Address
	route    string
	cfg      map[string]any
	env      []string
}

// stackOpts describe a gateway.
type stackOpts struct {
	route  string
	routes []map[string]any
	// kind is config.KindOnchain (default), KindMock or KindHTTP.
	kind string
	// facilitatorURL is the http facilitator's URL (KindHTTP).
	facilitatorURL string
	// db shares a ledger database with another stack; nil makes a fresh one.
	db *pgtest.Database
	// gateway holds extra members of the config's gateway section.
	gateway map[string]any
	env     []string
}

func (w *world) newStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	s := &stack{up: newUpstream(t), db: o.db, route: o.route, merchant: evmtest.NewAccount(t).Address}
	if s.db == nil {
		s.db = pgtest.NewDatabase(t)
	}
	s.pool = s.db.Pool(t)
	s.env = append([]string{config.EnvDatabaseURL + "=" + s.db.URL}, o.env...)
	if o.kind == "" {
		o.kind = config.KindOnchain
	}
	fac := map[string]any{"kind": o.kind}
	switch o.kind {
	case config.KindOnchain:
		var keyEnv string
		s.bridge, fac, keyEnv = w.onchainFacilitator(t)
		s.env = append(s.env, keyEnv)
	case config.KindHTTP:
		s.bridge = rpcbridge.New(t, w.chain.RPCClient())
		fac["http"] = map[string]any{"url": o.facilitatorURL, "rpcURL": s.bridge.URL}
	}
	gw := map[string]any{"settleTimeout": "5s"}
	for k, v := range o.gateway {
		gw[k] = v
	}
	s.cfg = map[string]any{
		"route": o.route, "upstream": s.up.URL, "network": evmtest.Network,
		"asset": map[string]any{"address": w.token.Address.Hex(), "decimals": 6, "eip712Name": w.token.Name, "eip712Version": w.token.Version},
		"payTo": s.merchant.Hex(), "maxTimeoutSeconds": 300, "routes": o.routes,
		"facilitator": fac, "ledger": map[string]any{"migrate": true}, "gateway": gw,
		// Small resolver timings, so unknown outcomes are resolved within seconds.
		"resolver": map[string]any{"interval": "250ms", "minAge": "6s"},
	}
	s.gw = gatewayproc.Start(t, gatewayproc.Options{Binary: w.bin, Config: s.cfg, Env: s.env})
	return s
}

// onchainFacilitator returns the config section of an onchain facilitator on a bridge of its
// own, and the environment entry of its relayer key.
func (w *world) onchainFacilitator(t *testing.T) (*rpcbridge.Bridge, map[string]any, string) {
	t.Helper()
	b := rpcbridge.New(t, w.chain.RPCClient())
	relayer := w.relayer(t)
	fac := map[string]any{"kind": config.KindOnchain, "onchain": map[string]any{"rpcURL": b.URL}}
	return b, fac, config.EnvRelayerKey + "=" + common.Bytes2Hex(relayer.Key.D.FillBytes(make([]byte, 32)))
}

// url is the absolute URL of a canonical path on the gateway, as challenges name it.
func (s *stack) url(path string) string { return s.gw.URL + path }

// row is a ledger row, read straight from PostgreSQL.
type row struct {
	ID, Status, Route, Endpoint, Payer, Amount, TxHash, Facilitator string
	Mock                                                            bool
	SettledAt                                                       *time.Time
}

// rows returns the ledger rows of payer (all rows if payer is the zero address), oldest first.
func (s *stack) rows(t *testing.T, payer common.Address) []row {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := `SELECT id::text, status, coalesce(route, ''), endpoint, payer_address, amount, coalesce(tx_hash, ''),
	        coalesce(facilitator, ''), mock, settled_at
	      FROM x402_payments WHERE ($1 = '' OR lower(payer_address) = $1) ORDER BY created_at, id`
	who := ""
	if payer != (common.Address{}) {
		who = strings.ToLower(payer.Hex())
	}
	rs, err := s.pool.Query(ctx, q, who)
	if err != nil {
		t.Fatalf("reading the ledger: %v", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.ID, &r.Status, &r.Route, &r.Endpoint, &r.Payer, &r.Amount, &r.TxHash, &r.Facilitator, &r.Mock, &r.SettledAt); err != nil {
			t.Fatalf("reading the ledger: %v", err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("reading the ledger: %v", err)
	}
	return out
}

// settledTotal is the number and atomic sum of the route's settled rows.
func (s *stack) settledTotal(t *testing.T, route string) (n int64, sum string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount::numeric), 0)::text FROM x402_payments
		WHERE route = $1 AND status = 'settled'`, route).Scan(&n, &sum)
	if err != nil {
		t.Fatalf("reading the ledger totals: %v", err)
	}
	return n, sum
}

// eventually polls cond every 100 ms until it holds or timeout passes; then the test fails
// with cond's last description.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, timeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sign signs a payment for req and returns the PAYMENT-SIGNATURE value.
func sign(t *testing.T, s *eip3009.Signer, req x402.PaymentRequirements, res *x402.ResourceInfo) string {
	t.Helper()
	h, _ := signWith(t, s, req, res, nil)
	return h
}

// signWith signs a payment whose authorization mutate may change first, and returns the
// header value and the authorization.
func signWith(t *testing.T, s *eip3009.Signer, req x402.PaymentRequirements, res *x402.ResourceInfo, mutate func(*eip3009.Authorization)) (string, eip3009.Authorization) {
	t.Helper()
	d, err := eip3009.DomainFor(req)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Authorize(req)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&a)
	}
	p, err := s.SignWith(req, res, d, a)
	if err != nil {
		t.Fatal(err)
	}
	h, err := x402.EncodePaymentSignature(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, a
}

// authorizationFrom is the payer of a transferWithAuthorization transaction (its first
// argument, in both the bytes-signature and the v,r,s form), or the zero address.
func authorizationFrom(tx *types.Transaction) common.Address {
	data := tx.Data()
	if len(data) < 4+32 {
		return common.Address{}
	}
	return common.BytesToAddress(data[4+12 : 4+32])
}

// wantReceipt checks a PAYMENT-RESPONSE.
func wantReceipt(t *testing.T, a answer, success bool, tx string) {
	t.Helper()
	if a.Receipt == nil {
		t.Errorf("no %s header: %v", x402.HeaderPaymentResponse, a)
		return
	}
	if a.Receipt.Success != success || (tx != "" && !strings.EqualFold(a.Receipt.Transaction, tx)) {
		t.Errorf("%s = %+v, want success=%v transaction=%s", x402.HeaderPaymentResponse, *a.Receipt, success, tx)
	}
}

// want402 checks a 402 with reason.
func want402(t *testing.T, a answer, reason x402.Reason) {
	t.Helper()
	if a.Status != 402 || a.JSON.Reason != string(reason) {
		t.Errorf("answer %v, want 402 reason %q", a, reason)
	}
}

func describe(rows []row) string { return fmt.Sprintf("%+v", rows) }
