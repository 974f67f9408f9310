package ledger

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// The paid path's batched writes must reach their rows through the primary key, whatever the
// table's statistics say. A partial index whose predicate the statement implies (as version 1's
// index over all unfinished rows was for the settling update) tempts the planner into a bitmap
// scan of every unfinished row and of the dead entries they leave, once per batch.
func TestBatchedWritesUseThePrimaryKey(t *testing.T) {
	l, pool, _ := newLedger(t)
	ctx := testCtx(t)
	// Mostly finished rows, a few unfinished ones, and fresh statistics: the case that made
	// the planner pick the partial index.
	if _, err := pool.Exec(ctx, `INSERT INTO x402_payments (payer_address, nonce, endpoint, amount, status, tx_hash, route, payload)
SELECT '0x' || md5(i::text), '0x' || md5(i::text) || md5(i::text), '/weather', '1000',
	CASE WHEN i % 2000 = 0 THEN 'verifying' WHEN i % 2000 = 1 THEN 'settling' ELSE 'settled' END,
	CASE WHEN i % 2000 > 1 THEN '0x' || md5(i::text) END, 'ns/r', '{"x402Version":2}'
FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE x402_payments`); err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// A batch of a typical size under load; EXPLAIN plans with its values, as a custom plan does.
	const batch = 20
	ids, seqs, txs, sums := make([]string, batch), make([]int32, batch), make([]string, batch), make([]string, batch)
	served := make([]bool, batch)
	for i := range batch {
		ids[i], seqs[i], txs[i] = fmt.Sprintf("00000000-0000-0000-0000-%012d", i), 1, newTxHash()
	}
	for _, tc := range []struct {
		name string
		sql  string
		args []any
	}{
		{"settling", l.sql.settlingBatch, []any{ids, seqs}},
		{"settled", l.sql.settledBatch, []any{ids, txs, sums, served}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := conn.Conn().Prepare(ctx, "explain_"+tc.name, "EXPLAIN "+tc.sql); err != nil {
				t.Fatal(err)
			}
			text := planText(t, conn, "explain_"+tc.name, tc.args...)
			if !strings.Contains(text, "x402_payments_pkey") || strings.Contains(text, "Bitmap") || strings.Contains(text, "Seq Scan on x402_payments") {
				t.Errorf("the batched %s update does not go through the primary key:\n%s", tc.name, text)
			}
		})
	}
}

// A batch statement must be planned for the table it runs on, not for the table as it was when
// the connection first ran it: a plan cached while the table was small (a new ledger, no ANALYZE
// yet) scans the whole table on every batch once it has grown. Autovacuum is off for the table so
// that no ANALYZE replans behind the test's back.
func TestBatchedWritesArePlannedForTheTableTheyFind(t *testing.T) {
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1 // one backend runs every statement, and its statistics are read back exactly
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := Migrate(ctx, pool, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE x402_payments SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// settleBatched claims four payments, then marks them settling and settled in one batch each.
	settleBatched := func() {
		tickets := make([]Ticket, 4)
		for i := range tickets {
			tickets[i] = claimWon(t, l, intent("ns/r", "1000")).Ticket
		}
		errs := make([]error, 2*len(tickets))
		var settling, settled []func()
		for i, tk := range tickets {
			settling = append(settling, func() { errs[i] = l.MarkSettling(ctx, tk) })
			settled = append(settled, func() { errs[len(tickets)+i] = l.MarkSettled(ctx, tk, newTxHash(), "200", true) })
		}
		queueAsOneBatch(t, &l.batch.settling, settling)()
		queueAsOneBatch(t, &l.batch.settled, settled)()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	seqScans := func() int64 {
		// The backend publishes its counters when idle after this; the next statement reads them.
		if _, err := pool.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := pool.QueryRow(ctx, `SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'x402_payments'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Past the five executions after which a prepared statement may switch to a generic plan.
	for range 8 {
		settleBatched()
	}
	// The table grows to the size at which the ledger stops planning every batch.
	if _, err := pool.Exec(ctx, `INSERT INTO x402_payments (payer_address, nonce, endpoint, amount, status, tx_hash, route)
SELECT '0x' || md5(i::text), '0x' || md5(i::text) || md5(i::text), '/weather', '1000', 'settled', '0x' || md5(i::text), 'ns/r'
FROM generate_series(1, $1::int) AS i`, planEachBatchUntil); err != nil {
		t.Fatal(err)
	}
	before := seqScans()
	for range 3 {
		settleBatched()
	}
	if n := seqScans() - before; n != 0 {
		t.Errorf("the batched writes scanned the whole %d-row table %d times in 3 rounds: planned for the table as it was", planEachBatchUntil, n)
	}
	// Had this ledger claimed those rows itself, its UPDATEs would now be prepared, and their
	// cached plans, made at this size, must be the primary-key lookup.
	l.claimed.Store(planEachBatchUntil)
	before = seqScans()
	for range 8 {
		settleBatched()
	}
	if n := seqScans() - before; n != 0 {
		t.Errorf("the prepared batched writes scanned the whole %d-row table %d times in 8 rounds", planEachBatchUntil, n)
	}
}

// The resolver's per-route scans must be served by indexes (the route index since version 3
// dropped the resolver index): they run on every resolver tick,
// and a table of millions of settled rows must not be read for the handful that are in doubt.
// With sequential scans disabled the planner still picks one when no index serves a scan, so
// a "Seq Scan" in the plan means a missing index.
func TestResolverScansUseIndexes(t *testing.T) {
	l, pool, _ := newLedger(t)
	ctx := testCtx(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sql  string
		args []any
	}{
		{"due", l.sql.due, []any{30.0, 600.0, 100, "ns/r"}},
		{"abandon", l.sql.abandon, []any{60.0, "abandoned", 100, "ns/r"}},
		{"retention", l.sql.retention, []any{"ns/r", 86400.0, 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if text := planText(t, conn, "EXPLAIN "+tc.sql, tc.args...); strings.Contains(text, "Seq Scan") {
				t.Errorf("the resolver's %s scan reads the whole table:\n%s", tc.name, text)
			}
		})
	}
}

// planText runs an EXPLAIN (a statement or the name of a prepared one) and returns its plan.
func planText(t *testing.T, conn *pgxpool.Conn, explain string, args ...any) string {
	t.Helper()
	rows, err := conn.Query(testCtx(t), explain, args...)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}

// The batched claim leaves out intents whose payer already has a payment in flight on the route.
// That probe must be one lookup in the in-flight index per intent, in the plan the prepared
// statement caches while the table is new and small as much as in one made for a large table.
// A NOT EXISTS anti-join was planned as a hash join over a bitmap scan of the whole in-flight
// index, dead entries included, on every batch: 40 % of PostgreSQL's CPU per payment under the
// ledger benchmark (docs/benchmarks.md, "Ledger at scale").
func TestBatchedClaimProbesTheInflightIndexPerIntent(t *testing.T) {
	l, pool, _ := newLedger(t)
	ctx := testCtx(t)
	const batch = 20
	var cols [11][]string
	mocks, payloads := make([]bool, batch), make([]string, batch)
	for i := range batch {
		in := intent("ns/r", "1000")
		for c, v := range []string{in.Payer, in.Nonce, in.Route, in.Endpoint, in.Resource, in.Amount, in.Network, in.Asset, in.PayTo, in.Network, in.Facilitator} {
			cols[c] = append(cols[c], v)
		}
		payloads[i] = string(in.Payload)
	}
	args := []any{cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], cols[10], mocks, payloads}
	check := func(t *testing.T) {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		// The plan a prepared statement switches to after five executions.
		if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
			t.Fatal(err)
		}
		name := "explain_claim_" + strings.ReplaceAll(t.Name(), "/", "_")
		if _, err := conn.Conn().Prepare(ctx, name, "EXPLAIN "+l.sql.claimBatch); err != nil {
			t.Fatal(err)
		}
		text := planText(t, conn, name, args...)
		if !strings.Contains(text, "Scan using x402_payments_inflight_key on x402_payments b") ||
			strings.Contains(text, "Bitmap") || strings.Contains(text, "Hash") || strings.Contains(text, "Seq Scan on x402_payments") {
			t.Errorf("the batched claim does not probe the in-flight index per intent:\n%s", text)
		}
	}
	t.Run("new table", check)
	if _, err := pool.Exec(ctx, `INSERT INTO x402_payments (payer_address, nonce, endpoint, amount, status, tx_hash, route)
SELECT '0x' || md5(i::text), '0x' || md5(i::text) || md5(i::text), '/weather', '1000',
	CASE WHEN i % 2000 = 0 THEN 'verifying' ELSE 'settled' END, CASE WHEN i % 2000 > 0 THEN '0x' || md5(i::text) END, 'ns/r'
FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE x402_payments`); err != nil {
		t.Fatal(err)
	}
	t.Run("large table", check)
}
