// Package pgtest gives tests a real, ephemeral PostgreSQL server.
//
// A test binary shares one server (started on first use, stopped by Main) and every test gets a
// fresh database on it, so tests stay isolated without paying for initdb each time. Tests that
// need to stop and start a server themselves (fault tests) start their own with StartServer.
//
// The server binaries are looked up on PATH, through `pg_config --bindir`, and under
// /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as root, so when the test runs as root the
// server runs as the unprivileged `postgres` user (or `nobody`). If TEST_DATABASE_URL is set, that
// server is used instead and nothing is started. When no server can be had, tests fail with a
// message saying how to get one: they never skip.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvDatabaseURL names the variable that points tests at an existing server instead of starting one.
// The URL must be for a role that may CREATE DATABASE.
const EnvDatabaseURL = "TEST_DATABASE_URL"

// shared is the one server of this test binary. It is package state on purpose: the point of
// the harness is to share one server between all tests of a binary; Main stops it at exit.
var shared struct {
	once   sync.Once
	server *Server
	url    string
	err    error
}

// Main runs the tests of a package and stops the shared server afterwards. Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown stops and removes the shared server if it was started. Call it from a TestMain that
// also shuts down other harnesses (and so cannot use Main).
func Shutdown() {
	if shared.server != nil {
		if err := shared.server.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping the shared server: %v\n", err)
		}
		shared.server.Remove()
	}
}

// sharedURL returns the admin URL of the shared server, starting it on first use.
func sharedURL() (string, error) {
	shared.once.Do(func() {
		if u := os.Getenv(EnvDatabaseURL); u != "" {
			shared.url = u
			return
		}
		s, err := startServer(Options{})
		if err != nil {
			shared.err = err
			return
		}
		shared.server, shared.url = s, s.URL("postgres")
	})
	return shared.url, shared.err
}

// Database is a fresh, empty database that exists for one test.
type Database struct {
	// Name is the database name.
	Name string
	// URL connects to it as a superuser.
	URL string
}

// NewDatabase creates a fresh database on the shared server and drops it when the test ends.
func NewDatabase(t testing.TB) *Database {
	t.Helper()
	admin, err := sharedURL()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return createDatabase(t, admin)
}

// Pool opens a connection pool to the database that is closed when the test ends.
func (d *Database) Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, d.URL)
	if err != nil {
		t.Fatalf("pgtest: opening a pool on %s: %v", d.Name, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Exec runs SQL on the database (several statements allowed) and fails the test on error.
func (d *Database) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", d.Name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: exec on %s: %v\n%s", d.Name, err, sql)
	}
}

func createDatabase(t testing.TB, adminURL string) *Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatalf("pgtest: connecting to the test server: %v", err)
	}
	defer conn.Close(ctx)

	name := "test_" + randomHex(8)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("pgtest: connecting to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})

	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("pgtest: parsing the server URL: %v", err)
	}
	u.Path = "/" + name
	return &Database{Name: name, URL: u.String()}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error on supported platforms
	return hex.EncodeToString(b)
}
