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
	return l.change(ctx, l.pool, StatusSettling, t.ID, l.sql.settling, t.ID, t.Seq)
}

// MarkSettled records a settlement. It is idempotent for the same tx hash, so the gateway, the
// spool and the resolver may all report it. summary fills the guide's response_summary.
func (l *Ledger) MarkSettled(ctx context.Context, id, txHash, summary string) error {
	if txHash == "" {
		return l.markSettled(ctx, l.pool, id, txHash, summary) // the error
	}
	return l.markSettledBatched(ctx, id, txHash, summary)
}

func (l *Ledger) markSettled(ctx context.Context, q querier, id, txHash, summary string) error {
	if txHash == "" {
		return fmt.Errorf("ledger: settling payment %s: empty tx hash", id)
	}
	return l.change(ctx, q, StatusSettled, id, l.sql.settled, id, txHash, summary)
}

// MarkFailed records that settle definitively moved no money (the facilitator or the chain said
// so). Never use it for an unknown outcome: that is MarkPending. A failed (payer, nonce) may be
// claimed again. txHash, if known (e.g. a reverted transaction), is kept.
func (l *Ledger) MarkFailed(ctx context.Context, id, txHash, reason string) error {
	return l.change(ctx, l.pool, StatusFailed, id, l.sql.failed, id, txHash, reason)
}

// MarkPending records that the outcome of settle is unknown (timeout, 5xx, lost connection).
// The resolver will settle or fail the row later; the payer must not be asked to pay again.
func (l *Ledger) MarkPending(ctx context.Context, id, txHash, reason string) error {
	return l.change(ctx, l.pool, StatusPending, id, l.sql.pending, id, txHash, reason)
}

// Release gives a claim up before settle (verify or upstream failed): nothing was charged and
// the payer may reuse the same signed payment. Only valid from verifying.
func (l *Ledger) Release(ctx context.Context, t Ticket, reason string) error {
	return l.change(ctx, l.pool, StatusReleased, t.ID, l.sql.release, t.ID, t.Seq, reason)
}

// Apply records an outcome (settled, failed or pending) for a payment in settling or pending.
// It is what the spool replays and what the resolver writes.
func (l *Ledger) Apply(ctx context.Context, id string, o Outcome) error {
	return l.apply(ctx, l.pool, id, o)
}

func (l *Ledger) apply(ctx context.Context, q querier, id string, o Outcome) error {
	switch o.Status {
	case StatusSettled:
		if q == querier(l.pool) && o.TxHash != "" {
			return l.markSettledBatched(ctx, id, o.TxHash, o.ResponseSummary)
		}
		return l.markSettled(ctx, q, id, o.TxHash, o.ResponseSummary)
	case StatusFailed:
		return l.change(ctx, q, StatusFailed, id, l.sql.failed, id, o.TxHash, o.Reason)
	case StatusPending:
		return l.change(ctx, q, StatusPending, id, l.sql.pending, id, o.TxHash, o.Reason)
	default:
		return fmt.Errorf("ledger: outcome status %q for payment %s is not settled, failed or pending", o.Status, id)
	}
}

// change runs a guarded UPDATE; when it matches no row it reads the row to say why.
func (l *Ledger) change(ctx context.Context, q querier, to Status, id, sql string, args ...any) error {
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
	var actual, txHash string
	err = q.QueryRow(ctx, l.sql.state, id).Scan(&actual, &txHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("ledger: marking payment %s %s: reading its state: %w", id, to, err)
	}
	return &TransitionError{ID: id, To: to, Actual: Status(actual), ActualTxHash: txHash}
}
