package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Ledger records payments in one table. It is safe for concurrent use.
//
// Every method is one SQL statement (one round trip on the success path); the paid path's
// claims, settling marks and settled outcomes that arrive together share one per kind (see
// batch.go). pgx's default statement cache prepares each statement once per connection, so
// the hot path runs prepared statements without naming them by hand.
type Ledger struct {
	pool  *pgxpool.Pool
	n     names
	sql   statements
	batch batchers
	// claimed counts the claims this ledger won (rows it inserted or claimed again).
	claimed atomic.Int64
}

// querier is what both a pool and a single connection (the resolver's) offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// New returns a Ledger on pool. It does not touch the database; run Migrate first (the
// PaymentRoute controller does, before the gateway is started).
func New(pool *pgxpool.Pool, opts Options) (*Ledger, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	n := newNames(opts)
	l := &Ledger{pool: pool, n: n, sql: buildStatements(n)}
	l.initBatchers()
	return l, nil
}

// Channel is the NOTIFY channel this ledger's trigger uses (the table name).
func (l *Ledger) Channel() string { return l.n.table }

// Get returns the payment with the given id, including its payload.
func (l *Ledger) Get(ctx context.Context, id string) (Payment, error) {
	p, err := scanPayment(l.pool.QueryRow(ctx, l.sql.get, id), true)
	if errors.Is(err, pgx.ErrNoRows) || isInvalidUUID(err) {
		return Payment{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Payment{}, fmt.Errorf("ledger: reading payment %s: %w", id, err)
	}
	return p, nil
}

// isInvalidUUID reports a malformed id, which cannot name any row.
func isInvalidUUID(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "22P02"
}
