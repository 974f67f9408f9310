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

func TestPostgresDownBetweenVerifyAndSettleMeansNoSettleAnd503(t *testing.T) {
	srv := pgtest.StartServer(t, pgtest.Options{})
	e := newEnv(t, envOpts{db: srv.NewDatabase(t)})
	e.fac.afterVerify = func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	}
	payer := e.payer(t, 1)
	a := e.pay(t, "/weather", sign(t, payer, e.requirements()))
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
		t.Fatalf("status %d %s", a.status, a.body)
	}
	if e.fac.settles.Load() != 0 || e.merchantBalance(t) != 0 || e.balance(t, payer) != price {
		t.Fatalf("money moved: settles %d merchant %d payer %d", e.fac.settles.Load(), e.merchantBalance(t), e.balance(t, payer))
	}
	if e.up.count() != 1 {
		t.Errorf("upstream calls = %d", e.up.count())
	}
	e.fac.afterVerify = nil
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// The claim never reached settling, so nothing is left for the resolver to settle.
	rows := e.rows(t)
	if len(rows) != 1 || (rows[0].Status != ledger.StatusVerifying && rows[0].Status != ledger.StatusReleased) {
		t.Errorf("rows = %+v", rows)
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
