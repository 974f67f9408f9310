package ledger

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/insforge/integrations-operator/internal/testutil/cpustat"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// BenchmarkClaimSettle measures the ledger's share of the paid path: ClaimSettling and
// MarkSettled for one payment (two statements, two synchronous commits). "fast" uses the test server
// (fsync off); "durable" a server with fsync, synchronous_commit and full_page_writes on, as in
// production. "serial" is one payment at a time (latency); "parallel" 64 goroutines on a pool of
// 64 connections (throughput). "baseline-2xSELECT1" runs two empty statements in the same run,
// so the ledger's cost can be read as a ratio on a busy machine. "parallel" also reports the
// machine's busy CPU time per payment (cpustat), steadier than throughput on a shared machine.
// LEDGER_BENCH_STATEMENTS=1 loads pg_stat_statements into the durable server and logs where its
// time went, per statement, after the parallel run (how docs/benchmarks.md's figures were found).
func BenchmarkClaimSettle(b *testing.B) {
	servers := map[string]func(b *testing.B) *pgtest.Database{
		"fast": func(b *testing.B) *pgtest.Database { return pgtest.NewDatabase(b) },
		"durable": func(b *testing.B) *pgtest.Database {
			settings := map[string]string{"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
			if reportStatements() {
				settings["shared_preload_libraries"] = "pg_stat_statements"
				settings["pg_stat_statements.track"] = "all"
			}
			srv := pgtest.StartServer(b, pgtest.Options{Settings: settings})
			return srv.NewDatabase(b)
		},
	}
	for _, name := range []string{"fast", "durable"} {
		b.Run(name, func(b *testing.B) {
			db := servers[name](b)
			ctx := context.Background()
			cfg, err := pgxpool.ParseConfig(db.URL)
			if err != nil {
				b.Fatal(err)
			}
			cfg.MaxConns = 64
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			if _, err := Migrate(ctx, pool, Options{}); err != nil {
				b.Fatal(err)
			}
			l, err := New(pool, Options{})
			if err != nil {
				b.Fatal(err)
			}
			// The floor: two trivial statements, the round trips the ledger cannot avoid.
			b.Run("baseline-2xSELECT1", func(b *testing.B) {
				for b.Loop() {
					for range 2 {
						if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					claimSettle(b, l, intent("ns/bench", "10000"))
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
			})
			b.Run("parallel", func(b *testing.B) {
				b.SetParallelism(64 / max(1, testingProcs()))
				stop := cpustat.Start()
				pg0, pgErr := cpustat.Command("postgres")
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						claimSettle(b, l, intent("ns/bench", "10000"))
					}
				})
				busy, err := stop()
				if err != nil {
					b.Fatal(err)
				}
				pg1, err := cpustat.Command("postgres")
				if err != nil || pgErr != nil {
					b.Fatal(err, pgErr)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
				// Both CPUs' busy time (PostgreSQL, this process and anything else running),
				// per payment: the ledger's whole CPU cost on this machine.
				b.ReportMetric(float64(busy.Microseconds())/float64(b.N), "machine-µs/payment")
				// PostgreSQL's processes alone (every server on the machine: run it alone).
				b.ReportMetric(float64((pg1-pg0).Microseconds())/float64(b.N), "postgres-µs/payment")
				if name == "durable" && reportStatements() {
					logStatements(ctx, b, pool)
				}
			})
		})
	}
}

// claimSettle runs the ledger's part of one paid request, as the gateway does (ClaimSettling,
// then the settled outcome); intent generation is outside the ledger but cheap (random bytes).
func claimSettle(b *testing.B, l *Ledger, in Intent) {
	ctx := context.Background()
	c, err := l.ClaimSettling(ctx, in)
	if err != nil || !c.Won {
		b.Fatalf("claim: %+v, %v", c, err)
	}
	if err := l.MarkSettled(ctx, c.Ticket, newTxHash(), "200", true); err != nil {
		b.Fatal(err)
	}
}

func reportStatements() bool { return os.Getenv("LEDGER_BENCH_STATEMENTS") != "" }

// logStatements logs the statements that took most of PostgreSQL's execution time, with their
// rows and WAL, so a change to the ledger's SQL can be judged per row written.
func logStatements(ctx context.Context, b *testing.B, pool *pgxpool.Pool) {
	if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		b.Fatalf("pg_stat_statements: %v", err)
	}
	rows, err := pool.Query(ctx, `SELECT calls, rows, total_exec_time, wal_bytes::float8,
	left(regexp_replace(query, '\s+', ' ', 'g'), 100)
FROM pg_stat_statements WHERE calls > 50 ORDER BY total_exec_time DESC LIMIT 10`)
	if err != nil {
		b.Fatalf("pg_stat_statements: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var calls, n int64
		var execMs, wal float64
		var query string
		if err := rows.Scan(&calls, &n, &execMs, &wal, &query); err != nil {
			b.Fatal(err)
		}
		b.Logf("%8d calls %8d rows %8.0f ms (%5.1f µs/row) %6.0f WAL B/row  %s",
			calls, n, execMs, 1000*execMs/float64(max(n, 1)), wal/float64(max(n, 1)), query)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkTotals reads one route's totals from ledgers of 1,000 to 10 million settled rows (the
// fast test server). The controller reads them on every reconcile of the route, and under load
// that is all the time. The settled tallies come from the summary table, so the cost must not
// grow with the ledger: compare the sizes (docs/benchmarks.md, "Totals"). The rows are generated
// by one INSERT ... SELECT (another writer, for the ledger: its trigger appends a delta per row,
// which the first read folds into the summary before the timed reads).
func BenchmarkTotals(b *testing.B) {
	for _, rows := range []int{1_000, 100_000, 1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			db := pgtest.NewDatabase(b)
			pool := db.Pool(b)
			ctx := context.Background()
			if _, err := Migrate(ctx, pool, Options{}); err != nil {
				b.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `INSERT INTO x402_payments (payer_address, nonce, endpoint, amount, status, tx_hash, route, settled_at)
SELECT '0x' || md5(i::text), '0x' || md5(i::text) || md5(i::text), '/weather', '1000', 'settled', '0x' || md5(i::text), 'ns/r', now()
FROM generate_series(1, $1::int) AS i`, rows); err != nil {
				b.Fatal(err)
			}
			l, err := New(pool, Options{})
			if err != nil {
				b.Fatal(err)
			}
			// The first read folds the generating statement's deltas into the summary, once; the
			// vacuum then does what autovacuum does soon after such a bulk write (the folded
			// deltas are dead rows that every fold would otherwise read past).
			if _, err := l.Totals(ctx, "ns/r"); err != nil {
				b.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `VACUUM ANALYZE x402_payments, x402_payments_totals_delta`); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				t, err := l.Totals(ctx, "ns/r")
				if err != nil || t.Real.SettledCount != int64(rows) {
					b.Fatalf("totals %+v, %v", t.Real, err)
				}
			}
		})
	}
}
