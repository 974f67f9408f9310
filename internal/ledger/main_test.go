package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testCtx is a context bounded so a hung test fails instead of stalling the suite.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newLedger migrates a fresh database and returns a ledger on it.
func newLedger(t testing.TB) (*Ledger, *pgxpool.Pool, *pgtest.Database) {
	t.Helper()
	db := pgtest.NewDatabase(t)
	pool := db.Pool(t)
	if _, err := Migrate(testCtx(t), pool, Options{}); err != nil {
		t.Fatal(err)
	}
	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l, pool, db
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newNonce() string  { return "0x" + randHex(32) }
func newTxHash() string { return "0x" + randHex(32) }
func newPayer() string  { return "0x" + randHex(20) }

// intent returns a valid intent for route with a fresh payer and nonce.
func intent(route, amount string) Intent {
	return Intent{
		Payer:       newPayer(),
		Nonce:       newNonce(),
		Route:       route,
		Endpoint:    "/weather",
		Resource:    "https://api.example.test/weather",
		Amount:      amount,
		Network:     "eip155:196",
		Asset:       "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8",
		PayTo:       "0x" + randHex(20),
		Facilitator: "okx",
		Payload:     []byte(`{"x402Version":2,"payload":{"signature":"0xabc"}}`),
	}
}

// claimWon claims in and fails the test unless the claim is won.
func claimWon(t testing.TB, l *Ledger, in Intent) ClaimResult {
	t.Helper()
	c, err := l.Claim(testCtx(t), in)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Won {
		t.Fatalf("claim of a fresh payment not won: %+v", c)
	}
	return c
}

// settle runs the paid path for in: claim, settling, settled. It returns the id and tx hash.
func settle(t testing.TB, l *Ledger, in Intent) (string, string) {
	t.Helper()
	ctx := testCtx(t)
	c := claimWon(t, l, in)
	if err := l.MarkSettling(ctx, c.Ticket); err != nil {
		t.Fatal(err)
	}
	tx := newTxHash()
	if err := l.MarkSettled(ctx, c.Ticket, tx, "200 OK", true); err != nil {
		t.Fatal(err)
	}
	return c.Ticket.ID, tx
}

func mustStatus(t testing.TB, l *Ledger, id string, want Status) Payment {
	t.Helper()
	p, err := l.Get(testCtx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != want {
		t.Fatalf("payment %s is %s, want %s (reason %q)", id, p.Status, want, p.FailureReason)
	}
	return p
}

// eventually polls cond until it holds or the test context ends.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx := testCtx(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
