package ledger

import (
	"errors"
	"strings"
	"sync"
	"testing"
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

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = l.MarkSettled(ctx, tickets[i].ID, txs[i], "200") })
	}
	var errVerifying, errStolen, errAgain error
	var raceErrs [2]error
	wg.Go(func() { errVerifying = l.MarkSettled(ctx, verifying.ID, newTxHash(), "200") })
	// Another payment's tx hash.
	stolen := claimWon(t, l, intent("ns/r", "1000")).Ticket
	if err := l.MarkSettling(ctx, stolen); err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { errStolen = l.MarkSettled(ctx, stolen.ID, txs[0], "200") })
	// The same report twice (idempotent), and two different tx hashes for one row (one wins).
	wg.Go(func() { errAgain = l.Apply(ctx, tickets[1].ID, Outcome{Status: StatusSettled, TxHash: txs[1]}) })
	race := claimWon(t, l, intent("ns/r", "1000")).Ticket
	if err := l.MarkSettling(ctx, race); err != nil {
		t.Fatal(err)
	}
	for k := range raceErrs {
		id := race.ID
		if k == 1 {
			id = strings.ToUpper(id) // the same row under another spelling of its id
		}
		wg.Go(func() { raceErrs[k] = l.MarkSettled(ctx, id, raceTx[k], "200") })
	}
	wg.Wait()

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
	if !errors.Is(errVerifying, ErrInvalidTransition) {
		t.Errorf("settled from verifying: %v, want ErrInvalidTransition", errVerifying)
	}
	mustStatus(t, l, verifying.ID, StatusVerifying)
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
