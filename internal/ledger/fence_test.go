package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// reclaimSettling records a definite failure for attempt old (as a resolver or a second gateway
// would), lets the payer claim in again and moves the new attempt to settling. It returns the
// new attempt's ticket.
func reclaimSettling(t *testing.T, l *Ledger, in Intent, old Ticket) Ticket {
	t.Helper()
	tk, err := reclaimAgain(testCtx(t), l, in, old)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// reclaimAgain is reclaimSettling for goroutines other than the test's.
func reclaimAgain(ctx context.Context, l *Ledger, in Intent, old Ticket) (Ticket, error) {
	if err := l.MarkFailed(ctx, old, "", "insufficient_funds"); err != nil {
		return Ticket{}, err
	}
	c, err := l.Claim(ctx, in)
	if err != nil {
		return Ticket{}, err
	}
	if !c.Won || c.Ticket.ID != old.ID || c.Ticket.Seq != old.Seq+1 {
		return Ticket{}, fmt.Errorf("reclaim: %+v after %+v", c, old)
	}
	return c.Ticket, l.MarkSettling(ctx, c.Ticket)
}

// Attack: a gateway spools a failed outcome (the database was down), the row is failed and
// claimed again meanwhile, and the new attempt is settling when the spool replays. The stale
// failed must not overwrite the new attempt's settling (before tickets it did, the payer's next
// claim then won the row again, and the new attempt's settled was refused and only logged); the
// new attempt's settled must be recorded.
func TestStaleSpooledFailedDoesNotOverwriteALaterAttempt(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	spool, err := OpenSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	in := intent("ns/r", "1000")
	first := claimWon(t, l, in).Ticket
	if err := l.MarkSettling(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := spool.Append(ctx, first, Outcome{Status: StatusFailed, Reason: "insufficient_funds"}); err != nil {
		t.Fatal(err)
	}
	second := reclaimSettling(t, l, in, first)

	res, err := spool.Replay(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if res != (ReplayResult{Rejected: 1}) {
		t.Errorf("replay of a stale failed: %+v, want it rejected", res)
	}
	if p := mustStatus(t, l, second.ID, StatusSettling); p.Claims != second.Seq {
		t.Fatalf("row after the stale replay: claims %d, want %d", p.Claims, second.Seq)
	}
	// The payer retrying meanwhile is told the payment is in progress, not given a new attempt.
	if c, err := l.Claim(ctx, in); err != nil || c.Won || c.Payment.Status != StatusSettling {
		t.Fatalf("claim while the second attempt settles: %+v, %v", c, err)
	}
	tx := newTxHash()
	spooled, err := l.ApplyOrSpool(ctx, spool, second, Outcome{Status: StatusSettled, TxHash: tx, ResponseSummary: "settled", Served: true})
	if err != nil || spooled {
		t.Fatalf("the second attempt's settled: spooled=%v err=%v", spooled, err)
	}
	if p := mustStatus(t, l, second.ID, StatusSettled); p.TxHash != tx || !p.Served {
		t.Fatalf("settled row: tx %q served %v, want %q served", p.TxHash, p.Served, tx)
	}
}

// Failed and pending move only the attempt they belong to; a stale ticket is refused with
// Stale set and the row left alone, for the direct calls and Apply alike.
func TestFailedAndPendingAreFencedByTheClaimAttempt(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	in := intent("ns/r", "1000")
	first := claimWon(t, l, in).Ticket
	if err := l.MarkSettling(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := reclaimSettling(t, l, in, first)
	for name, write := range map[string]func() error{
		"MarkFailed":    func() error { return l.MarkFailed(ctx, first, "", "late failure") },
		"MarkPending":   func() error { return l.MarkPending(ctx, first, "", "late timeout") },
		"Apply failed":  func() error { return l.Apply(ctx, first, Outcome{Status: StatusFailed, Reason: "late"}) },
		"Apply pending": func() error { return l.Apply(ctx, first, Outcome{Status: StatusPending, Reason: "late"}) },
		"Release":       func() error { return l.Release(ctx, first, "late") },
	} {
		var te *TransitionError
		if err := write(); !errors.As(err, &te) || !te.Stale || te.Actual != StatusSettling {
			t.Errorf("%s with the first attempt's ticket: %v, want a stale TransitionError", name, err)
		}
	}
	if p := mustStatus(t, l, second.ID, StatusSettling); p.FailureReason != "" {
		t.Fatalf("the second attempt's row was written: %+v", p)
	}
	// The current ticket still works.
	if err := l.MarkPending(ctx, second, "", "timeout"); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, l, second.ID, StatusPending)
}

// A tx hash settles the row whatever attempt owns it: from verifying and released (a later
// attempt, which then cannot settle the nonce again) as from failed. It stays idempotent for the
// same hash and refuses another one.
func TestSettledAppliesWhateverAttemptOwnsTheRow(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)

	for _, later := range []Status{StatusVerifying, StatusReleased, StatusFailed} {
		t.Run(string(later), func(t *testing.T) {
			in := intent("ns/r", "1000")
			first := claimWon(t, l, in).Ticket
			if err := l.MarkSettling(ctx, first); err != nil {
				t.Fatal(err)
			}
			if err := l.MarkFailed(ctx, first, "", "facilitator said failed"); err != nil {
				t.Fatal(err)
			}
			second := first
			if later != StatusFailed {
				second = claimWon(t, l, in).Ticket
				if later == StatusReleased {
					if err := l.Release(ctx, second, "verify failed"); err != nil {
						t.Fatal(err)
					}
				}
			}
			mustStatus(t, l, first.ID, later)
			tx := newTxHash()
			if err := l.Apply(ctx, first, Outcome{Status: StatusSettled, TxHash: tx, Served: true}); err != nil {
				t.Fatalf("settled from %s: %v", later, err)
			}
			p := mustStatus(t, l, first.ID, StatusSettled)
			if p.TxHash != tx || !p.Served || p.FailureReason != "" || p.SettledAt.IsZero() {
				t.Fatalf("settled from %s: %+v", later, p)
			}
			if later == StatusVerifying {
				// The later attempt must not settle the same authorization again.
				if err := l.MarkSettling(ctx, second); !errors.Is(err, ErrInvalidTransition) {
					t.Fatalf("MarkSettling of the later attempt after the settlement: %v", err)
				}
			}
			if err := l.MarkSettled(ctx, second, tx, "", false); err != nil {
				t.Fatalf("the same tx hash again: %v", err)
			}
			if err := l.MarkSettled(ctx, second, newTxHash(), "", false); !errors.Is(err, ErrInvalidTransition) {
				t.Fatalf("another tx hash: %v", err)
			}
			if p := mustStatus(t, l, first.ID, StatusSettled); p.TxHash != tx || !p.Served {
				t.Fatalf("after the repeats: %+v", p)
			}
		})
	}
}

// Spool lines written before tickets have no seq: they are applied unfenced, and a settled one
// (the old gateway answered it with the content) counts as served.
func TestSpoolAppliesRecordsWithoutATicketUnfenced(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	spool, err := OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := intent("ns/r", "1000")
	first := claimWon(t, l, in).Ticket
	if err := l.MarkSettling(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := reclaimSettling(t, l, in, first)
	settledID := toSettling(t, l, intent("ns/r", "1000"))
	tx := newTxHash()
	old := `{"id":"` + second.ID + `","outcome":{"status":"pending","reason":"old timeout"},"at":"2025-01-01T00:00:00Z"}` + "\n" +
		`{"id":"` + settledID + `","outcome":{"status":"settled","txHash":"` + tx + `"},"at":"2025-01-01T00:00:00Z"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, spoolActive), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := spool.Replay(ctx, l)
	if err != nil || res != (ReplayResult{Applied: 2}) {
		t.Fatalf("replay of old records: %+v, %v", res, err)
	}
	if p := mustStatus(t, l, second.ID, StatusPending); p.FailureReason != "old timeout" {
		t.Fatalf("old pending record: %+v", p)
	}
	if p := mustStatus(t, l, settledID, StatusSettled); p.TxHash != tx || !p.Served {
		t.Fatalf("old settled record: tx %q served %v", p.TxHash, p.Served)
	}
}

// A resolver verdict is about the attempt it looked at: failed and unknown never move the row
// once a later attempt owns it (before tickets, a failed verdict turned the later attempt's
// settling into failed); a settled verdict (a tx hash) still applies, not served.
func TestResolverVerdictOnAnOldAttemptDoesNotMoveALaterOne(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	verdicts := map[string]Outcome{}
	intents := map[string]Intent{}
	tx := newTxHash()
	for _, o := range []Outcome{
		{Status: StatusFailed, Reason: "authorization expired unused"},
		{Status: StatusPending, Reason: "not found yet"},
		{Status: StatusSettled, TxHash: tx},
	} {
		in := intent("ns/r", "1000")
		id := toSettling(t, l, in)
		age(t, l, id)
		verdicts[id], intents[id] = o, in
	}
	// Rows are resolved one after the other, oldest first: when the resolver reaches this
	// youngest due row, it has written its verdicts on the others.
	sentinel := toSettling(t, l, intent("ns/r", "1000"))
	age(t, l, sentinel)
	var (
		mu     sync.Mutex
		second = map[string]Ticket{}
		done   = make(chan struct{})
	)
	resolver := ResolverFunc(func(_ context.Context, p Payment) (Outcome, error) {
		if p.ID == sentinel {
			close(done)
			return Outcome{Status: StatusPending}, nil
		}
		// While the resolver decides, the attempt it looks at fails and the payer claims again.
		tk, err := reclaimAgain(ctx, l, intents[p.ID], Ticket{ID: p.ID, Seq: p.Claims})
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		second[p.ID] = tk
		mu.Unlock()
		return verdicts[p.ID], nil
	})
	stop := runResolver(t, l, ResolverConfig{Route: "ns/r", Resolver: resolver, Interval: 10 * time.Millisecond, MinAge: time.Minute})
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the resolver did not reach every row")
	}
	stop()
	for id, o := range verdicts {
		if o.Status == StatusSettled {
			if p := mustStatus(t, l, id, StatusSettled); p.TxHash != tx || p.Served {
				t.Errorf("settled verdict: tx %q served %v, want %q not served", p.TxHash, p.Served, tx)
			}
			continue
		}
		p := mustStatus(t, l, id, StatusSettling)
		if p.Claims != second[id].Seq || p.Attempts != 0 || p.FailureReason != "" {
			t.Errorf("%s verdict on the first attempt moved the second: %+v", o.Status, p)
		}
	}
}
