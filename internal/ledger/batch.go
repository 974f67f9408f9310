package ledger

import (
	"context"
	"sync"
	"time"
)

// Settled outcomes are written in batches. The notify trigger makes every settled commit take
// PostgreSQL's NOTIFY lock, which is held until the commit's WAL flush: settled commits are
// serialized through fsync, one per payment, and cannot share a flush (group commit) the way
// other commits do. Measured on the durable benchmark server, the trigger cut the paid path's
// ledger throughput about 3× (see docs/benchmarks.md, "Ledger"). Writing the settled outcomes
// that arrive together in one statement pays the lock and the flush once per batch; every row
// still gets its own notification, and each caller returns only after its row is committed
// (synchronously, as before).
//
// There is no timer: whoever finds no flush under way starts one, and what arrives during a
// flush goes into the next. A single payment waits for nothing.

// maxSettledBatch bounds one statement's rows.
const maxSettledBatch = 256

// batchTimeout bounds one batch statement; callers also stop waiting when their own context ends.
const batchTimeout = 10 * time.Second

type settledReq struct {
	id, txHash, summary string
	// done receives true when the batch recorded the row, false when the caller must write it
	// alone (the batch failed or did not match the row, e.g. a wrong state or a duplicate id):
	// the single statement then gives the exact error.
	done chan bool
}

type settledBatcher struct {
	mu       sync.Mutex
	queue    []*settledReq
	flushing bool
}

// markSettledBatched records a settlement through the batcher. Its result is that of
// markSettled on the pool.
func (l *Ledger) markSettledBatched(ctx context.Context, id, txHash, summary string) error {
	r := &settledReq{id: id, txHash: txHash, summary: summary, done: make(chan bool, 1)}
	b := &l.settled
	b.mu.Lock()
	b.queue = append(b.queue, r)
	if !b.flushing {
		b.flushing = true
		go l.flushSettled()
	}
	b.mu.Unlock()
	select {
	case ok := <-r.done:
		if ok {
			return nil
		}
		return l.markSettled(ctx, l.pool, id, txHash, summary)
	case <-ctx.Done():
		// The batch may still commit the row; a retry with the same tx hash is idempotent.
		return l.markSettled(ctx, l.pool, id, txHash, summary)
	}
}

// flushSettled writes batches until the queue is empty.
func (l *Ledger) flushSettled() {
	b := &l.settled
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxSettledBatch)
		if n == 0 {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		if len(b.queue) == 0 {
			b.queue = nil
		}
		b.mu.Unlock()
		l.writeSettled(batch)
	}
}

// writeSettled records batch in one statement and tells each caller whether its row was written.
func (l *Ledger) writeSettled(batch []*settledReq) {
	ids := make([]string, 0, len(batch))
	txs := make([]string, 0, len(batch))
	sums := make([]string, 0, len(batch))
	seen := make(map[string]bool, len(batch))
	for _, r := range batch {
		if seen[r.id] { // the statement would update the row once; the caller writes it alone
			continue
		}
		seen[r.id] = true
		ids, txs, sums = append(ids, r.id), append(txs, r.txHash), append(sums, r.summary)
	}
	written := make(map[string]string, len(ids)) // id → tx hash now in the row
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	rows, err := l.pool.Query(ctx, l.sql.settledBatch, ids, txs, sums)
	if err == nil {
		for rows.Next() {
			var id, tx string
			if rows.Scan(&id, &tx) == nil {
				written[id] = tx
			}
		}
		rows.Close()
		err = rows.Err()
	}
	first := map[string]bool{}
	for _, r := range batch {
		// Only the first request for an id was in the statement; on error nothing was written.
		// The tx hash is compared too, so that a request is acknowledged only for its own write.
		tx, ok := written[r.id]
		r.done <- err == nil && ok && tx == r.txHash && !first[r.id]
		first[r.id] = true
	}
}
