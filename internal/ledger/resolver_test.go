package ledger

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// age makes a row look last updated an hour ago.
func age(t *testing.T, l *Ledger, id string) {
	t.Helper()
	if _, err := l.pool.Exec(testCtx(t), "UPDATE "+l.n.qTable+" SET updated_at = now() - interval '1 hour' WHERE id = $1", id); err != nil {
		t.Fatal(err)
	}
}

// toSettling claims in and moves it to settling.
func toSettling(t *testing.T, l *Ledger, in Intent) string {
	t.Helper()
	c := claimWon(t, l, in)
	if err := l.MarkSettling(testCtx(t), c.Ticket); err != nil {
		t.Fatal(err)
	}
	return c.Ticket.ID
}

// runResolver runs RunResolver until the returned stop is called (or the test ends).
func runResolver(t *testing.T, l *Ledger, cfg ResolverConfig) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.RunResolver(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("RunResolver returned %v, want context.Canceled", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestResolverResolvesUnfinishedRows(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)

	settling := toSettling(t, l, intent("ns/r", "1"))
	pendingTx := newTxHash()
	pending := toSettling(t, l, intent("ns/r", "2"))
	if err := l.MarkPending(ctx, Ticket{ID: pending, Seq: 1}, pendingTx, "settle timed out"); err != nil {
		t.Fatal(err)
	}
	unknown := toSettling(t, l, intent("ns/r", "3"))
	erring := toSettling(t, l, intent("ns/r", "4"))
	fresh := toSettling(t, l, intent("ns/r", "5")) // a settle in flight: not due yet
	abandoned := claimWon(t, l, intent("ns/r", "6")).Ticket.ID
	for _, id := range []string{settling, pending, unknown, erring, abandoned} {
		age(t, l, id)
	}

	settledTx := newTxHash()
	var mu sync.Mutex
	seen := map[string]int{}
	resolver := ResolverFunc(func(_ context.Context, p Payment) (Outcome, error) {
		mu.Lock()
		seen[p.ID]++
		mu.Unlock()
		if len(p.Payload) == 0 || p.Payer == "" || p.Nonce == "" {
			t.Errorf("resolver got a payment without what it needs to resolve: %+v", p)
		}
		switch p.ID {
		case settling:
			return Outcome{Status: StatusSettled, TxHash: settledTx}, nil
		case pending:
			if p.TxHash != pendingTx {
				t.Errorf("pending row's known tx hash %q not passed to the resolver", p.TxHash)
			}
			return Outcome{Status: StatusFailed, TxHash: p.TxHash, Reason: "reverted"}, nil
		case erring:
			return Outcome{}, errors.New("facilitator unreachable")
		}
		return Outcome{Status: StatusPending, Reason: "not found yet"}, nil
	})
	var resolved atomic.Int32
	stop := runResolver(t, l, ResolverConfig{
		Route: "ns/r", Resolver: resolver, Interval: 10 * time.Millisecond, MinAge: time.Minute, AbandonAfter: time.Minute,
		OnResolved: func(Payment, Outcome) { resolved.Add(1) },
	})
	eventually(t, "four rows resolved", func() bool { return resolved.Load() >= 4 })
	stop()

	p := mustStatus(t, l, settling, StatusSettled)
	if p.TxHash != settledTx {
		t.Errorf("settled by the resolver with %q, want %q", p.TxHash, settledTx)
	}
	if p := mustStatus(t, l, pending, StatusFailed); p.FailureReason != "reverted" || p.TxHash != pendingTx {
		t.Errorf("failed by the resolver: %+v", p)
	}
	if p := mustStatus(t, l, unknown, StatusPending); p.Attempts != 1 || p.FailureReason != "not found yet" {
		t.Errorf("still unknown: attempts=%d reason=%q, want 1 attempt (then backoff)", p.Attempts, p.FailureReason)
	}
	if p := mustStatus(t, l, erring, StatusPending); p.Attempts != 1 || p.FailureReason != "resolver: facilitator unreachable" {
		t.Errorf("resolver error: attempts=%d reason=%q", p.Attempts, p.FailureReason)
	}
	mustStatus(t, l, fresh, StatusSettling)
	mustStatus(t, l, abandoned, StatusReleased)
	mu.Lock()
	defer mu.Unlock()
	if seen[fresh] != 0 || seen[abandoned] != 0 || seen[unknown] != 1 {
		t.Errorf("resolver calls: %v (fresh %s, abandoned %s, unknown %s)", seen, fresh, abandoned, unknown)
	}
}

func TestResolverLeadership(t *testing.T) {
	l, pool, _ := newLedger(t)
	ctx := testCtx(t)

	var (
		mu       sync.Mutex
		resolved = map[string]string{} // payment id → resolver name
		leading  = map[string]bool{}
		inFlight atomic.Int32
	)
	resolverFor := func(name string) Resolver {
		return ResolverFunc(func(context.Context, Payment) (Outcome, error) {
			if inFlight.Add(1) > 1 {
				t.Errorf("two resolvers resolving at once")
			}
			defer inFlight.Add(-1)
			return Outcome{Status: StatusSettled, TxHash: newTxHash()}, nil
		})
	}
	onResolved := func(name string) func(Payment, Outcome) {
		return func(p Payment, _ Outcome) {
			mu.Lock()
			defer mu.Unlock()
			resolved[p.ID] = name
		}
	}
	isLeading := func(name string) bool { mu.Lock(); defer mu.Unlock(); return leading[name] }
	resolvedBy := func(ids []string) map[string]int {
		mu.Lock()
		defer mu.Unlock()
		by := map[string]int{}
		for _, id := range ids {
			by[resolved[id]]++
		}
		return by
	}
	dueRows := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = toSettling(t, l, intent("ns/r", "1"))
			age(t, l, ids[i])
		}
		return ids
	}

	cfg := func(name string, onLoss func()) ResolverConfig {
		return ResolverConfig{
			Route: "ns/r", Resolver: resolverFor(name), Interval: 10 * time.Millisecond, MinAge: time.Minute,
			OnResolved: onResolved(name),
			OnLeadership: func(on bool) {
				mu.Lock()
				leading[name] = on
				mu.Unlock()
				if !on && onLoss != nil {
					onLoss()
				}
			},
		}
	}
	aCtx, stopA := context.WithCancel(context.Background())
	defer stopA()
	aDone := make(chan error, 1)
	// A gives up for good when it loses its connection, so B is the one to take over.
	go func() { aDone <- l.RunResolver(aCtx, cfg("a", stopA)) }()
	eventually(t, "a to lead", func() bool { return isLeading("a") })
	runResolver(t, l, cfg("b", nil))

	first := dueRows(20)
	eventually(t, "the first rows resolved", func() bool { return resolvedBy(first)["a"] == len(first) })
	if isLeading("b") {
		t.Fatal("b leads while a holds the lock")
	}

	// Kill a's session: the server drops its advisory lock with it.
	var killed bool
	if err := pool.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).
		Scan(&killed); err != nil || !killed {
		t.Fatalf("terminating the leader's session: %v, %v", killed, err)
	}
	if err := <-aDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("a ended with %v", err)
	}
	eventually(t, "b to take over", func() bool { return isLeading("b") })

	second := dueRows(20)
	eventually(t, "the second rows resolved by b", func() bool { return resolvedBy(second)["b"] == len(second) })
	for _, id := range append(first, second...) {
		mustStatus(t, l, id, StatusSettled)
	}
}

// Attack: one route's resolver decided every route's rows (a mock route's resolver failed a
// real, paid payment of another route). Each resolver scans, abandons and locks only its own
// route; two routes of one table resolve side by side.
func TestResolverOnlyTouchesItsOwnRoute(t *testing.T) {
	l, _, _ := newLedger(t)
	aSettling := toSettling(t, l, intent("ns/a", "1"))
	bSettling := toSettling(t, l, intent("ns/b", "1"))
	aVerifying := claimWon(t, l, intent("ns/a", "1")).Ticket.ID
	bVerifying := claimWon(t, l, intent("ns/b", "1")).Ticket.ID
	for _, id := range []string{aSettling, bSettling, aVerifying, bVerifying} {
		age(t, l, id)
	}

	var mu sync.Mutex
	seen := map[string][]string{} // route → ids its resolver was asked about
	leading := map[string]bool{}
	both := make(chan struct{})
	var bothOnce sync.Once
	cfg := func(route string, verdict func(Payment) Outcome) ResolverConfig {
		return ResolverConfig{
			Route: route, Interval: 10 * time.Millisecond, MinAge: time.Minute, AbandonAfter: time.Minute,
			Resolver: ResolverFunc(func(_ context.Context, p Payment) (Outcome, error) {
				mu.Lock()
				seen[route] = append(seen[route], p.ID)
				mu.Unlock()
				return verdict(p), nil
			}),
			OnLeadership: func(on bool) {
				mu.Lock()
				defer mu.Unlock()
				leading[route] = on
				if leading["ns/a"] && leading["ns/b"] {
					bothOnce.Do(func() { close(both) })
				}
			},
		}
	}
	// ns/a's resolver is like the mock's: it says failed for everything it is asked about.
	stopA := runResolver(t, l, cfg("ns/a", func(Payment) Outcome {
		return Outcome{Status: StatusFailed, Reason: "mock: never settled"}
	}))
	eventually(t, "ns/a's rows resolved", func() bool {
		p, err := l.Get(testCtx(t), aSettling)
		q, err2 := l.Get(testCtx(t), aVerifying)
		return err == nil && err2 == nil && p.Status == StatusFailed && q.Status == StatusReleased
	})
	time.Sleep(50 * time.Millisecond) // a few more scans
	if p := mustStatus(t, l, bSettling, StatusSettling); p.Attempts != 0 || p.FailureReason != "" {
		t.Fatalf("ns/a's resolver touched ns/b's settling row: %+v", p)
	}
	mustStatus(t, l, bVerifying, StatusVerifying)

	tx := newTxHash()
	runResolver(t, l, cfg("ns/b", func(Payment) Outcome { return Outcome{Status: StatusSettled, TxHash: tx} }))
	select {
	case <-both:
	case <-testCtx(t).Done():
		t.Fatal("the two routes' resolvers did not lead at the same time")
	}
	eventually(t, "ns/b's row resolved by its own resolver", func() bool {
		p, err := l.Get(testCtx(t), bSettling)
		return err == nil && p.Status == StatusSettled && p.TxHash == tx
	})
	eventually(t, "ns/b's abandoned claim released", func() bool {
		p, err := l.Get(testCtx(t), bVerifying)
		return err == nil && p.Status == StatusReleased
	})
	stopA()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || len(seen["ns/a"]) != 1 || seen["ns/a"][0] != aSettling ||
		len(seen["ns/b"]) != 1 || seen["ns/b"][0] != bSettling {
		t.Errorf("resolver calls by route: %v; want ns/a: [%s], ns/b: [%s]", seen, aSettling, bSettling)
	}
}

func TestRunResolverNeedsARoute(t *testing.T) {
	l, _, _ := newLedger(t)
	err := l.RunResolver(testCtx(t), ResolverConfig{Resolver: ResolverFunc(func(context.Context, Payment) (Outcome, error) {
		return Outcome{}, nil
	})})
	if err == nil || !strings.Contains(err.Error(), "Route") {
		t.Fatalf("RunResolver without a route: %v", err)
	}
}

// Released rows (no money moved) are deleted by their route's resolver once older than the
// retention (24h by default), in bounded statements; younger ones, other routes' and other
// states are kept.
func TestResolverDeletesItsRoutesExpiredReleasedRows(t *testing.T) {
	l, pool, _ := newLedger(t)
	ctx := testCtx(t)
	insert := func(route, status, age string, n int) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO x402_payments (payer_address, nonce, endpoint, amount, status, route, tx_hash, updated_at)
SELECT '0x' || md5(random()::text), '0x' || md5(random()::text) || md5(random()::text), '/weather', '1', $1, $2,
	CASE WHEN $1 = 'settled' THEN '0x' || md5(random()::text) END, now() - $3::interval
FROM generate_series(1, $4::int)`, status, route, age, n); err != nil {
			t.Fatal(err)
		}
	}
	count := func(route, status, older string) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM x402_payments WHERE route = $1 AND status = $2
			AND updated_at < now() - $3::interval`, route, status, older).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	old := 2*retentionBatch + 500
	insert("ns/a", "released", "2 days", old)
	insert("ns/a", "released", "1 hour", 7)
	insert("ns/a", "settled", "2 days", 5)
	insert("ns/b", "released", "2 days", 9)

	// One statement deletes at most one batch.
	if n, err := pool.Exec(ctx, l.sql.retention, "ns/a", (24 * time.Hour).Seconds(), retentionBatch); err != nil || n.RowsAffected() != retentionBatch {
		t.Fatalf("one retention statement deleted %d rows (%v), want %d", n.RowsAffected(), err, retentionBatch)
	}
	runResolver(t, l, ResolverConfig{Route: "ns/a", Resolver: ResolverFunc(func(context.Context, Payment) (Outcome, error) {
		return Outcome{Status: StatusPending}, nil
	}), Interval: 10 * time.Millisecond})
	eventually(t, "ns/a's expired released rows deleted", func() bool { return count("ns/a", "released", "1 day") == 0 })
	if n := count("ns/a", "released", "0 seconds"); n != 7 {
		t.Errorf("ns/a's young released rows: %d, want 7 kept", n)
	}
	if n := count("ns/a", "settled", "1 day"); n != 5 {
		t.Errorf("ns/a's settled rows: %d, want 5 kept", n)
	}
	if n := count("ns/b", "released", "1 day"); n != 9 {
		t.Errorf("ns/b's released rows: %d, want 9 kept (another route's resolver decides them)", n)
	}
}
