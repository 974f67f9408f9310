package fleetbench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Statements reads pg_stat_statements when FLEET_PG_STATEMENTS is set: the database's server
// must load it (shared_preload_libraries; point TEST_DATABASE_URL at such a server). Reset
// clears the counts of every database; Log logs the statements that took the most execution time
// since, with calls and the total. Without FLEET_PG_STATEMENTS both do nothing.
type Statements struct {
	URL string
}

func (s Statements) enabled() bool { return os.Getenv("FLEET_PG_STATEMENTS") != "" }

// Reset clears pg_stat_statements.
func (s Statements) Reset(tb testing.TB) {
	tb.Helper()
	if !s.enabled() {
		return
	}
	s.query(tb, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(context.Background(), `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
			return err
		}
		_, err := conn.Exec(context.Background(), `SELECT pg_stat_statements_reset()`)
		return err
	})
}

// Log logs the top statements by total execution time since Reset, per n resources.
func (s Statements) Log(tb testing.TB, phase string, n int) {
	tb.Helper()
	if !s.enabled() {
		return
	}
	s.query(tb, func(conn *pgx.Conn) error {
		rows, err := conn.Query(context.Background(), `
SELECT calls, total_exec_time, total_plan_time, regexp_replace(left(query, 160), '\s+', ' ', 'g')
FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC`)
		if err != nil {
			return err
		}
		var out strings.Builder
		var calls, totalCalls int64
		var exec, plan, totalMs float64
		var q string
		i := 0
		_, err = pgx.ForEachRow(rows, []any{&calls, &exec, &plan, &q}, func() error {
			totalCalls += calls
			totalMs += exec + plan
			if i++; i <= 25 {
				fmt.Fprintf(&out, "\n  %8d calls %9.1f ms (plan %7.1f) %s", calls, exec+plan, plan, q)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// To stderr: the testing package truncates a benchmark's long logs.
		fmt.Fprintf(os.Stderr, "pg_stat_statements, %s (N=%d): %d statements, %.1f ms executing and planning (%.2f ms per resource); top:%s\n",
			phase, n, totalCalls, totalMs, totalMs/float64(n), out.String())
		return nil
	})
}

func (s Statements) query(tb testing.TB, fn func(*pgx.Conn) error) {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), s.URL)
	if err != nil {
		tb.Fatalf("pg_stat_statements: %v", err)
	}
	defer conn.Close(context.Background())
	if err := fn(conn); err != nil {
		tb.Fatalf("pg_stat_statements: %v", err)
	}
}
