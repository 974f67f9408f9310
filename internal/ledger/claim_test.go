package ledger

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestClaimIsUniqueUnderConcurrency(t *testing.T) {
	_, _, db := newLedger(t)
	ctx := testCtx(t)
	// A pool wide enough that the claims really race in the server.
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 50
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := intent("ns/r", "1000")
	const n = 100
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		won     int
		ids     = map[string]bool{}
		errs    []error
		lostSaw = map[Status]int{}
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := l.Claim(ctx, in)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			ids[c.Payment.ID] = true
			if c.Won {
				won++
			} else {
				lostSaw[c.Payment.Status]++
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d claims failed, first: %v", len(errs), errs[0])
	}
	if won != 1 || len(ids) != 1 || lostSaw[StatusVerifying] != n-1 {
		t.Fatalf("won=%d ids=%d losers saw %v; want exactly one winner, one row, %d losers seeing verifying", won, len(ids), lostSaw, n-1)
	}
}

func TestClaimNormalisesPayerAndNonce(t *testing.T) {
	l, _, _ := newLedger(t)
	in := intent("ns/r", "1")
	claimWon(t, l, in)
	upper := in
	upper.Payer = "0x" + strings.ToUpper(in.Payer[2:])
	upper.Nonce = "0x" + strings.ToUpper(in.Nonce[2:])
	c, err := l.Claim(testCtx(t), upper)
	if err != nil {
		t.Fatal(err)
	}
	if c.Won {
		t.Fatal("the same payment with a checksummed payer and upper-case nonce was claimed twice")
	}
}

func TestClaimRejectsMalformedIntents(t *testing.T) {
	l, _, _ := newLedger(t)
	for name, mutate := range map[string]func(*Intent){
		"no payer":       func(i *Intent) { i.Payer = "" },
		"short nonce":    func(i *Intent) { i.Nonce = "0x1234" },
		"decimal amount": func(i *Intent) { i.Amount = "0.01" },
		"negative":       func(i *Intent) { i.Amount = "-1" },
		"no endpoint":    func(i *Intent) { i.Endpoint = "" },
	} {
		in := intent("ns/r", "1")
		mutate(&in)
		if _, err := l.Claim(testCtx(t), in); !errors.Is(err, ErrInvalidIntent) {
			t.Errorf("%s: Claim error = %v, want ErrInvalidIntent", name, err)
		}
	}
}

func TestClaimOfExistingRowsAnswersFromTheirState(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)

	in := intent("ns/r", "5")
	id, tx := settle(t, l, in)
	c, err := l.Claim(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if c.Won || c.Payment.ID != id || c.Payment.Status != StatusSettled || c.Payment.TxHash != tx ||
		c.Payment.ResponseSummary != "200 OK" || c.Payment.Route != "ns/r" {
		t.Fatalf("replay of a settled payment: %+v", c)
	}

	pending := intent("ns/r", "5")
	pc := claimWon(t, l, pending)
	if err := l.MarkSettling(ctx, pc.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkPending(ctx, pc.Ticket, "", "facilitator timeout"); err != nil {
		t.Fatal(err)
	}
	c, err = l.Claim(ctx, pending)
	if err != nil {
		t.Fatal(err)
	}
	if c.Won || c.Payment.Status != StatusPending {
		t.Fatalf("replay of a pending payment: %+v", c)
	}
}

func TestReleaseFreesTheNonce(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	in := intent("ns/r", "5")
	first := claimWon(t, l, in)
	if err := l.Release(ctx, first.Ticket, "upstream returned 500"); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, l, first.Ticket.ID, StatusReleased)

	again := claimWon(t, l, in)
	if again.Ticket.ID != first.Ticket.ID || again.Ticket.Seq != first.Ticket.Seq+1 || again.Payment.Status != StatusVerifying {
		t.Fatalf("reclaim after release: %+v (first %+v)", again, first)
	}
	// The first claim's ticket is stale: it must not advance the new claim.
	if err := l.MarkSettling(ctx, first.Ticket); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("MarkSettling with a stale ticket: %v", err)
	}
	if err := l.Release(ctx, first.Ticket, "late"); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("Release with a stale ticket: %v", err)
	}
	if err := l.MarkSettling(ctx, again.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkSettled(ctx, again.Ticket, newTxHash(), "", true); err != nil {
		t.Fatal(err)
	}
	p := mustStatus(t, l, again.Ticket.ID, StatusSettled)
	if p.Claims != 2 || p.FailureReason != "" {
		t.Fatalf("settled after reclaim: claims=%d reason=%q", p.Claims, p.FailureReason)
	}
}

func TestFailedPaymentMayBeClaimedAgain(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	in := intent("ns/r", "5")
	c := claimWon(t, l, in)
	if err := l.MarkSettling(ctx, c.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkFailed(ctx, c.Ticket, "", "insufficient_funds"); err != nil {
		t.Fatal(err)
	}
	again := claimWon(t, l, in)
	if again.Payment.FailureReason != "" || again.Ticket.Seq != 2 {
		t.Fatalf("reclaim after failure: %+v", again)
	}
}
