package pgpool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

func closed(p *pgxpool.Pool) bool {
	return p.Ping(context.Background()) != nil
}

func TestCacheSharesPerDSNAndClosesWhenUnused(t *testing.T) {
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t)
	var configured int
	c := NewCache(func(cfg *pgxpool.Config) { configured++; cfg.MaxConns = 2 })
	defer c.Close()

	a, err := c.Acquire(ctx, "ns/a", db.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Acquire(ctx, "ns/b", db.URL)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.Acquire(ctx, "ns/a", db.URL)
	if a != b || a != again || c.Len() != 1 || configured != 1 || a.Config().MaxConns != 2 {
		t.Fatalf("same DSN: pools differ or were configured %d times", configured)
	}
	c.Release("ns/a")
	if closed(a) {
		t.Fatal("pool closed while ns/b still uses it")
	}
	c.Release("ns/b")
	if !closed(a) || c.Len() != 0 {
		t.Fatal("pool left open after its last user released it")
	}
	c.Release("ns/unknown") // no-op
}

func TestCacheDSNChangeReleasesTheOldPool(t *testing.T) {
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t)
	c := NewCache(nil)
	defer c.Close()

	old, err := c.Acquire(ctx, "ns/a", db.URL)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := c.Acquire(ctx, "ns/a", db.URL+"&application_name=rotated")
	if err != nil {
		t.Fatal(err)
	}
	if old == rotated || !closed(old) || closed(rotated) || c.Len() != 1 {
		t.Fatal("a DSN change did not swap and close the old pool")
	}
	c.Close()
	if !closed(rotated) || c.Len() != 0 {
		t.Fatal("Close left a pool open")
	}
}

func TestCacheBadDSNIsRefusedWithoutQuotingIt(t *testing.T) {
	c := NewCache(nil)
	// A URL with a password and values that are not URLs at all (an API key, a JSON key file,
	// a user:pass pair put in the wrong Secret): pgx quotes these in its parse errors.
	for _, dsn := range []string{
		"postgres://u:s3cret@localhost:notaport/db",
		"sk_live_s3cret",
		`{"type":"service_account","private_key":"s3cret"}`,
		"admin:s3cret",
	} {
		_, err := c.Acquire(ctxT(t), "ns/a", dsn)
		if !errors.Is(err, ErrInvalidDSN) {
			t.Fatalf("%q: err = %v, want ErrInvalidDSN", dsn, err)
		}
		if got := err.Error(); strings.Contains(got, "s3cret") {
			t.Fatalf("error leaks the value: %s", got)
		}
	}
	if c.Len() != 0 {
		t.Fatal("a failed acquire left a pool")
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t)
	c := NewCache(nil)
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("ns/%d", i)
			p, err := c.Acquire(ctx, key, db.URL)
			if err == nil {
				err = p.Ping(ctx)
			}
			if i%2 == 0 {
				c.Release(key)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 1 {
		t.Fatalf("%d pools for one DSN", c.Len())
	}
	for i := 1; i < 40; i += 2 {
		c.Release(fmt.Sprintf("ns/%d", i))
	}
	if c.Len() != 0 {
		t.Fatal("pool open after every user released it")
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// A connection error names the user and the database pgx parsed, and a malformed value can put
// a password there; Redact keeps them out and the chain intact.
func TestRedactDropsWhatTheConnectErrorQuotes(t *testing.T) {
	err := pgtest.ConnectError(t, "postgres://app@127.0.0.1:1/db%0Apassword=MARKER?connect_timeout=2")
	wrapped := fmt.Errorf("reconciling: %w", err)
	if !strings.Contains(wrapped.Error(), "MARKER") {
		t.Fatalf("the test's premise changed: pgx no longer quotes the database: %v", wrapped)
	}
	got := Redact(wrapped)
	if strings.Contains(got.Error(), "MARKER") || strings.Contains(got.Error(), "user=app") {
		t.Errorf("Redact kept what the error quotes: %v", got)
	}
	if !strings.HasPrefix(got.Error(), "reconciling: failed to connect: ") || !strings.Contains(got.Error(), "127.0.0.1:1") {
		t.Errorf("Redact lost the context or the host: %v", got)
	}
	var ce *pgconn.ConnectError
	if !errors.As(got, &ce) {
		t.Error("the chain was lost")
	}
	if Redact(nil) != nil {
		t.Error("Redact(nil) != nil")
	}
	plain := errors.New("plain")
	if Redact(plain) != plain {
		t.Error("an error without a connection error was changed")
	}
}
