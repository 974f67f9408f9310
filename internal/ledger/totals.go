package ledger

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"
)

// Tally sums one class of rows (real or mock) of a route.
type Tally struct {
	// SettledCount is the number of settled payments.
	SettledCount int64
	// SettledAmount is their sum in atomic units; never nil.
	SettledAmount *big.Int
	// LastTxHash and LastSettledAt describe the most recent settlement (empty/zero if none).
	LastTxHash    string
	LastSettledAt time.Time
	// PendingCount is the number of payments whose settle outcome is unknown.
	PendingCount int64
	// SettlingCount is the number of settle calls in flight (or interrupted, until resolved).
	SettlingCount int64
	// StuckCount is the number of pending or settling payments created more than an hour ago:
	// outcomes the resolver has not been able to find.
	StuckCount int64
}

// Totals are a route's tallies; mock rows are kept apart so they never inflate real revenue.
type Totals struct {
	Real Tally
	Mock Tally
}

func newTotals() Totals {
	return Totals{Real: Tally{SettledAmount: new(big.Int)}, Mock: Tally{SettledAmount: new(big.Int)}}
}

// Totals returns the settled and unfinished tallies of one route ("namespace/name").
func (l *Ledger) Totals(ctx context.Context, route string) (Totals, error) {
	all, err := l.totals(ctx, l.sql.totalsRoute, route)
	if err != nil {
		return Totals{}, fmt.Errorf("ledger: totals of route %q: %w", route, err)
	}
	if t, ok := all[route]; ok {
		return t, nil
	}
	return newTotals(), nil
}

// AllTotals returns the tallies of every route in the table in one query, for a controller that
// serves all routes of a database from one listener.
func (l *Ledger) AllTotals(ctx context.Context) (map[string]Totals, error) {
	all, err := l.totals(ctx, l.sql.totalsAll)
	if err != nil {
		return nil, fmt.Errorf("ledger: totals of all routes: %w", err)
	}
	return all, nil
}

func (l *Ledger) totals(ctx context.Context, sql string, args ...any) (map[string]Totals, error) {
	// Other writers' changes first (a no-op on the usual empty delta table), so that the summary
	// is exact when it is read.
	if _, err := l.pool.Exec(ctx, l.sql.foldTotals); err != nil {
		return nil, fmt.Errorf("folding the totals: %w", err)
	}
	rows, err := l.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Totals{}
	for rows.Next() {
		var (
			route, amount string
			mock          bool
			tl            Tally
			last          *time.Time
		)
		if err := rows.Scan(&route, &mock, &tl.SettledCount, &amount, &tl.PendingCount, &tl.SettlingCount,
			&tl.LastTxHash, &last, &tl.StuckCount); err != nil {
			return nil, err
		}
		sum, ok := new(big.Int).SetString(amount, 10)
		if !ok {
			return nil, fmt.Errorf("settled amount %q of route %q is not an integer", amount, route)
		}
		tl.SettledAmount = sum
		if last != nil {
			tl.LastSettledAt = *last
		}
		t, ok := out[route]
		if !ok {
			t = newTotals()
		}
		if mock {
			t.Mock = tl
		} else {
			t.Real = tl
		}
		out[route] = t
	}
	return out, rows.Err()
}

// Unfinished counts a route's payments whose settle is in flight or whose outcome is unknown
// (settling and pending, real and mock), from the rows through the route index: what the gateway's
// pending gauge shows. It reads no summary and writes nothing.
func (l *Ledger) Unfinished(ctx context.Context, route string) (int64, error) {
	var n int64
	if err := l.pool.QueryRow(ctx, l.sql.unfinished, route).Scan(&n); err != nil {
		return 0, fmt.Errorf("ledger: unfinished payments of route %q: %w", route, err)
	}
	return n, nil
}

// ResyncTotals recomputes one route's settled totals from its rows. The summary follows every
// write through the ledger's triggers, so this is needed only after writes that bypassed them:
// a data-only restore with --disable-triggers, session_replication_role = replica, a summary
// edited by hand. It blocks the table's writers (SHARE ROW EXCLUSIVE) for one scan of the
// route's settled rows, so the result is exact; run it when a pause of that length is
// acceptable.
func (l *Ledger) ResyncTotals(ctx context.Context, route string) error {
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE "+l.n.qTable+" IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("locking the ledger: %w", err)
		}
		if _, err := tx.Exec(ctx, l.sql.foldTotals); err != nil {
			return fmt.Errorf("folding the totals: %w", err)
		}
		if _, err := tx.Exec(ctx, l.sql.resyncClear, route); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, l.sql.resyncTotals, route)
		return err
	})
	if err != nil {
		return fmt.Errorf("ledger: resyncing the totals of route %q: %w", route, err)
	}
	return nil
}
