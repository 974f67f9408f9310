package ledger

import (
	"errors"
	"testing"
)

func TestPaidPathRecordsEverything(t *testing.T) {
	l, _, _ := newLedger(t)
	in := intent("ns/weather", "10000")
	in.Mock = true
	in.Facilitator = "mock"
	id, tx := settle(t, l, in)
	p := mustStatus(t, l, id, StatusSettled)
	if p.TxHash != tx || p.Amount != "10000" || p.Payer != in.Payer || p.Nonce != in.Nonce || !p.Mock ||
		p.Route != "ns/weather" || p.Network != "eip155:196" || p.Chain != "eip155:196" || p.PayTo != in.PayTo ||
		p.Facilitator != "mock" || p.ResponseSummary != "200 OK" || p.SettledAt.IsZero() ||
		string(p.Payload) != `{"payload": {"signature": "0xabc"}, "x402Version": 2}` {
		t.Fatalf("settled row: %+v payload %s", p, p.Payload)
	}
}

func TestTransitions(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)

	t.Run("settled is idempotent for the same tx hash only", func(t *testing.T) {
		id, tx := settle(t, l, intent("ns/r", "1"))
		if err := l.MarkSettled(ctx, Ticket{ID: id}, tx, "", false); err != nil {
			t.Fatalf("repeating MarkSettled: %v", err)
		}
		var te *TransitionError
		if err := l.MarkSettled(ctx, Ticket{ID: id}, newTxHash(), "", true); !errors.As(err, &te) || te.Actual != StatusSettled || te.ActualTxHash != tx {
			t.Fatalf("MarkSettled with another hash: %v", err)
		}
		if err := l.MarkFailed(ctx, Ticket{ID: id, Seq: 1}, "", "late failure"); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("MarkFailed on settled: %v", err)
		}
		if err := l.MarkPending(ctx, Ticket{ID: id, Seq: 1}, "", "late timeout"); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("MarkPending on settled: %v", err)
		}
		mustStatus(t, l, id, StatusSettled)
	})

	t.Run("no failed or pending before settling", func(t *testing.T) {
		c := claimWon(t, l, intent("ns/r", "1"))
		if err := l.MarkPending(ctx, c.Ticket, "", ""); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("MarkPending on verifying: %v", err)
		}
		if err := l.MarkFailed(ctx, c.Ticket, "", ""); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("MarkFailed on verifying: %v", err)
		}
		mustStatus(t, l, c.Ticket.ID, StatusVerifying)
	})

	// A settling row may be released by its own claim attempt (ClaimSettling writes the row
	// settling before the upstream call: the caller's word that settle was not called), never
	// once an outcome was recorded.
	t.Run("no release once an outcome is recorded", func(t *testing.T) {
		c := claimWon(t, l, intent("ns/r", "1"))
		if err := l.MarkSettling(ctx, c.Ticket); err != nil {
			t.Fatal(err)
		}
		if err := l.MarkSettling(ctx, c.Ticket); err != nil {
			t.Fatalf("repeating MarkSettling with the same ticket: %v", err)
		}
		if err := l.MarkPending(ctx, c.Ticket, "", "timeout"); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx, c.Ticket, "too late"); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("Release on pending: %v", err)
		}
		mustStatus(t, l, c.Ticket.ID, StatusPending)
		s, err := l.ClaimSettling(ctx, intent("ns/r", "1"))
		if err != nil || !s.Won {
			t.Fatalf("ClaimSettling = %+v, %v", s, err)
		}
		if err := l.MarkSettled(ctx, s.Ticket, newTxHash(), "200", true); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx, s.Ticket, "too late"); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("Release on settled: %v", err)
		}
		mustStatus(t, l, s.Ticket.ID, StatusSettled)
	})

	t.Run("pending keeps a known tx hash and then settles", func(t *testing.T) {
		c := claimWon(t, l, intent("ns/r", "1"))
		if err := l.MarkSettling(ctx, c.Ticket); err != nil {
			t.Fatal(err)
		}
		tx := newTxHash()
		if err := l.MarkPending(ctx, c.Ticket, tx, "timeout"); err != nil {
			t.Fatal(err)
		}
		if err := l.MarkPending(ctx, c.Ticket, "", "second timeout"); err != nil {
			t.Fatal(err)
		}
		p := mustStatus(t, l, c.Ticket.ID, StatusPending)
		if p.TxHash != tx || p.FailureReason != "second timeout" {
			t.Fatalf("pending row: %+v", p)
		}
		if err := l.Apply(ctx, c.Ticket, Outcome{Status: StatusSettled, TxHash: tx}); err != nil {
			t.Fatal(err)
		}
		mustStatus(t, l, c.Ticket.ID, StatusSettled)
	})

	t.Run("a tx hash belongs to one payment", func(t *testing.T) {
		_, tx := settle(t, l, intent("ns/r", "1"))
		c := claimWon(t, l, intent("ns/r", "1"))
		if err := l.MarkSettling(ctx, c.Ticket); err != nil {
			t.Fatal(err)
		}
		if err := l.MarkSettled(ctx, c.Ticket, tx, "", true); !errors.Is(err, ErrTxHashInUse) {
			t.Fatalf("settling with another payment's tx hash: %v", err)
		}
	})

	t.Run("unknown ids", func(t *testing.T) {
		for _, id := range []string{"00000000-0000-0000-0000-000000000000", "not-a-uuid"} {
			if err := l.MarkSettled(ctx, Ticket{ID: id}, newTxHash(), "", true); !errors.Is(err, ErrNotFound) {
				t.Errorf("MarkSettled(%q): %v", id, err)
			}
			if _, err := l.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q): %v", id, err)
			}
		}
	})

	t.Run("apply refuses a non-outcome", func(t *testing.T) {
		id, _ := settle(t, l, intent("ns/r", "1"))
		if err := l.Apply(ctx, Ticket{ID: id, Seq: 1}, Outcome{Status: StatusReleased}); err == nil {
			t.Fatal("Apply accepted released as an outcome")
		}
	})
}
