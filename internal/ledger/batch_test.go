package ledger

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// Settled outcomes written at the same time may share a statement; each caller must still get
// exactly the answer a single statement would give it, and no row may be recorded wrongly.
func TestConcurrentMarkSettledAnswersEachCallerLikeASingleStatement(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	const n = 60
	tickets := make([]Ticket, n)
	for i := range tickets {
		c := claimWon(t, l, intent("ns/r", "1000"))
		if err := l.MarkSettling(ctx, c.Ticket); err != nil {
			t.Fatal(err)
		}
		tickets[i] = c.Ticket
	}
	verifying := claimWon(t, l, intent("ns/r", "1000")).Ticket // never marked settling
	txs := make([]string, n)
	for i := range txs {
		txs[i] = newTxHash()
	}
	raceTx := [2]string{newTxHash(), newTxHash()}

	// Another payment's tx hash.
	stolen := claimWon(t, l, intent("ns/r", "1000")).Ticket
	if err := l.MarkSettling(ctx, stolen); err != nil {
		t.Fatal(err)
	}
	race := claimWon(t, l, intent("ns/r", "1000")).Ticket
	if err := l.MarkSettling(ctx, race); err != nil {
		t.Fatal(err)
	}

	errs := make([]error, n)
	var reqs []func()
	for i := range n {
		reqs = append(reqs, func() { errs[i] = l.MarkSettled(ctx, tickets[i], txs[i], "200", true) })
	}
	var errVerifying, errStolen, errAgain error
	var raceErrs [2]error
	reqs = append(reqs,
		func() { errVerifying = l.MarkSettled(ctx, verifying, newTxHash(), "200", true) },
		func() { errStolen = l.MarkSettled(ctx, stolen, txs[0], "200", true) },
		// The same report twice (idempotent), and two different tx hashes for one row (one wins).
		func() { errAgain = l.Apply(ctx, tickets[1], Outcome{Status: StatusSettled, TxHash: txs[1]}) },
	)
	for k := range raceErrs {
		id := race.ID
		if k == 1 {
			id = strings.ToUpper(id) // the same row under another spelling of its id
		}
		reqs = append(reqs, func() { raceErrs[k] = l.MarkSettled(ctx, Ticket{ID: id, Seq: race.Seq}, raceTx[k], "200", true) })
	}
	queueAsOneBatch(t, &l.batch.settled, reqs)()

	for i, err := range errs {
		if i == 0 && errors.Is(err, ErrTxHashInUse) {
			continue // the stolen tx hash came first, checked below
		}
		if err != nil {
			t.Errorf("payment %d: %v", i, err)
			continue
		}
		if p := mustStatus(t, l, tickets[i].ID, StatusSettled); p.TxHash != txs[i] || p.ResponseSummary != "200" {
			t.Errorf("payment %d recorded as %q %q, want %q", i, p.TxHash, p.ResponseSummary, txs[i])
		}
	}
	// A tx hash settles the row whatever attempt owns it, verifying included (see MarkSettled).
	if errVerifying != nil {
		t.Errorf("settled from verifying: %v", errVerifying)
	}
	mustStatus(t, l, verifying.ID, StatusSettled)
	// Whichever of the two writes came first, the other is refused.
	if !errors.Is(errStolen, ErrTxHashInUse) && !errors.Is(errs[0], ErrTxHashInUse) {
		t.Errorf("a tx hash recorded twice: %v / %v", errStolen, errs[0])
	}
	if errAgain != nil {
		t.Errorf("the same settlement reported again: %v", errAgain)
	}
	if (raceErrs[0] == nil) == (raceErrs[1] == nil) {
		t.Fatalf("two tx hashes for one payment: errors %v / %v, want exactly one", raceErrs[0], raceErrs[1])
	}
	winner := 0
	if raceErrs[0] != nil {
		winner = 1
	}
	if !errors.Is(raceErrs[1-winner], ErrInvalidTransition) {
		t.Errorf("the losing report: %v, want ErrInvalidTransition", raceErrs[1-winner])
	}
	if p := mustStatus(t, l, race.ID, StatusSettled); p.TxHash != raceTx[winner] {
		t.Errorf("race row tx = %s, want the winner's %s", p.TxHash, raceTx[winner])
	}
}

// queueAsOneBatch makes the batcher b write the requests reqs in one statement: it holds b as
// if a batch were being written, starts reqs, waits until all of them are queued, then lets b
// drain them as the writer of that batch would.
func queueAsOneBatch[R any](t *testing.T, b *batcher[R], reqs []func()) (wait func()) {
	t.Helper()
	b.mu.Lock()
	if b.flushing {
		b.mu.Unlock()
		t.Fatal("a batch is already being written")
	}
	b.flushing = true
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, f := range reqs {
		wg.Go(f)
	}
	waitFor(t, "every request to queue", func() bool { return queued(b) == len(reqs) })
	go b.drain()
	return wg.Wait
}

func queued[R any](b *batcher[R]) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Claims written in one batch statement must answer each caller as a single statement would:
// one winner per (payer, nonce) even when the batch holds the same payment twice, released
// rows claimed again with a new ticket, rows in flight returned unclaimed; for Claim and for
// ClaimSettling, whose rows are written settling.
func TestBatchedClaimsAnswerEachCallerLikeASingleStatement(t *testing.T) {
	t.Run("Claim", func(t *testing.T) { testBatchedClaims(t, claimVerifying) })
	t.Run("ClaimSettling", func(t *testing.T) { testBatchedClaims(t, claimSettling) })
}

func testBatchedClaims(t *testing.T, mode claimMode) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	claimOf, batch, status := l.Claim, &l.batch.claims, StatusVerifying
	if mode == claimSettling {
		claimOf, batch, status = l.ClaimSettling, &l.batch.settlingClaims, StatusSettling
	}

	const fresh = 30
	freshIn := make([]Intent, fresh)
	for i := range freshIn {
		freshIn[i] = intent("ns/r", "1000")
	}
	released := make([]Intent, 5)
	for i := range released {
		released[i] = intent("ns/r", "1000")
		c := claimWon(t, l, released[i])
		if err := l.Release(ctx, c.Ticket, "verify failed"); err != nil {
			t.Fatal(err)
		}
	}
	inFlight := intent("ns/r", "1000")
	claimWon(t, l, inFlight)

	type answer struct {
		in  Intent
		res ClaimResult
		err error
	}
	var mu sync.Mutex
	var answers []answer
	claim := func(in Intent) func() {
		return func() {
			res, err := claimOf(ctx, in)
			mu.Lock()
			answers = append(answers, answer{in, res, err})
			mu.Unlock()
		}
	}
	var rest []func()
	for _, in := range freshIn {
		rest = append(rest, claim(in), claim(in)) // each fresh payment twice in the same batch
	}
	for _, in := range released {
		rest = append(rest, claim(in))
	}
	rest = append(rest, claim(inFlight))
	queueAsOneBatch(t, batch, rest)()

	wins := map[string]int{}
	for _, a := range answers {
		if a.err != nil {
			t.Fatalf("claim %s: %v", a.in.Nonce, a.err)
		}
		key := a.in.Payer + "/" + a.in.Nonce
		if a.res.Won {
			wins[key]++
			if a.res.Payment.Status != status || a.res.Ticket.ID != a.res.Payment.ID {
				t.Errorf("won claim %s: %+v", key, a.res)
			}
		} else if a.res.Payment.Status != status && a.res.Payment.Status != StatusVerifying || a.res.Payment.ID == "" {
			t.Errorf("lost claim %s saw %+v, want the claimed row", key, a.res.Payment)
		}
	}
	for _, in := range freshIn {
		if n := wins[in.Payer+"/"+in.Nonce]; n != 1 {
			t.Errorf("fresh payment claimed twice in one batch: %d winners, want 1", n)
		}
	}
	for _, a := range answers {
		for _, in := range released {
			if a.in.Nonce == in.Nonce && (!a.res.Won || a.res.Ticket.Seq != 2) {
				t.Errorf("released payment claimed again: %+v, want won with ticket 2", a.res)
			}
		}
		if a.in.Nonce == inFlight.Nonce && a.res.Won {
			t.Errorf("a payment in flight was claimed again")
		}
	}
	if len(answers) != len(rest) {
		t.Fatalf("%d answers for %d claims", len(answers), len(rest))
	}
}

// A batch the server refuses (here a payload that is not JSON) must not fail the other claims
// in it: they run alone and win; the bad one gets the server's error.
func TestClaimBatchRefusedByTheServerFallsBackToSingleStatements(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	good := make([]Intent, 10)
	errs := make([]error, len(good))
	var rest []func()
	for i := range good {
		good[i] = intent("ns/r", "1000")
		rest = append(rest, func() {
			var c ClaimResult
			c, errs[i] = l.Claim(ctx, good[i])
			if errs[i] == nil && !c.Won {
				errs[i] = errors.New("fresh claim not won")
			}
		})
	}
	bad := intent("ns/r", "1000")
	bad.Payload = []byte(`{not json`)
	var badErr error
	rest = append(rest, func() { _, badErr = l.Claim(ctx, bad) })
	queueAsOneBatch(t, &l.batch.claims, rest)()
	for i, err := range errs {
		if err != nil {
			t.Errorf("good claim %d in a refused batch: %v", i, err)
		}
	}
	if badErr == nil || !strings.Contains(badErr.Error(), "json") {
		t.Errorf("claim with a payload that is not JSON: %v, want the server's JSON error", badErr)
	}
}

// Settling marks written in one batch: each winner's row is settling; the same ticket twice is
// idempotent; a stale ticket (the row was claimed again) and a released claim are refused
// with ErrInvalidTransition, exactly as alone.
func TestBatchedSettlingAnswersEachCallerLikeASingleStatement(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	tickets := make([]Ticket, 20)
	for i := range tickets {
		tickets[i] = claimWon(t, l, intent("ns/r", "1000")).Ticket
	}
	reclaimedIn := intent("ns/r", "1000")
	stale := claimWon(t, l, reclaimedIn).Ticket
	if err := l.Release(ctx, stale, "upstream 500"); err != nil {
		t.Fatal(err)
	}
	current := claimWon(t, l, reclaimedIn).Ticket
	releasedT := claimWon(t, l, intent("ns/r", "1000")).Ticket
	if err := l.Release(ctx, releasedT, "verify failed"); err != nil {
		t.Fatal(err)
	}
	upper := claimWon(t, l, intent("ns/r", "1000")).Ticket
	upper.ID = strings.ToUpper(upper.ID) // another spelling of the same id runs alone

	errs := make([]error, len(tickets))
	var rest []func()
	for i := range tickets {
		rest = append(rest, func() { errs[i] = l.MarkSettling(ctx, tickets[i]) })
	}
	var errTwice, errStale, errCurrent, errReleased, errUpper error
	rest = append(rest,
		func() { errTwice = l.MarkSettling(ctx, tickets[0]) },
		func() { errStale = l.MarkSettling(ctx, stale) },
		func() { errCurrent = l.MarkSettling(ctx, current) },
		func() { errReleased = l.MarkSettling(ctx, releasedT) },
		func() { errUpper = l.MarkSettling(ctx, upper) },
	)
	queueAsOneBatch(t, &l.batch.settling, rest)()

	for i, err := range errs {
		if err != nil {
			t.Errorf("ticket %d: %v", i, err)
		}
		mustStatus(t, l, tickets[i].ID, StatusSettling)
	}
	if errTwice != nil || errCurrent != nil || errUpper != nil {
		t.Errorf("same ticket twice: %v; current ticket of a reclaimed row: %v; upper-case id: %v", errTwice, errCurrent, errUpper)
	}
	mustStatus(t, l, current.ID, StatusSettling)
	if !errors.Is(errStale, ErrInvalidTransition) || !errors.Is(errReleased, ErrInvalidTransition) {
		t.Errorf("stale ticket: %v; released claim: %v; want ErrInvalidTransition for both", errStale, errReleased)
	}
	mustStatus(t, l, releasedT.ID, StatusReleased)
}
