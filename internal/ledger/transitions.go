package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// MarkSettling moves a won claim from verifying to settling. The gateway calls it right before
// the facilitator's settle and must not settle when it fails (answer 503: no money moves).
// It fails with ErrInvalidTransition when the claim was released or reclaimed meanwhile.
func (l *Ledger) MarkSettling(ctx context.Context, t Ticket) error {
	if ok, err := l.markSettlingBatched(ctx, t); ok {
		return err
	}
	return l.markSettlingAlone(ctx, t)
}

func (l *Ledger) markSettlingAlone(ctx context.Context, t Ticket) error {
	return l.change(ctx, l.pool, StatusSettling, t, l.sql.settling, t.ID, t.Seq)
}

// MarkSettled records a settlement. The tx hash is evidence about the authorization itself, so
// it is applied whichever claim attempt owns the row (t's Seq is not checked) and from any state
// but settled: a later attempt can then never settle the same nonce again. It is idempotent for
// the same tx hash, so the gateway, the spool and the resolver may all report it, and refused
// (ErrInvalidTransition) for another hash. summary fills the guide's response_summary. served is
// true when the payer got the content (the gateway's own settle); a resolver's is false.
func (l *Ledger) MarkSettled(ctx context.Context, t Ticket, txHash, summary string, served bool) error {
	if txHash == "" {
		return l.markSettled(ctx, l.pool, t, txHash, summary, served) // the error
	}
	return l.markSettledBatched(ctx, t, txHash, summary, served)
}

func (l *Ledger) markSettled(ctx context.Context, q querier, t Ticket, txHash, summary string, served bool) error {
	if txHash == "" {
		return fmt.Errorf("ledger: settling payment %s: empty tx hash", t.ID)
	}
	// Unfenced: the ticket's Seq is not compared (see MarkSettled).
	return l.change(ctx, q, StatusSettled, Ticket{ID: t.ID}, l.sql.settled, t.ID, txHash, summary, served)
}

// MarkFailed records that settle definitively moved no money (the facilitator or the chain said
// so). Never use it for an unknown outcome: that is MarkPending. A failed (payer, nonce) may be
// claimed again. txHash, if known (e.g. a reverted transaction), is kept. Only the claim attempt
// t moves: when a later attempt owns the row it fails with ErrInvalidTransition (Stale).
func (l *Ledger) MarkFailed(ctx context.Context, t Ticket, txHash, reason string) error {
	return l.change(ctx, l.pool, StatusFailed, t, l.sql.failed, t.ID, t.Seq, txHash, reason)
}

// MarkPending records that the outcome of settle is unknown (timeout, 5xx, lost connection).
// The resolver will settle or fail the row later; the payer must not be asked to pay again.
// Fenced by t like MarkFailed.
func (l *Ledger) MarkPending(ctx context.Context, t Ticket, txHash, reason string) error {
	return l.change(ctx, l.pool, StatusPending, t, l.sql.pending, t.ID, t.Seq, txHash, reason)
}

// Release gives a claim up before settle (verify or upstream failed): nothing was charged and
// the payer may reuse the same signed payment. Only valid for claim attempt t, from verifying
// or settling: the caller's word that it did not call settle (a claim of ClaimSettling is
// settling from the start), never after an outcome.
func (l *Ledger) Release(ctx context.Context, t Ticket, reason string) error {
	return l.change(ctx, l.pool, StatusReleased, t, l.sql.release, t.ID, t.Seq, reason)
}

// Apply records an outcome (settled, failed or pending) of claim attempt t. It is what the spool
// replays and what the resolver writes. Failed and pending are fenced by t; settled is not (see
// MarkSettled).
func (l *Ledger) Apply(ctx context.Context, t Ticket, o Outcome) error {
	return l.apply(ctx, l.pool, t, o)
}

func (l *Ledger) apply(ctx context.Context, q querier, t Ticket, o Outcome) error {
	switch o.Status {
	case StatusSettled:
		if q == querier(l.pool) && o.TxHash != "" {
			return l.markSettledBatched(ctx, t, o.TxHash, o.ResponseSummary, o.Served)
		}
		return l.markSettled(ctx, q, t, o.TxHash, o.ResponseSummary, o.Served)
	case StatusFailed:
		return l.change(ctx, q, StatusFailed, t, l.sql.failed, t.ID, t.Seq, o.TxHash, o.Reason)
	case StatusPending:
		return l.change(ctx, q, StatusPending, t, l.sql.pending, t.ID, t.Seq, o.TxHash, o.Reason)
	default:
		return fmt.Errorf("ledger: outcome status %q for payment %s is not settled, failed or pending", o.Status, t.ID)
	}
}

// MarkServed records that the payer is about to get the content of a settled payment it has not
// got yet (the resolver settled it, so the payer's request was answered 402). Exactly one of any
// number of concurrent callers, on any replica, wins; the others (and every later caller) get
// won=false and answer the replay as a used payment. A row that is not settled is
// ErrInvalidTransition, an unknown id ErrNotFound.
func (l *Ledger) MarkServed(ctx context.Context, id string) (won bool, err error) {
	tag, err := l.pool.Exec(ctx, l.sql.served, id)
	if err == nil && tag.RowsAffected() == 1 {
		return true, nil
	}
	if err != nil && !isInvalidUUID(err) {
		return false, fmt.Errorf("ledger: marking payment %s served: %w", id, err)
	}
	p, err := l.readState(ctx, l.pool, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, err
	case err != nil:
		return false, fmt.Errorf("ledger: marking payment %s served: %w", id, err)
	case p.Status != StatusSettled:
		return false, fmt.Errorf("%w: payment %s is %s, not settled: it cannot be served", ErrInvalidTransition, id, p.Status)
	}
	return false, nil // already served
}

// UnmarkServed undoes the caller's own won MarkServed after the upstream failed to deliver, so a
// later replay may get the content. Best effort: the payer is then merely refused again.
func (l *Ledger) UnmarkServed(ctx context.Context, id string) error {
	if _, err := l.pool.Exec(ctx, l.sql.unserve, id); err != nil {
		return fmt.Errorf("ledger: unmarking payment %s served: %w", id, err)
	}
	return nil
}

// change runs a guarded UPDATE for ticket t; when it matches no row it reads the row to say why.
// A Seq of 0 in t means the statement is not fenced (settled outcomes, old spool records).
func (l *Ledger) change(ctx context.Context, q querier, to Status, t Ticket, sql string, args ...any) error {
	id := t.ID
	tag, err := q.Exec(ctx, sql, args...)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return fmt.Errorf("%w: payment %s: %s", ErrTxHashInUse, id, pgErr.Detail)
		}
		if isInvalidUUID(err) {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		return fmt.Errorf("ledger: marking payment %s %s: %w", id, to, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	p, err := l.readState(ctx, q, id)
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("ledger: marking payment %s %s: %w", id, to, err)
	}
	return &TransitionError{ID: id, To: to, Actual: p.Status, ActualTxHash: p.TxHash,
		Stale: t.Seq != 0 && t.Seq != p.Claims}
}

// readState reads a row's status, tx hash and claims; a missing row is ErrNotFound.
func (l *Ledger) readState(ctx context.Context, q querier, id string) (Payment, error) {
	var p Payment
	var status string
	err := q.QueryRow(ctx, l.sql.state, id).Scan(&status, &p.TxHash, &p.Claims)
	if errors.Is(err, pgx.ErrNoRows) || isInvalidUUID(err) {
		return p, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return p, fmt.Errorf("reading its state: %w", err)
	}
	p.Status = Status(status)
	return p, nil
}
