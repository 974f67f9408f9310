package ledger

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// replica is a second gateway replica: its own pool and Ledger on the same table.
func replica(t *testing.T, db *pgtest.Database, conns int32) *Ledger {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// samePayer returns n payments of one payer on route, each with its own nonce.
func samePayer(route string, n int) []Intent {
	in := make([]Intent, n)
	payer := newPayer()
	for i := range in {
		in[i] = intent(route, "1000")
		in[i].Payer = payer
	}
	return in
}

// Attack: with funds for one payment, a payer sends many payments with distinct nonces at once,
// to two replicas; before the in-flight limit each one was claimed (and bought an upstream
// call). Exactly one may be in flight per (route, payer); the others get ErrPayerBusy and
// record nothing.
func TestOnePaymentInFlightPerPayerAndRouteAcrossReplicas(t *testing.T) {
	_, pool, db := newLedger(t)
	ctx := testCtx(t)
	a, b := replica(t, db, 20), replica(t, db, 20)
	ins := samePayer("ns/r", 24)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		won     []ClaimResult
		busy    int
		unknown []error
	)
	for i, in := range ins {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			c, err := l.Claim(ctx, in)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrPayerBusy):
				busy++
			case err != nil:
				unknown = append(unknown, err)
			case c.Won:
				won = append(won, c)
			default:
				unknown = append(unknown, errors.New("a fresh payment lost its claim"))
			}
		})
	}
	wg.Wait()
	if len(unknown) > 0 || len(won) != 1 || busy != len(ins)-1 {
		t.Fatalf("won %d, busy %d, other answers %v; want 1 winner and %d ErrPayerBusy", len(won), busy, unknown, len(ins)-1)
	}
	var rows int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM x402_payments WHERE payer_address = $1", ins[0].Payer).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("rows of the payer: %d, %v; want only the winner's", rows, err)
	}
	winner := won[0]

	// A replay of the payment in flight is answered from its row, not refused as busy.
	var winnerIn Intent
	for _, in := range ins {
		if in.Nonce == winner.Payment.Nonce {
			winnerIn = in
		}
	}
	if c, err := b.Claim(ctx, winnerIn); err != nil || c.Won || c.Payment.Status != StatusVerifying {
		t.Fatalf("replay of the payment in flight: %+v, %v", c, err)
	}
	// Other routes are not limited by this one.
	other := ins[1]
	other.Route, other.Nonce = "ns/other", newNonce()
	claimWon(t, b, other)

	// Still busy while settling; free once the outcome is known.
	if err := a.MarkSettling(ctx, winner.Ticket); err != nil {
		t.Fatal(err)
	}
	// The rest of the test uses payments that were refused, never the winner's.
	var rest []Intent
	for _, in := range ins {
		if in.Nonce != winnerIn.Nonce {
			rest = append(rest, in)
		}
	}
	if _, err := b.Claim(ctx, rest[0]); !errors.Is(err, ErrPayerBusy) {
		t.Fatalf("claim while another payment settles: %v, want ErrPayerBusy", err)
	}
	if err := a.MarkPending(ctx, winner.Ticket, "", "timeout"); err != nil {
		t.Fatal(err)
	}
	next := claimWon(t, b, rest[0])
	// A failed payment of the payer claimed again while another is in flight is busy too.
	if err := b.Release(ctx, next.Ticket, "verify failed"); err != nil {
		t.Fatal(err)
	}
	third := claimWon(t, a, rest[1])
	if _, err := b.Claim(ctx, rest[0]); !errors.Is(err, ErrPayerBusy) {
		t.Fatalf("reclaim of a released payment while another is in flight: %v, want ErrPayerBusy", err)
	}
	mustStatus(t, a, next.Ticket.ID, StatusReleased)
	if err := a.Release(ctx, third.Ticket, "upstream 500"); err != nil {
		t.Fatal(err)
	}
	if c := claimWon(t, b, rest[0]); c.Ticket.Seq != 2 {
		t.Fatalf("reclaim once the payer is free: %+v", c)
	}
}

// Claims of a busy payer in one batch statement must not fail the batch: every intent gets the
// answer it would get alone.
func TestBatchedClaimsOfABusyPayerAnswerEachCaller(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	good := make([]Intent, 12)
	for i := range good {
		good[i] = intent("ns/r", "1000")
	}
	crowd := samePayer("ns/r", 3)  // three payments of one payer in the same batch
	busyIn := samePayer("ns/r", 2) // a payer with a payment already in flight
	inFlight := claimWon(t, l, busyIn[0])
	type answer struct {
		res ClaimResult
		err error
	}
	answers := make(map[string]answer) // by nonce
	var mu sync.Mutex
	claim := func(in Intent) func() {
		return func() {
			res, err := l.Claim(ctx, in)
			mu.Lock()
			answers[in.Nonce] = answer{res, err}
			mu.Unlock()
		}
	}
	var reqs []func()
	for _, in := range append(append(good, crowd...), busyIn...) {
		reqs = append(reqs, claim(in))
	}
	queueAsOneBatch(t, &l.batch.claims, reqs)()

	for _, in := range good {
		if a := answers[in.Nonce]; a.err != nil || !a.res.Won {
			t.Errorf("a payer who is not busy: %+v, %v", a.res, a.err)
		}
	}
	won := 0
	for _, in := range crowd {
		switch a := answers[in.Nonce]; {
		case a.err == nil && a.res.Won:
			won++
		case !errors.Is(a.err, ErrPayerBusy):
			t.Errorf("one of three payments of a payer: %+v, %v; want won or ErrPayerBusy", a.res, a.err)
		}
	}
	if won != 1 {
		t.Errorf("%d of three payments of one payer won, want 1", won)
	}
	if a := answers[busyIn[0].Nonce]; a.err != nil || a.res.Won || a.res.Payment.ID != inFlight.Ticket.ID {
		t.Errorf("replay of the payment in flight: %+v, %v", a.res, a.err)
	}
	if a := answers[busyIn[1].Nonce]; !errors.Is(a.err, ErrPayerBusy) {
		t.Errorf("another payment of a payer in flight: %+v, %v; want ErrPayerBusy", a.res, a.err)
	}
}

// A payment of the same payer committed by another replica after the batch statement's snapshot
// fails the whole statement on the in-flight index; the batch must fall back so that every other
// intent in it still wins and the busy one gets ErrPayerBusy.
func TestClaimBatchRefusedByTheInflightIndexFallsBack(t *testing.T) {
	l, pool, _ := newLedger(t)
	ctx := testCtx(t)
	busy := intent("ns/r", "1000")
	other := busy
	other.Nonce = newNonce()

	// The other replica's claim, not yet committed.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, `INSERT INTO x402_payments (payer_address, nonce, route, endpoint, amount)
		VALUES ($1, $2, $3, '/weather', '1000')`, other.Payer, other.Nonce, other.Route); err != nil {
		t.Fatal(err)
	}

	good := make([]Intent, 10)
	errs := make([]error, len(good))
	var busyErr error
	var reqs []func()
	for i := range good {
		good[i] = intent("ns/r", "1000")
		reqs = append(reqs, func() {
			c, err := l.Claim(ctx, good[i])
			if err == nil && !c.Won {
				err = errors.New("fresh claim not won")
			}
			errs[i] = err
		})
	}
	reqs = append(reqs, func() { _, busyErr = l.Claim(ctx, busy) })
	wait := queueAsOneBatch(t, &l.batch.claims, reqs)
	// The batch waits on the uncommitted row's index entry; commit it then.
	waitFor(t, "the batch to wait for the other replica's claim", func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'`).Scan(&n)
		return err == nil && n > 0
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("claim %d of a batch the in-flight index refused: %v", i, err)
		}
	}
	if !errors.Is(busyErr, ErrPayerBusy) {
		t.Errorf("the busy payer's claim: %v, want ErrPayerBusy", busyErr)
	}
}

// The claim batch's in-flight probe must read the small in-flight index, not scan the table.
func TestClaimBatchProbesTheInflightIndex(t *testing.T) {
	l, pool, _ := newLedger(t)
	ctx := testCtx(t)
	if _, err := pool.Exec(ctx, `INSERT INTO x402_payments (payer_address, nonce, endpoint, amount, status, tx_hash, route)
SELECT '0x' || md5(i::text), '0x' || md5(i::text) || md5(i::text), '/weather', '1000', 'settled', '0x' || md5(i::text), 'ns/r'
FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE x402_payments`); err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Conn().Prepare(ctx, "explain_claims", "EXPLAIN "+l.sql.claimBatch); err != nil {
		t.Fatal(err)
	}
	col := func(v string) []string { return []string{v, v} }
	rows, err := conn.Query(ctx, "explain_claims", col(newPayer()), col(newNonce()), col("ns/r"), col("/w"), col(""),
		col("1"), col("n"), col("a"), col("p"), col("c"), col("f"), []bool{false, false}, []*string{nil, nil})
	if err != nil {
		t.Fatal(err)
	}
	var plan string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan += line + "\n"
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "x402_payments_inflight_key") || strings.Contains(plan, "Seq Scan on x402_payments") {
		t.Errorf("the claim batch's in-flight probe:\n%s", plan)
	}
}
