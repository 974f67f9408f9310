package gateway

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator/okx"
	"github.com/insforge/integrations-operator/internal/facilitator/onchain"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/testutil/okxfake"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/x402"
)

func TestPostgresDownBeforeTheClaimMeansNoFacilitatorCallAnd503(t *testing.T) {
	srv := pgtest.StartServer(t, pgtest.Options{})
	e := newEnv(t, envOpts{db: srv.NewDatabase(t)})
	payer := e.payer(t, 1)
	h := sign(t, payer, e.requirements())
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	a := e.pay(t, "/weather", h)
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
		t.Fatalf("status %d %s", a.status, a.body)
	}
	// No durable record, so the facilitator is not even asked to verify.
	if e.fac.verifies.Load() != 0 || e.fac.settles.Load() != 0 || e.up.count() != 0 || e.merchantBalance(t) != 0 {
		t.Fatalf("verifies %d settles %d upstream %d merchant %d", e.fac.verifies.Load(), e.fac.settles.Load(), e.up.count(), e.merchantBalance(t))
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if a := e.pay(t, "/weather", h); a.status != http.StatusOK || e.merchantBalance(t) != price {
		t.Fatalf("the same payment once the database is back: %d %s", a.status, a.body)
	}
}

// The claim is the durable record that money may move: once it is written, the database going
// away does not stop the payment, and the outcome reaches the ledger through the spool.
func TestPostgresDownAfterTheClaimStillSettlesAndSpoolsTheOutcome(t *testing.T) {
	srv := pgtest.StartServer(t, pgtest.Options{})
	e := newEnv(t, envOpts{db: srv.NewDatabase(t)})
	e.fac.afterVerify = func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	}
	payer := e.payer(t, 1)
	a := e.pay(t, "/weather", sign(t, payer, e.requirements()))
	if a.status != http.StatusOK || !receiptOf(t, a).Success || e.merchantBalance(t) != price {
		t.Fatalf("status %d %s merchant %d", a.status, a.body, e.merchantBalance(t))
	}
	if n, err := e.spool.Len(); err != nil || n != 1 {
		t.Fatalf("spool holds %d records (%v)", n, err)
	}
	e.fac.afterVerify = nil
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if rows := e.rows(t); len(rows) != 1 || rows[0].Status != ledger.StatusSettling {
		t.Fatalf("before the spool's replay: %+v", rows)
	}
	if res, err := e.spool.Replay(testCtx(t), e.ledger); err != nil || res.Applied != 1 {
		t.Fatalf("replay = %+v, %v", res, err)
	}
	if rows := e.rows(t); len(rows) != 1 || rows[0].Status != ledger.StatusSettled || rows[0].TxHash != receiptOf(t, a).Transaction {
		t.Errorf("rows = %+v", rows)
	}
}

// A gateway that dies after its claim and before settle leaves a settling row whose
// authorization was never used. The resolver must not fail it while the authorization could
// still move money (a settle already on its way, or anyone holding the signed authorization),
// and fails it once the chain says it expired unused; the payer is never charged.
func TestGatewayDeadBetweenClaimAndSettleIsFailedOnlyOnceTheAuthorizationExpired(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.fac.afterVerify = func() { panic(http.ErrAbortHandler) } // the process stops here
	payer := e.payer(t, 1)
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, e.srv.URL+"/weather", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(x402.HeaderPaymentSignature, sign(t, payer, e.requirements()))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the request was answered: %d", resp.StatusCode)
	}
	rows := e.rows(t)
	if len(rows) != 1 || rows[0].Status != ledger.StatusSettling || e.fac.settles.Load() != 0 {
		t.Fatalf("rows = %+v, settles %d", rows, e.fac.settles.Load())
	}
	e.fac.afterVerify = nil

	// Still valid: the resolver leaves it unresolved (pending), however often it looks.
	ctx, cancel := context.WithTimeout(testCtx(t), 500*time.Millisecond)
	_ = e.ledger.RunResolver(ctx, ledger.ResolverConfig{Route: routeName, Resolver: Resolver{Facilitator: e.onchain},
		Interval: 20 * time.Millisecond, MinAge: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	cancel()
	if rows := e.rows(t); rows[0].Status != ledger.StatusPending || rows[0].Attempts == 0 {
		t.Fatalf("while the authorization is valid: %+v", rows[0])
	}

	// Past validBefore (the route's maxTimeoutSeconds is 120), the chain proves it can never move money.
	if err := e.chain.Backend.AdjustTime(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	e.chain.Commit()
	resolveAll(t, e)
	rows = e.rows(t)
	if rows[0].Status != ledger.StatusFailed || !strings.Contains(rows[0].FailureReason, string(x402.ReasonValidBefore)) {
		t.Fatalf("after expiry: %+v", rows[0])
	}
	if e.merchantBalance(t) != 0 || e.balance(t, payer) != price {
		t.Fatalf("money moved: merchant %d payer %d", e.merchantBalance(t), e.balance(t, payer))
	}
}

func TestPostgresDownRightAfterSettleIsRecoveredFromTheSpool(t *testing.T) {
	srv := pgtest.StartServer(t, pgtest.Options{})
	e := newEnv(t, envOpts{db: srv.NewDatabase(t)})
	e.fac.afterSettle = func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	}
	payer := e.payer(t, 1)
	a := e.pay(t, "/weather", sign(t, payer, e.requirements()))
	// The money moved, so the payer gets the content even though the database is down.
	if a.status != http.StatusOK || !receiptOf(t, a).Success {
		t.Fatalf("status %d %s", a.status, a.body)
	}
	tx := receiptOf(t, a).Transaction
	if n, err := e.spool.Len(); err != nil || n != 1 {
		t.Fatalf("spool holds %d records (%v)", n, err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	res, err := e.spool.Replay(testCtx(t), e.ledger)
	if err != nil || res.Applied != 1 {
		t.Fatalf("replay = %+v, %v", res, err)
	}
	rows := e.rows(t)
	if len(rows) != 1 || rows[0].Status != ledger.StatusSettled || rows[0].TxHash != tx {
		t.Errorf("rows = %+v, want settled %s", rows, tx)
	}
}

func TestPostgresDownAfterSettleWithoutSpoolIsResolvedFromTheChain(t *testing.T) {
	srv := pgtest.StartServer(t, pgtest.Options{})
	e := newEnv(t, envOpts{db: srv.NewDatabase(t)})
	// The spool is lost too (its directory replaced by a file): only the settling row remains.
	if err := os.RemoveAll(e.spoolDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.spoolDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.fac.afterSettle = func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	}
	payer := e.payer(t, 1)
	a := e.pay(t, "/weather", sign(t, payer, e.requirements()))
	if a.status != http.StatusOK {
		t.Fatalf("status %d %s", a.status, a.body)
	}
	tx := receiptOf(t, a).Transaction
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if rows := e.rows(t); len(rows) != 1 || rows[0].Status != ledger.StatusSettling {
		t.Fatalf("before resolving: %+v", rows)
	}
	resolveAll(t, e)
	rows := e.rows(t)
	if len(rows) != 1 || rows[0].Status != ledger.StatusSettled || !strings.EqualFold(rows[0].TxHash, tx) {
		t.Errorf("rows = %+v, want settled %s", rows, tx)
	}
	if e.merchantBalance(t) != price {
		t.Errorf("merchant = %d", e.merchantBalance(t))
	}
}

func TestSettleTimeoutIsPendingThenResolvedThroughStatus(t *testing.T) {
	// No miner: the settlement is broadcast but its receipt never comes within the wait.
	e := newEnv(t, envOpts{onchain: func(c *onchain.Config) { c.AfterSend = nil; c.ReceiptTimeout = 200 * time.Millisecond }})
	payer := e.payer(t, 1)
	h := sign(t, payer, e.requirements())
	a := e.pay(t, "/weather", h)
	if a.status != http.StatusPaymentRequired || a.json.Reason != string(x402.ReasonSettlementPending) {
		t.Fatalf("status %d %s", a.status, a.body)
	}
	tx := receiptOf(t, a).Transaction
	if tx == "" {
		t.Fatal("pending receipt lacks the broadcast tx hash")
	}
	rows := e.rows(t)
	if len(rows) != 1 || rows[0].Status != ledger.StatusPending || rows[0].TxHash != tx {
		t.Fatalf("rows = %+v", rows)
	}
	e.chain.Commit()
	resolveAll(t, e)
	if rows := e.rows(t); rows[0].Status != ledger.StatusSettled || rows[0].TxHash != tx {
		t.Errorf("after resolve: %+v", rows)
	}
	if a := e.pay(t, "/weather", h); a.status != http.StatusOK || e.merchantBalance(t) != price {
		t.Errorf("retry after resolve: %d %s merchant %d", a.status, a.body, e.merchantBalance(t))
	}
}

func TestOKXSettleTimeoutIsPendingThenResolvedThroughOKXStatus(t *testing.T) {
	e := newEnv(t, envOpts{})
	creds := okx.Credentials{APIKey: "ak-test", SecretKey: "sk-test", Passphrase: "pp-test"}
	fake := okxfake.New(t, okxfake.Config{APIKey: creds.APIKey, SecretKey: creds.SecretKey, Passphrase: creds.Passphrase, Backend: e.onchain})
	client, err := okx.New(okx.Config{BaseURL: fake.URL, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	e.fac = &counting{Facilitator: client}
	e.start(t)
	payer := e.payer(t, 2)

	// A plain OKX payment first.
	if a := e.pay(t, "/weather", sign(t, payer, e.requirements())); a.status != http.StatusOK || e.merchantBalance(t) != price {
		t.Fatalf("okx happy path: %d %s merchant %d", a.status, a.body, e.merchantBalance(t))
	}
	fake.Inject(okxfake.PathSettle, okxfake.FaultSettleTimeout)
	h := sign(t, payer, e.requirements())
	a := e.pay(t, "/weather", h)
	if a.status != http.StatusPaymentRequired || a.json.Reason != string(x402.ReasonSettlementPending) {
		t.Fatalf("status %d %s", a.status, a.body)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 30*time.Second)
	defer cancel()
	go func() {
		// As the gateway runs it: OKX's answer is confirmed on chain.
		_ = e.ledger.RunResolver(ctx, ledger.ResolverConfig{Route: routeName, Resolver: Resolver{Facilitator: client, Chain: e.onchain},
			Interval: 20 * time.Millisecond, MinAge: time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	}()
	for {
		rows := e.rows(t)
		if rows[1].Status == ledger.StatusSettled && rows[1].TxHash != "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("not resolved: %+v", rows)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := e.merchantBalance(t); got != 2*price {
		t.Errorf("merchant = %d, want %d", got, 2*price)
	}
	if fake.Count(okxfake.PathSettleStatus) == 0 {
		t.Error("the resolver did not ask OKX's status endpoint")
	}
	if a := e.pay(t, "/weather", h); a.status != http.StatusOK {
		t.Errorf("retry after resolve: %d %s", a.status, a.body)
	}
}
