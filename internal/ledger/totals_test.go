package ledger

import (
	"testing"
)

func TestTotalsExcludeMockAndUnfinishedRows(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)

	// Real: two settled (amounts beyond int64 to prove no overflow), one pending, one settling,
	// one failed and one released that count nowhere.
	settle(t, l, intent("ns/a", "18446744073709551615"))
	_, lastTx := settle(t, l, intent("ns/a", "5"))
	pc := claimWon(t, l, intent("ns/a", "100"))
	if err := l.MarkSettling(ctx, pc.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkPending(ctx, pc.Ticket, "", "timeout"); err != nil {
		t.Fatal(err)
	}
	sc := claimWon(t, l, intent("ns/a", "100"))
	if err := l.MarkSettling(ctx, sc.Ticket); err != nil {
		t.Fatal(err)
	}
	fc := claimWon(t, l, intent("ns/a", "100"))
	if err := l.MarkSettling(ctx, fc.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkFailed(ctx, fc.Ticket, "", "insufficient_funds"); err != nil {
		t.Fatal(err)
	}
	rc := claimWon(t, l, intent("ns/a", "100"))
	if err := l.Release(ctx, rc.Ticket, "upstream 502"); err != nil {
		t.Fatal(err)
	}
	// Mock: one settled. Another route: one settled.
	mock := intent("ns/a", "7")
	mock.Mock = true
	_, mockTx := settle(t, l, mock)
	settle(t, l, intent("ns/b", "9"))

	got, err := l.Totals(ctx, "ns/a")
	if err != nil {
		t.Fatal(err)
	}
	r := got.Real
	if r.SettledCount != 2 || r.SettledAmount.String() != "18446744073709551620" || r.PendingCount != 1 ||
		r.SettlingCount != 1 || r.LastTxHash != lastTx || r.LastSettledAt.IsZero() {
		t.Fatalf("real totals of ns/a: %+v", r)
	}
	m := got.Mock
	if m.SettledCount != 1 || m.SettledAmount.String() != "7" || m.LastTxHash != mockTx || m.PendingCount != 0 {
		t.Fatalf("mock totals of ns/a: %+v", m)
	}

	none, err := l.Totals(ctx, "ns/none")
	if err != nil {
		t.Fatal(err)
	}
	if none.Real.SettledCount != 0 || none.Real.SettledAmount.Sign() != 0 || none.Mock.SettledAmount == nil {
		t.Fatalf("totals of a route without rows: %+v", none)
	}

	all, err := l.AllTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all["ns/b"].Real.SettledAmount.String() != "9" ||
		all["ns/a"].Real.SettledAmount.String() != r.SettledAmount.String() || all["ns/b"].Mock.SettledCount != 0 {
		t.Fatalf("all totals: %+v", all)
	}
}

func TestTotalsCountStuckRows(t *testing.T) {
	l, pool, _ := newLedger(t)
	ctx := testCtx(t)
	// unfinished claims a payment and leaves it in status, created age ago (the resolver never
	// found its outcome).
	unfinished := func(in Intent, status Status, age string) {
		t.Helper()
		c := claimWon(t, l, in)
		if err := l.MarkSettling(ctx, c.Ticket); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE x402_payments SET status = $2, created_at = now() - $3::interval WHERE id = $1`,
			c.Ticket.ID, string(status), age); err != nil {
			t.Fatal(err)
		}
	}
	unfinished(intent("ns/a", "1"), StatusPending, "2 hours")
	unfinished(intent("ns/a", "1"), StatusSettling, "61 minutes")
	unfinished(intent("ns/a", "1"), StatusPending, "59 minutes") // not stuck yet
	mock := intent("ns/a", "1")
	mock.Mock = true
	unfinished(mock, StatusPending, "3 hours")
	unfinished(intent("ns/b", "1"), StatusPending, "5 hours")
	// An old settled row is done, however old.
	id, _ := settle(t, l, intent("ns/a", "1"))
	if _, err := pool.Exec(ctx, `UPDATE x402_payments SET created_at = now() - interval '1 day' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}

	got, err := l.Totals(ctx, "ns/a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Real.StuckCount != 2 || got.Real.PendingCount != 2 || got.Real.SettlingCount != 1 || got.Mock.StuckCount != 1 {
		t.Fatalf("totals of ns/a: real %+v, mock %+v", got.Real, got.Mock)
	}
	all, err := l.AllTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all["ns/b"].Real.StuckCount != 1 || all["ns/a"].Real.StuckCount != 2 {
		t.Fatalf("all totals: %+v", all)
	}
}
