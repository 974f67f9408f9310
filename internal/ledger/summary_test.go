package ledger

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// wantTotalsMatchRows fails unless the summary-backed Totals of route equal an aggregate of the
// route's rows, for real and mock payments.
func wantTotalsMatchRows(t *testing.T, l *Ledger, pool *pgxpool.Pool, route string) {
	t.Helper()
	ctx := testCtx(t)
	got, err := l.Totals(ctx, route)
	if err != nil {
		t.Fatal(err)
	}
	for _, mock := range []bool{false, true} {
		var n int64
		var sum string
		if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount::numeric), 0)::text FROM x402_payments
WHERE route = $1 AND mock = $2 AND status = 'settled'`, route, mock).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		tally := got.Real
		if mock {
			tally = got.Mock
		}
		if tally.SettledCount != n || tally.SettledAmount.String() != sum {
			t.Fatalf("route %s mock=%v: totals say %d payments, %s; the rows say %d, %s", route, mock,
				tally.SettledCount, tally.SettledAmount, n, sum)
		}
	}
}

// The summary follows every writer: the gateway's single and batched outcomes, idempotent
// re-settles, resolver verdicts from pending and failed, and other tools' statements on the
// table (InsForge's guide inserts settled rows; an operator fixes an amount, moves or deletes
// rows, truncates the table).
func TestSummaryFollowsEveryWriter(t *testing.T) {
	l, pool, _ := newLedger(t)
	ctx := testCtx(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	check := func(step string) {
		t.Helper()
		for _, r := range []string{"ns/a", "ns/b"} {
			t.Run(step+"/"+r, func(t *testing.T) { wantTotalsMatchRows(t, l, pool, r) })
		}
	}

	// The gateway: batched outcomes from many goroutines (one statement settles several rows).
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			in := intent("ns/a", fmt.Sprint(1000+i))
			in.Mock = i%5 == 0
			settle(t, l, in)
		})
	}
	wg.Wait()
	check("batched")

	// An idempotent repeat of a settled outcome counts once.
	id, tx := settle(t, l, intent("ns/b", "77"))
	if err := l.MarkSettled(ctx, Ticket{ID: id}, tx, "again", true); err != nil {
		t.Fatal(err)
	}
	check("repeat")

	// Pending, then settled by the resolver; failed, then settled on chain evidence.
	pc := claimWon(t, l, intent("ns/b", "500"))
	if err := l.MarkSettling(ctx, pc.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkPending(ctx, pc.Ticket, "", "timeout"); err != nil {
		t.Fatal(err)
	}
	check("pending")
	if err := l.MarkSettled(ctx, Ticket{ID: pc.Ticket.ID}, newTxHash(), "", false); err != nil {
		t.Fatal(err)
	}
	fc := claimWon(t, l, intent("ns/b", "600"))
	if err := l.MarkSettling(ctx, fc.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkFailed(ctx, fc.Ticket, "", "reverted"); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkSettled(ctx, Ticket{ID: fc.Ticket.ID}, newTxHash(), "", false); err != nil {
		t.Fatal(err)
	}
	check("resolved")

	// InsForge's guide: one INSERT per settled payment, and a multi-row INSERT.
	exec(`INSERT INTO x402_payments (payer_address, endpoint, amount, tx_hash, status, route, settled_at)
VALUES ('0xguide', '/weather', '250', '0xguidetx1', 'settled', 'ns/a', now())`)
	exec(`INSERT INTO x402_payments (payer_address, endpoint, amount, tx_hash, status, route, settled_at)
SELECT '0xguide', '/weather', '10', '0xguide' || i, 'settled', 'ns/b', now() FROM generate_series(2, 20) AS i`)
	check("guide inserts")

	// A bulk load (a COPY, a restore, a backfill) of settled rows in one statement: each row
	// appends a delta, so this is linear; updating one summary row per row would not finish.
	exec(`INSERT INTO x402_payments (payer_address, endpoint, amount, tx_hash, status, route, mock, settled_at)
SELECT '0xbulk', '/w', (i % 97)::text, '0xbulk' || i, 'settled', CASE WHEN i % 2 = 0 THEN 'ns/a' ELSE 'ns/b' END,
	i % 5 = 0, now() FROM generate_series(1, 20000) AS i`)
	check("bulk insert")

	// Out-of-band edits: an amount corrected, rows moved between routes and to mock, rows deleted.
	exec(`UPDATE x402_payments SET amount = '999' WHERE tx_hash = '0xguidetx1'`)
	exec(`UPDATE x402_payments SET route = 'ns/a' WHERE tx_hash IN ('0xguide2', '0xguide3')`)
	exec(`UPDATE x402_payments SET mock = true WHERE tx_hash = '0xguide4'`)
	exec(`DELETE FROM x402_payments WHERE tx_hash IN ('0xguide5', '0xguide6')`)
	exec(`UPDATE x402_payments SET status = 'failed' WHERE tx_hash = '0xguide7'`)
	check("edits")

	exec(`TRUNCATE x402_payments`)
	check("truncate")
	settle(t, l, intent("ns/a", "5"))
	check("after truncate")
}

// A ledger adopted with settled rows (InsForge's guide table, or a ledger of version 3) gets a
// summary that counts them, and an unchanged reading of its totals.
func TestMigration4CountsExistingRows(t *testing.T) {
	db := pgtest.NewDatabase(t)
	pool := db.Pool(t)
	ctx := testCtx(t)
	if _, err := migrateTo(ctx, pool, Options{}, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO x402_payments (payer_address, nonce, endpoint, amount, status, tx_hash, route, mock, settled_at)
SELECT '0x' || md5(i::text), '0x' || md5(i::text), '/w', (i * 3)::text, CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'settled' END,
	'0x' || md5(i::text), CASE WHEN i % 2 = 0 THEN 'ns/a' ELSE 'ns/b' END, i % 3 = 0, now() - i * interval '1 second'
FROM generate_series(1, 5000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := Migrate(ctx, pool, Options{}); err != nil {
		t.Fatal(err)
	}
	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"ns/a", "ns/b"} {
		wantTotalsMatchRows(t, l, pool, r)
		got, err := l.Totals(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		// The newest settlement is the one with the smallest i of the route's settled rows.
		var tx string
		if err := pool.QueryRow(ctx, `SELECT tx_hash FROM x402_payments WHERE route = $1 AND status = 'settled' AND NOT mock
ORDER BY settled_at DESC LIMIT 1`, r).Scan(&tx); err != nil {
			t.Fatal(err)
		}
		if got.Real.LastTxHash != tx {
			t.Errorf("%s: last tx %s, want %s", r, got.Real.LastTxHash, tx)
		}
	}
}

// Writes that bypass triggers (a data-only restore with --disable-triggers does this) leave the
// summary behind; ResyncTotals makes it exact again.
func TestResyncTotalsRepairsWritesThatBypassedTriggers(t *testing.T) {
	l, pool, _ := newLedger(t)
	ctx := testCtx(t)
	settle(t, l, intent("ns/a", "100"))
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer conn.Release()
		if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = conn.Exec(context.Background(), `SET session_replication_role = origin`) }()
		if _, err := conn.Exec(ctx, `INSERT INTO x402_payments (payer_address, endpoint, amount, status, tx_hash, route, settled_at)
SELECT '0xrestored', '/w', '7', 'settled', '0xrestored' || i, 'ns/a', now() FROM generate_series(1, 30) AS i`); err != nil {
			t.Fatal(err)
		}
	}()
	got, err := l.Totals(ctx, "ns/a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Real.SettledCount != 1 {
		t.Fatalf("the bypassing insert was counted (%d): this test no longer shows a drift", got.Real.SettledCount)
	}
	if err := l.ResyncTotals(ctx, "ns/a"); err != nil {
		t.Fatal(err)
	}
	wantTotalsMatchRows(t, l, pool, "ns/a")
	// And the triggers go on from the resynced state.
	settle(t, l, intent("ns/a", "1"))
	wantTotalsMatchRows(t, l, pool, "ns/a")
}

func TestUnfinishedCountsSettlingAndPending(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	settle(t, l, intent("ns/a", "1"))
	s := claimWon(t, l, intent("ns/a", "1"))
	if err := l.MarkSettling(ctx, s.Ticket); err != nil {
		t.Fatal(err)
	}
	p := claimWon(t, l, intent("ns/a", "1"))
	if err := l.MarkSettling(ctx, p.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkPending(ctx, p.Ticket, "", "timeout"); err != nil {
		t.Fatal(err)
	}
	claimWon(t, l, intent("ns/a", "1")) // verifying: no settle called yet
	m := intent("ns/a", "1")
	m.Mock = true
	mc := claimWon(t, l, m)
	if err := l.MarkSettling(ctx, mc.Ticket); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Unfinished(ctx, "ns/a"); err != nil || n != 3 {
		t.Fatalf("Unfinished = %d, %v; want 3 (settling, pending, mock settling)", n, err)
	}
	if n, err := l.Unfinished(ctx, "ns/other"); err != nil || n != 0 {
		t.Fatalf("another route: %d, %v", n, err)
	}
}
