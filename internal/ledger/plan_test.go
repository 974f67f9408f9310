package ledger

import (
	"fmt"
	"strings"
	"testing"
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
	for i := range batch {
		ids[i], seqs[i], txs[i] = fmt.Sprintf("00000000-0000-0000-0000-%012d", i), 1, newTxHash()
	}
	for _, tc := range []struct {
		name string
		sql  string
		args []any
	}{
		{"settling", l.sql.settlingBatch, []any{ids, seqs}},
		{"settled", l.sql.settledBatch, []any{ids, txs, sums}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := conn.Conn().Prepare(ctx, "explain_"+tc.name, "EXPLAIN "+tc.sql); err != nil {
				t.Fatal(err)
			}
			rows, err := conn.Query(ctx, "explain_"+tc.name, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, line)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			if !strings.Contains(text, "x402_payments_pkey") || strings.Contains(text, "Bitmap") || strings.Contains(text, "Seq Scan on x402_payments") {
				t.Errorf("the batched %s update does not go through the primary key:\n%s", tc.name, text)
			}
		})
	}
}
