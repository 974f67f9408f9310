package ledger

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// resolverSettled returns the id of a payment settled the way the resolver settles one: the
// payer's request was not answered with the content, so it is not served.
func resolverSettled(t *testing.T, l *Ledger) string {
	t.Helper()
	id := toSettling(t, l, intent("ns/r", "1000"))
	if err := l.Apply(testCtx(t), Ticket{ID: id, Seq: 1}, Outcome{Status: StatusSettled, TxHash: newTxHash()}); err != nil {
		t.Fatal(err)
	}
	if p := mustStatus(t, l, id, StatusSettled); p.Served {
		t.Fatal("a settlement reported without served is served")
	}
	return id
}

// Attack: many replays of a settled payment the payer never got, at once, on two replicas. Only
// one may be given the content.
func TestMarkServedHasExactlyOneWinner(t *testing.T) {
	l, _, db := newLedger(t)
	ctx := testCtx(t)
	id := resolverSettled(t, l)
	replicas := []*Ledger{replica(t, db, 25), replica(t, db, 25)}
	var (
		wg   sync.WaitGroup
		won  atomic.Int32
		errs = make(chan error, 100)
	)
	for i := range 100 {
		wg.Go(func() {
			ok, err := replicas[i%2].MarkServed(ctx, id)
			if err != nil {
				errs <- err
			}
			if ok {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("MarkServed: %v", err)
	}
	if won.Load() != 1 {
		t.Fatalf("%d concurrent MarkServed calls won, want exactly 1", won.Load())
	}
	if p := mustStatus(t, l, id, StatusSettled); !p.Served {
		t.Fatal("row not served after a won MarkServed")
	}

	// The winner's upstream failed: a later replay may be served once more.
	if err := l.UnmarkServed(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ok, err := l.MarkServed(ctx, id); err != nil || !ok {
		t.Fatalf("MarkServed after UnmarkServed: %v, %v", ok, err)
	}
	if ok, err := l.MarkServed(ctx, id); err != nil || ok {
		t.Fatalf("MarkServed of a served payment: %v, %v", ok, err)
	}
}

func TestMarkServedRefusesWhatIsNotSettledAndUnservedOnly(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	gatewayID, _ := settle(t, l, intent("ns/r", "1000")) // the gateway's own settle: served
	if p := mustStatus(t, l, gatewayID, StatusSettled); !p.Served {
		t.Fatal("the gateway's own settlement is not served")
	}
	if ok, err := l.MarkServed(ctx, gatewayID); err != nil || ok {
		t.Fatalf("MarkServed of the gateway's own settlement: %v, %v; want false", ok, err)
	}
	c := claimWon(t, l, intent("ns/r", "1000"))
	if ok, err := l.MarkServed(ctx, c.Ticket.ID); ok || !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("MarkServed of a verifying payment: %v, %v", ok, err)
	}
	if err := l.UnmarkServed(ctx, c.Ticket.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"00000000-0000-0000-0000-000000000000", "not-a-uuid"} {
		if ok, err := l.MarkServed(ctx, id); ok || !errors.Is(err, ErrNotFound) {
			t.Errorf("MarkServed(%q): %v, %v", id, ok, err)
		}
	}
}

// served travels with the settled outcome, alone and batched: set by the outcome that settles
// the row and only ever gained by a repeat of the same tx hash.
func TestServedIsWrittenWithTheSettledOutcome(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	const n = 20
	tickets := make([]Ticket, n)
	txs := make([]string, n)
	for i := range tickets {
		tickets[i] = claimWon(t, l, intent("ns/r", "1000")).Ticket
		if err := l.MarkSettling(ctx, tickets[i]); err != nil {
			t.Fatal(err)
		}
		txs[i] = newTxHash()
	}
	errs := make([]error, n)
	var reqs []func()
	for i := range tickets {
		reqs = append(reqs, func() { errs[i] = l.MarkSettled(ctx, tickets[i], txs[i], "200", i%2 == 0) })
	}
	queueAsOneBatch(t, &l.batch.settled, reqs)()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if p := mustStatus(t, l, tickets[i].ID, StatusSettled); p.Served != (i%2 == 0) {
			t.Errorf("payment %d served = %v, want %v", i, p.Served, i%2 == 0)
		}
	}
	// A repeat of the same settlement never unserves; a served one serves.
	reqs = nil
	for i := range tickets {
		reqs = append(reqs, func() { errs[i] = l.MarkSettled(ctx, tickets[i], txs[i], "", i%4 == 1) })
	}
	queueAsOneBatch(t, &l.batch.settled, reqs)()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if want := i%2 == 0 || i%4 == 1; mustStatus(t, l, tickets[i].ID, StatusSettled).Served != want {
			t.Errorf("payment %d after the repeat: served != %v", i, want)
		}
	}
	// A claim answers with served, so the gateway can tell a replay to serve from one to refuse.
	in := intent("ns/r", "1000")
	id := toSettling(t, l, in)
	if err := l.Apply(ctx, Ticket{ID: id, Seq: 1}, Outcome{Status: StatusSettled, TxHash: newTxHash()}); err != nil {
		t.Fatal(err)
	}
	if c, err := l.Claim(ctx, in); err != nil || c.Won || c.Payment.Served {
		t.Fatalf("replay of a resolver-settled payment: %+v, %v", c, err)
	}
}
