package ledger

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	nonceRE  = regexp.MustCompile(`^0x[0-9a-f]{64}$`)
	amountRE = regexp.MustCompile(`^[0-9]+$`)
)

// claimRetries bounds the re-reads when a concurrent claim committed after our snapshot.
const claimRetries = 5

// Claim records the intent to settle a payment with status verifying. It is the cross-replica
// replay lock on (payer, nonce): exactly one concurrent caller wins.
//
// When the (payer, nonce) row exists, Claim wins it again only if it is released or failed
// (the previous attempt provably moved no money; the on-chain nonce still guards against a second
// transfer). Otherwise Won is false and Payment holds the existing row, from which the caller
// answers: settled → idempotent success with its tx hash; verifying, settling or pending → the
// payment is in progress (402 settlement_pending with Retry-After, never a fresh challenge).
//
// At most one payment per (route, payer) is verifying or settling at a time, across replicas (a
// partial unique index): a claim of another payment of a payer busy on the route fails with an
// error wrapping ErrPayerBusy, and nothing is recorded.
func (l *Ledger) Claim(ctx context.Context, in Intent) (ClaimResult, error) {
	return l.claim(ctx, in, claimVerifying)
}

// ClaimSettling is Claim for a caller that needs no write between its claim and settle: the row
// is written settling, as MarkSettling would leave it, and committed synchronously, so the claim
// is also the durable record that money may move. One write instead of two before settle. The
// price: a claim abandoned before settle (the caller died) is no longer released after
// AbandonAfter but resolved like any settling row, through the Resolver, which fails it once the
// authorization provably can no longer move money. Release still gives it up (the caller's word
// that settle was not called). Replays, the in-flight rule and the reclaim of released or failed
// rows are as for Claim.
func (l *Ledger) ClaimSettling(ctx context.Context, in Intent) (ClaimResult, error) {
	return l.claim(ctx, in, claimSettling)
}

// claimMode is the status a claim writes: verifying (Claim) or settling (ClaimSettling).
type claimMode int

const (
	claimVerifying claimMode = iota
	claimSettling
)

// claimStatements returns the single and the batched claim of mode m.
func (l *Ledger) claimStatements(m claimMode) (alone, batch string) {
	if m == claimSettling {
		return l.sql.claimSettling, l.sql.claimSettlingBatch
	}
	return l.sql.claim, l.sql.claimBatch
}

func (l *Ledger) claim(ctx context.Context, in Intent, m claimMode) (ClaimResult, error) {
	in, err := normalizeIntent(in)
	if err != nil {
		return ClaimResult{}, err
	}
	if o, ok := l.claimBatched(ctx, in, m); ok {
		return l.counted(o.res), o.err
	}
	r, err := l.claimAlone(ctx, in, m)
	return l.counted(r), err
}

// counted counts a won claim (see planEachBatchUntil) and returns it.
func (l *Ledger) counted(r ClaimResult) ClaimResult {
	if r.Won {
		l.claimed.Add(1)
	}
	return r
}

// claimAlone is Claim as a single statement; it also returns the row it did not win.
func (l *Ledger) claimAlone(ctx context.Context, in Intent, m claimMode) (ClaimResult, error) {
	stmt, _ := l.claimStatements(m)
	payload := []byte(in.Payload)
	if len(payload) == 0 {
		payload = nil
	}
	for range claimRetries {
		var won bool
		row := l.pool.QueryRow(ctx, stmt, in.Payer, in.Nonce, in.Route, in.Endpoint, in.Resource,
			in.Amount, in.Network, in.Asset, in.PayTo, in.Chain, in.Facilitator, in.Mock, payload)
		p, err := scanPayment(prefixScan{row: row, first: &won}, false)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if l.payerBusy(err) {
			return ClaimResult{}, fmt.Errorf("ledger: claiming payment %s/%s on route %q: %w", in.Payer, in.Nonce, in.Route, ErrPayerBusy)
		}
		if err != nil {
			return ClaimResult{}, fmt.Errorf("ledger: claiming payment %s/%s: %w", in.Payer, in.Nonce, err)
		}
		return ClaimResult{Won: won, Ticket: Ticket{ID: p.ID, Seq: p.Claims}, Payment: p}, nil
	}
	return ClaimResult{}, fmt.Errorf("ledger: claiming payment %s/%s: conflicting row not visible after %d tries",
		in.Payer, in.Nonce, claimRetries)
}

// payerBusy reports a claim refused by the in-flight index (another payment of the payer is
// verifying or settling on the route).
func (l *Ledger) payerBusy(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == l.n.inflightIndex
}

func normalizeIntent(in Intent) (Intent, error) {
	in.Payer = strings.ToLower(strings.TrimSpace(in.Payer))
	in.Nonce = strings.ToLower(strings.TrimSpace(in.Nonce))
	in.PayTo = strings.ToLower(in.PayTo)
	in.Asset = strings.ToLower(in.Asset)
	switch {
	case in.Payer == "":
		return in, fmt.Errorf("%w: payer is empty", ErrInvalidIntent)
	case !nonceRE.MatchString(in.Nonce):
		return in, fmt.Errorf("%w: nonce %q is not 0x-prefixed bytes32 hex", ErrInvalidIntent, in.Nonce)
	case !amountRE.MatchString(in.Amount):
		return in, fmt.Errorf("%w: amount %q is not a decimal integer of atomic units", ErrInvalidIntent, in.Amount)
	case in.Endpoint == "":
		return in, fmt.Errorf("%w: endpoint is empty", ErrInvalidIntent)
	}
	if in.Chain == "" {
		in.Chain = in.Network
	}
	return in, nil
}

// prefixScan scans a leading column into first and the rest into the caller's destinations.
type prefixScan struct {
	row   pgx.Row
	first any
}

func (p prefixScan) Scan(dest ...any) error { return p.row.Scan(append([]any{p.first}, dest...)...) }
