package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The paid path's three writes (claim, settling, settled) are batched: the requests of one kind
// that arrive while a batch of that kind is being written go together into the next, as one
// statement and one commit. On a busy gateway this replaces a round trip, a transaction and a
// commit (with its WAL flush, for settling and settled) per payment by one per batch, which is
// much of PostgreSQL's CPU per payment and of the gateway's database work (see
// docs/benchmarks.md, "Ledger"). Settled outcomes gain the most: the notify trigger makes every
// settled commit hold PostgreSQL's NOTIFY lock until its WAL flush, so one-row commits were
// serialized through fsync and could not share a flush.
//
// There is no timer: whoever finds no batch under way starts one, so a payment alone waits for
// nothing (and runs the single-row statement, cheaper than the batched form for one row). Each
// caller gets exactly the answer a single statement would give it: a request the batch did not
// settle for certain (its row did not match, the batch failed, a duplicate in the same batch) is
// run again alone by its caller, and the single statement gives the exact result or error. Every
// statement is idempotent for its own request, so running it again is safe.

// planEachBatchUntil is how many rows a ledger claims before its batched UPDATEs run as
// prepared statements. Until then each batch runs as pgx's unnamed statement (its description
// cached, so still one round trip), which PostgreSQL plans for that execution, with the batch's
// real length and the table's current size.
//
// A prepared statement switches to a generic plan after five executions, planned for a 10-row
// array and the table's size at that moment, and keeps it until the table's statistics change
// (autovacuum's ANALYZE, the first of which may come a minute or more after the table was
// created). Prepared while the table is small, that plan is a hash join over a sequential scan,
// which then runs on every batch as the table grows: 18 ms per settling batch at 50,000 rows
// under the ledger benchmark (plan_test.go). Planning every batch instead costs about a tenth
// of the ledger's CPU per payment, so it is done only while the table may be small: once this
// ledger alone has claimed this many rows, the table is large enough that the cached plan is the
// primary-key lookup, and the table only grows. The claim batch is always prepared: an INSERT
// reaches existing rows only through its ON CONFLICT unique index, so it has no plan to get wrong.
const planEachBatchUntil = 10_000

// updateMode is how the batched UPDATEs run: planned for each batch while this ledger may still
// be writing to a small table (see planEachBatchUntil), prepared afterwards.
func (l *Ledger) updateMode() pgx.QueryExecMode {
	if l.claimed.Load() < planEachBatchUntil {
		return pgx.QueryExecModeCacheDescribe
	}
	return pgx.QueryExecModeCacheStatement
}

// maxBatch bounds one statement's rows.
const maxBatch = 256

// batchTimeout bounds one batch statement; callers also stop waiting when their own context ends.
const batchTimeout = 10 * time.Second

// batcher collects requests of one kind and writes them in batches with write, one batch at a
// time. write must answer every request of its batch. (Letting two or four batches of a kind be
// written at once was measured under the gateway benchmark: no gain, slightly worse.)
type batcher[R any] struct {
	write func(ctx context.Context, batch []R)

	mu       sync.Mutex
	queue    []R
	flushing bool
}

// submit queues r; write answers it. A caller that finds no batch under way writes the batch
// itself (no hand-off to another goroutine, which costs a payment alone a wake-up or more on a
// busy machine) and leaves what queued meanwhile to a background drain.
func (b *batcher[R]) submit(r R) {
	b.mu.Lock()
	b.queue = append(b.queue, r)
	if b.flushing {
		b.mu.Unlock()
		return
	}
	b.flushing = true
	b.mu.Unlock()
	// r is in this batch: with no batch under way the queue was empty, since a flush only ends
	// once it finds the queue empty.
	if b.writeNext() {
		go b.drain()
	}
}

// drain writes batches until the queue is empty.
func (b *batcher[R]) drain() {
	for b.writeNext() {
	}
}

// writeNext writes the next batch and reports whether more requests are queued; when none
// are, it ends the flush.
func (b *batcher[R]) writeNext() bool {
	b.mu.Lock()
	n := min(len(b.queue), maxBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	b.mu.Unlock()
	if n > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		b.write(ctx, batch)
		cancel()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.flushing = false
		return false
	}
	return true
}

// batchers are a ledger's batched writes: the claims of each mode, settling marks and settled
// outcomes.
type batchers struct {
	claims         batcher[*claimReq]
	settlingClaims batcher[*claimReq]
	settling       batcher[*settlingReq]
	settled        batcher[*settledReq]
}

func (l *Ledger) initBatchers() {
	l.batch.claims.write = func(ctx context.Context, b []*claimReq) { l.writeClaims(ctx, b, claimVerifying) }
	l.batch.settlingClaims.write = func(ctx context.Context, b []*claimReq) { l.writeClaims(ctx, b, claimSettling) }
	l.batch.settling.write = l.writeSettling
	l.batch.settled.write = l.writeSettled
}

// await waits for a batched request's answer. ok is false when the caller must run its request
// alone: the batch did not settle it, or ctx ended (the single statement then fails with ctx's
// error; the batch may still have written the row, which every statement here tolerates).
func await[T any](ctx context.Context, done <-chan batchAnswer[T]) (T, bool) {
	select {
	case a := <-done:
		return a.val, a.ok
	case <-ctx.Done():
		var zero T
		return zero, false
	}
}

// batchAnswer is a batch's answer to one request: ok means val is final.
type batchAnswer[T any] struct {
	val T
	ok  bool
}

func newDone[T any]() chan batchAnswer[T] { return make(chan batchAnswer[T], 1) }

// claimReq is one Claim in a batch; in is normalized.
type claimReq struct {
	in   Intent
	done chan batchAnswer[claimOutcome]
}

// claimOutcome is a batch's final answer to a claim: the result, or an error after which the
// claim may or may not have been committed.
type claimOutcome struct {
	res ClaimResult
	err error
}

// claimBatched claims through the batcher. ok is false when the caller must run the single
// claim statement: the row exists and was not claimable (a replay: the single statement
// returns it), or the batch failed before anything could be committed. Otherwise the outcome
// is the answer.
func (l *Ledger) claimBatched(ctx context.Context, in Intent, m claimMode) (claimOutcome, bool) {
	r := &claimReq{in: in, done: newDone[claimOutcome]()}
	if m == claimSettling {
		l.batch.settlingClaims.submit(r)
	} else {
		l.batch.claims.submit(r)
	}
	return await(ctx, r.done)
}

// writeClaims inserts (or reclaims) a batch of claims of mode m in one statement, committed as
// that mode's claims are. Every returned row is a won claim; the others are answered "run alone".
func (l *Ledger) writeClaims(ctx context.Context, batch []*claimReq, m claimMode) {
	if len(batch) == 1 {
		// Alone: the single-row statement is cheaper. The batcher stays busy meanwhile, so
		// that what arrives queues for the next batch.
		res, err := l.claimAlone(ctx, batch[0].in, m)
		batch[0].done <- batchAnswer[claimOutcome]{val: claimOutcome{res: res, err: err}, ok: true}
		return
	}
	n := len(batch)
	cols := make([][]string, 11)
	for i := range cols {
		cols[i] = make([]string, 0, n)
	}
	mocks := make([]bool, 0, n)
	payloads := make([]*string, 0, n)
	inBatch := make(map[string]*claimReq, n)
	busy := make(map[[2]string]bool, n) // (route, payer) of the intents in the statement
	for _, r := range batch {
		key := r.in.Payer + "/" + r.in.Nonce
		if inBatch[key] != nil {
			continue // one statement may not touch a row twice; the duplicate runs alone
		}
		// Two payments of one payer on one route would fail the whole statement on the in-flight
		// index: the second runs alone and gets its own answer (ErrPayerBusy, or won if the
		// first did not).
		rp := [2]string{r.in.Route, r.in.Payer}
		if busy[rp] {
			continue
		}
		busy[rp] = true
		inBatch[key] = r
		in := r.in
		for i, v := range []string{in.Payer, in.Nonce, in.Route, in.Endpoint, in.Resource, in.Amount,
			in.Network, in.Asset, in.PayTo, in.Chain, in.Facilitator} {
			cols[i] = append(cols[i], v)
		}
		mocks = append(mocks, in.Mock)
		var payload *string
		if len(in.Payload) > 0 {
			s := string(in.Payload)
			payload = &s
		}
		payloads = append(payloads, payload)
	}
	won := make(map[*claimReq]Payment, n)
	args := make([]any, 0, 13)
	for _, c := range cols {
		args = append(args, c)
	}
	_, stmt := l.claimStatements(m)
	rows, err := l.pool.Query(ctx, stmt, append(args, mocks, payloads)...)
	if err == nil {
		var written []Payment
		written, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Payment, error) { return scanPayment(row, false) })
		for _, p := range written {
			if r := inBatch[p.Payer+"/"+p.Nonce]; r != nil {
				won[r] = p
			}
		}
	}
	// A claim that ran alone after a batch committed it would find its own row and lose it, so
	// only errors that prove nothing was committed (the server refused the statement, or it was
	// never sent) send the batch's requests to run alone; any other error is their answer. A
	// statement refused by the in-flight index (a payment of the same payer committed by another
	// replica meanwhile) is such a refusal: each claim then gets its exact answer alone.
	unknown := err != nil && !isServerError(err) && !pgconn.SafeToRetry(err)
	for _, r := range batch {
		p, ok := won[r]
		switch {
		case unknown:
			err := fmt.Errorf("ledger: claiming payment %s/%s: %w", r.in.Payer, r.in.Nonce, err)
			r.done <- batchAnswer[claimOutcome]{val: claimOutcome{err: err}, ok: true}
		default:
			// A duplicate was not in the statement.
			won := ClaimResult{Won: true, Ticket: Ticket{ID: p.ID, Seq: p.Claims}, Payment: p}
			r.done <- batchAnswer[claimOutcome]{val: claimOutcome{res: won}, ok: err == nil && ok && inBatch[r.in.Payer+"/"+r.in.Nonce] == r}
		}
	}
}

// isServerError reports an error the server returned for the statement: it was rolled back.
func isServerError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr)
}

// settlingReq is one MarkSettling in a batch.
type settlingReq struct {
	t    Ticket
	done chan batchAnswer[error]
}

// markSettlingBatched marks a claim settling through the batcher. ok is false when the caller
// must run the single statement (which gives the exact error, or succeeds idempotently);
// otherwise err is the answer.
func (l *Ledger) markSettlingBatched(ctx context.Context, t Ticket) (ok bool, err error) {
	r := &settlingReq{t: t, done: newDone[error]()}
	l.batch.settling.submit(r)
	err, ok = await(ctx, r.done)
	return ok, err
}

// writeSettling marks a batch of claims settling in one synchronously committed statement:
// when a caller is answered ok, its row is durably settling and it may call settle.
func (l *Ledger) writeSettling(ctx context.Context, batch []*settlingReq) {
	if len(batch) == 1 {
		err := l.markSettlingAlone(ctx, batch[0].t) // alone: see writeClaims
		batch[0].done <- batchAnswer[error]{val: err, ok: true}
		return
	}
	ids := make([]string, 0, len(batch))
	seqs := make([]int32, 0, len(batch))
	first := make(map[string]*settlingReq, len(batch))
	for _, r := range batch {
		if first[r.t.ID] != nil {
			continue
		}
		first[r.t.ID] = r
		ids, seqs = append(ids, r.t.ID), append(seqs, int32(r.t.Seq))
	}
	written, err := returnedByID[int32](l.pool.Query(ctx, l.sql.settlingBatch, l.updateMode(), ids, seqs)) // claims of each row now settling
	for _, r := range batch {
		seq, ok := written[r.t.ID]
		r.done <- batchAnswer[error]{ok: err == nil && ok && int(seq) == r.t.Seq && first[r.t.ID] == r}
	}
}

// settledReq is one settled outcome in a batch.
type settledReq struct {
	t               Ticket
	txHash, summary string
	served          bool
	done            chan batchAnswer[error]
}

// markSettledBatched records a settlement through the batcher. Its result is that of
// markSettled on the pool.
func (l *Ledger) markSettledBatched(ctx context.Context, t Ticket, txHash, summary string, served bool) error {
	r := &settledReq{t: t, txHash: txHash, summary: summary, served: served, done: newDone[error]()}
	l.batch.settled.submit(r)
	if err, ok := await(ctx, r.done); ok {
		return err
	}
	// Run alone; after ctx ended the batch may still commit the row, and a retry with the same
	// tx hash is idempotent.
	return l.markSettled(ctx, l.pool, t, txHash, summary, served)
}

// writeSettled records a batch of settlements in one synchronously committed statement.
func (l *Ledger) writeSettled(ctx context.Context, batch []*settledReq) {
	if len(batch) == 1 {
		r := batch[0] // alone: see writeClaims
		r.done <- batchAnswer[error]{val: l.markSettled(ctx, l.pool, r.t, r.txHash, r.summary, r.served), ok: true}
		return
	}
	ids := make([]string, 0, len(batch))
	txs := make([]string, 0, len(batch))
	sums := make([]string, 0, len(batch))
	served := make([]bool, 0, len(batch))
	first := make(map[string]*settledReq, len(batch))
	for _, r := range batch {
		if first[r.t.ID] != nil { // the statement would update the row once; the caller writes it alone
			continue
		}
		first[r.t.ID] = r
		ids, txs, sums, served = append(ids, r.t.ID), append(txs, r.txHash), append(sums, r.summary), append(served, r.served)
	}
	written, err := returnedByID[string](l.pool.Query(ctx, l.sql.settledBatch, l.updateMode(), ids, txs, sums, served)) // tx hash now in each row
	for _, r := range batch {
		// The tx hash is compared too, so that a request is acknowledged only for its own write.
		tx, ok := written[r.t.ID]
		r.done <- batchAnswer[error]{ok: err == nil && ok && tx == r.txHash && first[r.t.ID] == r}
	}
}

// returnedByID reads the (id, value) rows a batched update returns into a map by id.
func returnedByID[V any](rows pgx.Rows, err error) (map[string]V, error) {
	if err != nil {
		return nil, err
	}
	written := map[string]V{}
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
		var id string
		var v V
		if err := row.Scan(&id, &v); err != nil {
			return struct{}{}, err
		}
		written[id] = v
		return struct{}{}, nil
	})
	return written, err
}
