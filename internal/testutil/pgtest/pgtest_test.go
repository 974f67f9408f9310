package pgtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDatabaseIsFreshAndIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := NewDatabase(t), NewDatabase(t)
	if a.Name == b.Name {
		t.Fatalf("two tests got the same database %q", a.Name)
	}
	a.Exec(t, "CREATE TABLE only_in_a (id int)")

	pool := b.Pool(t)
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("a table created in %s is visible in %s", a.Name, b.Name)
	}

	var listen string
	if err := pool.QueryRow(ctx, "SHOW listen_addresses").Scan(&listen); err != nil {
		t.Fatal(err)
	}
	if os.Getenv(EnvDatabaseURL) == "" && listen != "127.0.0.1" {
		t.Fatalf("listen_addresses = %q, want 127.0.0.1 only", listen)
	}
}

func TestDatabaseIsDroppedAfterTheTest(t *testing.T) {
	var name string
	t.Run("user", func(t *testing.T) { name = NewDatabase(t).Name })

	admin, err := sharedURL()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}

func TestServerStopsAndRestartsWithItsData(t *testing.T) {
	s := StartServer(t, Options{Settings: map[string]string{"application_name": "pgtest"}})
	db := s.NewDatabase(t)
	db.Exec(t, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, db.URL); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatalf("connecting after restart: %v", err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "still here" {
		t.Fatalf("after restart got %q, %v", v, err)
	}
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Fatalf("fsync = %q (%v), want off for speed", fsync, err)
	}
}

func TestMissingBinariesFailWithInstallHint(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findBinDirIn(nil)
	if err == nil {
		t.Fatal("found server binaries in an empty search list")
	}
	for _, want := range []string{"no PostgreSQL server binaries found", "apt-get install postgresql", EnvDatabaseURL} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
