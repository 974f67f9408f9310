package ledger

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/insforge/integrations-operator/internal/testutil/cpustat"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// BenchmarkClaimSettle measures the ledger's share of the paid path: Claim, MarkSettling and
// MarkSettled for one payment (three statements, three commits). "fast" uses the test server
// (fsync off); "durable" a server with fsync, synchronous_commit and full_page_writes on, as in
// production. "serial" is one payment at a time (latency); "parallel" 64 goroutines on a pool of
// 64 connections (throughput). "baseline-3xSELECT1" runs three empty statements in the same run,
// so the ledger's cost can be read as a ratio on a busy machine. "parallel" also reports the
// machine's busy CPU time per payment (cpustat), steadier than throughput on a shared machine.
func BenchmarkClaimSettle(b *testing.B) {
	servers := map[string]func(b *testing.B) *pgtest.Database{
		"fast": func(b *testing.B) *pgtest.Database { return pgtest.NewDatabase(b) },
		"durable": func(b *testing.B) *pgtest.Database {
			srv := pgtest.StartServer(b, pgtest.Options{Settings: map[string]string{
				"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
			}})
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
			// The floor: three trivial statements, the round trips the ledger cannot avoid.
			b.Run("baseline-3xSELECT1", func(b *testing.B) {
				for b.Loop() {
					for range 3 {
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
			})
		})
	}
}

// claimSettle runs the ledger's part of one paid request; intent generation is outside the
// ledger but cheap (random bytes).
func claimSettle(b *testing.B, l *Ledger, in Intent) {
	ctx := context.Background()
	c, err := l.Claim(ctx, in)
	if err != nil || !c.Won {
		b.Fatalf("claim: %+v, %v", c, err)
	}
	if err := l.MarkSettling(ctx, c.Ticket); err != nil {
		b.Fatal(err)
	}
	if err := l.MarkSettled(ctx, c.Ticket, newTxHash(), "200", true); err != nil {
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
