package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Resolver finds the outcome of a settle whose result the gateway does not know, e.g. through
// the facilitator's settlement-status call or the chain (authorizationState(from, nonce), the
// authorization's validBefore). The gateway implements it with its facilitator.
//
// Return Outcome{Status: StatusSettled, TxHash: ...} when money moved, StatusFailed only when it
// provably did not and cannot any more (e.g. the authorization expired unused), and
// StatusPending while unknown. An error counts as unknown.
type Resolver interface {
	Resolve(ctx context.Context, p Payment) (Outcome, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ctx context.Context, p Payment) (Outcome, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, p Payment) (Outcome, error) { return f(ctx, p) }

// ResolverConfig tunes RunResolver. Zero values take the defaults.
type ResolverConfig struct {
	// Route ("namespace/name") is required: a resolver scans, locks, abandons and cleans up only
	// this route's rows, because only this route's Resolver (its facilitator, its credentials, its
	// mock flag) may decide them. Each route of a table runs its own resolver.
	Route string
	// Resolver is required.
	Resolver Resolver
	// Interval between scans while leading, and between attempts to become leader; default 5s.
	Interval time.Duration
	// MinAge is how long a row must have stayed settling or pending before it is resolved; it
	// must exceed the gateway's settle timeout so in-flight settles are left alone. Default 2m.
	// Each unknown result doubles the wait for that row, up to MaxBackoff.
	MinAge time.Duration
	// MaxBackoff caps the per-row wait between attempts; default 1h.
	MaxBackoff time.Duration
	// AbandonAfter releases claims stuck in verifying this long (the gateway died before
	// MarkSettling, so no settle was called); default 10m. It must exceed the longest request.
	AbandonAfter time.Duration
	// ReleasedRetention is how long released rows (given up before settle, no money moved) are
	// kept before the resolver deletes them; default 24h.
	ReleasedRetention time.Duration
	// BatchSize bounds the rows handled per scan; default 50.
	BatchSize int
	// ResolveTimeout bounds one Resolve call; default 30s.
	ResolveTimeout time.Duration
	// OnLeadership is told when this process gains (true) or loses (false) the resolver lock.
	OnLeadership func(leading bool)
	// OnResolved is told each outcome written (for metrics); optional.
	OnResolved func(p Payment, o Outcome)
	// Logger; default discards.
	Logger *slog.Logger
}

func (c ResolverConfig) withDefaults() ResolverConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Interval, 5*time.Second)
	def(&c.MinAge, 2*time.Minute)
	def(&c.MaxBackoff, time.Hour)
	def(&c.AbandonAfter, 10*time.Minute)
	def(&c.ResolveTimeout, 30*time.Second)
	def(&c.ReleasedRetention, 24*time.Hour)
	if c.BatchSize <= 0 {
		c.BatchSize = 50
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// RunResolver resolves the unfinished payments of cfg.Route until ctx ends, on at most one
// replica at a time per (table, route): it works only while it holds a session advisory lock on a
// dedicated connection, and runs its queries on that same connection, so losing the connection
// stops the work and frees the lock for another replica. Resolution is idempotent (guarded
// updates) and fenced by each row's claim attempt, so a brief overlap while a dead connection is
// noticed cannot double-record, and a verdict never moves a row a later attempt owns. It also
// deletes the route's released rows older than ReleasedRetention. It returns ctx's error.
func (l *Ledger) RunResolver(ctx context.Context, cfg ResolverConfig) error {
	if cfg.Resolver == nil {
		return errors.New("ledger: RunResolver needs a Resolver")
	}
	if cfg.Route == "" {
		return errors.New("ledger: RunResolver needs the Route whose payments it resolves")
	}
	cfg = cfg.withDefaults()
	b := newBackoff(cfg.Interval, max(cfg.Interval, time.Minute))
	for {
		led, err := l.leadOnce(ctx, cfg)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := cfg.Interval
		if err != nil {
			wait = b.next()
			cfg.Logger.Warn("ledger resolver: connection lost or failed", "error", err, "retryIn", wait)
		} else if led {
			b.reset()
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// leadOnce tries to take the lock and, if it gets it, resolves until the connection or ctx
// ends. led reports whether it held the lock.
func (l *Ledger) leadOnce(ctx context.Context, cfg ResolverConfig) (led bool, err error) {
	conn, err := dedicatedConn(ctx, l.pool)
	if err != nil {
		return false, err
	}
	defer closeConn(conn) // closing the session releases the lock
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", l.n.routeLockKey("resolver", cfg.Route)).Scan(&got); err != nil {
		return false, fmt.Errorf("ledger: trying the resolver lock: %w", err)
	}
	if !got {
		return false, nil
	}
	if cfg.OnLeadership != nil {
		cfg.OnLeadership(true)
		defer cfg.OnLeadership(false)
	}
	cfg.Logger.Info("ledger resolver: leading", "route", cfg.Route)
	for {
		n, err := l.resolveBatch(ctx, conn, cfg)
		if err != nil {
			return true, err
		}
		if n == cfg.BatchSize {
			continue // more may be due
		}
		if !sleep(ctx, cfg.Interval) {
			return true, nil
		}
		// An idle leader must still notice a dead connection promptly to let another take over.
		if err := conn.Ping(ctx); err != nil {
			return true, fmt.Errorf("ledger: resolver connection: %w", err)
		}
	}
}

// resolveBatch releases the route's abandoned claims, deletes its expired released rows and
// resolves up to BatchSize due rows. It returns the number of rows it looked at; a database
// error ends the leadership.
func (l *Ledger) resolveBatch(ctx context.Context, conn *pgx.Conn, cfg ResolverConfig) (int, error) {
	tag, err := conn.Exec(ctx, l.sql.abandon, cfg.AbandonAfter.Seconds(),
		"abandoned: no settle was attempted within "+cfg.AbandonAfter.String(), cfg.BatchSize, cfg.Route)
	if err != nil {
		return 0, fmt.Errorf("ledger: releasing abandoned claims: %w", err)
	}
	if n := tag.RowsAffected(); n > 0 {
		cfg.Logger.Info("ledger resolver: released abandoned claims", "route", cfg.Route, "count", n)
	}
	if n, err := l.deleteReleased(ctx, conn, cfg.Route, cfg.ReleasedRetention); err != nil {
		return 0, err
	} else if n > 0 {
		cfg.Logger.Info("ledger resolver: deleted expired released rows", "route", cfg.Route, "count", n)
	}

	rows, err := conn.Query(ctx, l.sql.due, cfg.MinAge.Seconds(), cfg.MaxBackoff.Seconds(), cfg.BatchSize, cfg.Route)
	if err != nil {
		return 0, fmt.Errorf("ledger: selecting unresolved payments: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payment, error) { return scanPayment(r, true) })
	if err != nil {
		return 0, fmt.Errorf("ledger: reading unresolved payments: %w", err)
	}
	for _, p := range due {
		if err := l.resolveOne(ctx, conn, cfg, p); err != nil {
			return len(due), err
		}
	}
	return len(due), nil
}

// Retention deletes at most retentionBatch rows per statement (short transactions, bounded WAL
// and locks) and at most retentionBatches statements per scan, so a large backlog is worked off
// over several scans without holding up resolution.
const (
	retentionBatch   = 1000
	retentionBatches = 10
)

// deleteReleased deletes the route's released rows last updated more than older ago, in bounded
// statements. It returns how many it deleted.
func (l *Ledger) deleteReleased(ctx context.Context, q querier, route string, older time.Duration) (int64, error) {
	var total int64
	for range retentionBatches {
		tag, err := q.Exec(ctx, l.sql.retention, route, older.Seconds(), retentionBatch)
		if err != nil {
			return total, fmt.Errorf("ledger: deleting released rows of route %q: %w", route, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < retentionBatch {
			break
		}
	}
	return total, nil
}

// resolveOne asks the Resolver about p and applies its verdict to p's claim attempt only: a
// settled verdict applies whatever attempt owns the row (see MarkSettled), failed and unknown
// only while p.Claims still does.
func (l *Ledger) resolveOne(ctx context.Context, conn *pgx.Conn, cfg ResolverConfig, p Payment) error {
	t := Ticket{ID: p.ID, Seq: p.Claims}
	rctx, cancel := context.WithTimeout(ctx, cfg.ResolveTimeout)
	o, err := cfg.Resolver.Resolve(rctx, p)
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		o = Outcome{Status: StatusPending, Reason: "resolver: " + err.Error()}
	}
	switch o.Status {
	case StatusSettled, StatusFailed:
		o.Served = false // the payer's request was not answered with the content
		err = l.apply(ctx, conn, t, o)
	default:
		o.Status = StatusPending
		_, err = conn.Exec(ctx, l.sql.unknown, p.ID, p.Claims, o.TxHash, o.Reason)
		if err != nil {
			err = fmt.Errorf("ledger: recording an unknown outcome for %s: %w", p.ID, err)
		}
	}
	if permanent(err) {
		// The gateway or the spool recorded an outcome meanwhile, or the resolver's answer
		// contradicts the row (e.g. another tx hash). Leave the outcome unapplied, but count the
		// attempt so the row backs off instead of being picked again at once.
		cfg.Logger.Warn("ledger resolver: outcome not applied", "id", p.ID, "outcome", o.Status, "error", err)
		if _, err := conn.Exec(ctx, l.sql.unknown, p.ID, p.Claims, "", "resolver outcome not applied: "+err.Error()); err != nil {
			return fmt.Errorf("ledger: recording an unapplied outcome for %s: %w", p.ID, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.OnResolved != nil {
		cfg.OnResolved(p, o)
	}
	return nil
}
