package ledger

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// recorder collects notifications and connects from a Listen goroutine.
type recorder struct {
	mu       sync.Mutex
	got      []Notification
	connects int
}

func (r *recorder) handle(n Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
}

func (r *recorder) onConnect(context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.connects++
}

func (r *recorder) snapshot() ([]Notification, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Notification(nil), r.got...), r.connects
}

// startListen runs Listen until the test ends and waits for its first connection.
func startListen(t *testing.T, pool *pgxpool.Pool) *recorder {
	t.Helper()
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Listen(ctx, pool, ListenConfig{OnConnect: r.onConnect, MinBackoff: 20 * time.Millisecond}, r.handle)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Listen returned %v, want context.Canceled", err)
		}
	})
	eventually(t, "the listener to connect", func() bool { _, c := r.snapshot(); return c >= 1 })
	return r
}

func TestNotificationsWithoutRealtime(t *testing.T) {
	l, pool, _ := newLedger(t)
	ctx := testCtx(t)
	r := startListen(t, pool)

	settledID, settledTx := settle(t, l, intent("ns/a", "10"))
	b := claimWon(t, l, intent("ns/a", "20"))
	if err := l.MarkSettling(ctx, b.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkPending(ctx, b.Ticket, "", "timeout"); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkFailed(ctx, b.Ticket, "", "authorization expired"); err != nil {
		t.Fatal(err)
	}
	c := claimWon(t, l, intent("ns/a", "30"))
	if err := l.Release(ctx, c.Ticket, "upstream 500"); err != nil {
		t.Fatal(err)
	}
	mock := intent("ns/b", "40")
	mock.Mock = true
	sentinelID, _ := settle(t, l, mock)

	eventually(t, "four notifications", func() bool { got, _ := r.snapshot(); return len(got) >= 4 })
	got, _ := r.snapshot()
	want := []Notification{
		{ID: settledID, Route: "ns/a", Status: StatusSettled, Amount: "10", TxHash: settledTx},
		{ID: b.Ticket.ID, Route: "ns/a", Status: StatusPending, Amount: "20"},
		{ID: b.Ticket.ID, Route: "ns/a", Status: StatusFailed, Amount: "20"},
		{ID: sentinelID, Route: "ns/b", Status: StatusSettled, Amount: "40", Mock: true},
	}
	if len(got) != len(want) {
		t.Fatalf("notifications: %+v, want %+v", got, want)
	}
	for i := range want {
		if i == 3 {
			got[i].TxHash = "" // random
		}
		if got[i] != want[i] {
			t.Errorf("notification %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestListenReconnectsAfterServerRestart(t *testing.T) {
	ctx := testCtx(t)
	srv := pgtest.StartServer(t, pgtest.Options{})
	db := srv.NewDatabase(t)
	pool := db.Pool(t)
	if _, err := Migrate(ctx, pool, Options{}); err != nil {
		t.Fatal(err)
	}
	r := startListen(t, pool)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the listener to reconnect", func() bool { _, c := r.snapshot(); return c >= 2 })

	writer, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	l, err := New(writer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := settle(t, l, intent("ns/a", "1"))
	eventually(t, "the notification after reconnecting", func() bool {
		got, _ := r.snapshot()
		return len(got) == 1 && got[0].ID == id && got[0].Status == StatusSettled
	})
}
