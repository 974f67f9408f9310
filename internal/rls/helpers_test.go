package rls

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testDB is an InsForge-like database with a pool whose every statement is recorded.
type testDB struct {
	*pgtest.Database
	pool   *pgxpool.Pool
	tracer *recorder
}

func newTestDB(t *testing.T, opts insforgetest.Options) *testDB {
	t.Helper()
	db := insforgetest.NewDatabase(t, opts)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &testDB{Database: db, pool: pool, tracer: rec}
}

// asAdmin runs SQL as project_admin, which owns public objects on InsForge.
func (d *testDB) asAdmin(t *testing.T, sql string) {
	t.Helper()
	d.Exec(t, insforgetest.AsProjectAdmin(sql))
}

func (d *testDB) scalar(t *testing.T, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := d.pool.QueryRow(context.Background(), "SELECT ("+sql+")::text", args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// recorder is a pgx tracer that records every statement sent to the server.
type recorder struct {
	mu  sync.Mutex
	sql []string
}

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sql = append(r.sql, data.SQL)
	return ctx
}

func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// The observation and the locks are pipelined batches: their statements are recorded too.
func (r *recorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (r *recorder) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sql = append(r.sql, data.SQL)
}

func (r *recorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// reset forgets the statements recorded so far.
func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sql = nil
}

// changes returns the recorded statements that are not plain reads.
func (r *recorder) changes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.sql {
		head := strings.ToUpper(strings.Fields(strings.TrimSpace(s) + " x")[0])
		switch head {
		case "SELECT", "BEGIN", "COMMIT", "ROLLBACK", "SET", "X":
			// SET LOCAL ROLE and set_config/advisory locks change no persistent state.
			continue
		}
		out = append(out, s)
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apply reconciles in apply mode and fails the test on error.
func apply(t *testing.T, db DB, s Spec) *Result {
	t.Helper()
	res, err := Reconcile(ctxT(t), db, s, Options{Mode: ModeApply})
	if err != nil {
		t.Fatalf("apply %s: %v", s.Owner, err)
	}
	return res
}

// catalogSnapshot renders everything the engine may change, to prove that something did not.
const catalogSnapshot = `
SELECT concat_ws(E'\n',
  (SELECT string_agg(format('%s %s %s %s %s %s', polrelid::regclass, polname, polcmd, polroles,
          pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)), E'\n' ORDER BY polrelid::regclass::text, polname) FROM pg_policy),
  (SELECT string_agg(format('%s rls=%s acl=%s', oid::regclass, relrowsecurity, relacl), E'\n' ORDER BY oid::regclass::text)
     FROM pg_class WHERE relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname IN ('public', 'better_auth')) AND relkind IN ('r', 'i')),
  (SELECT string_agg(format('%s %s', adrelid::regclass, pg_get_expr(adbin, adrelid)), E'\n' ORDER BY 1) FROM pg_attrdef),
  (SELECT string_agg(format('%s %s', oid::regprocedure, prosrc), E'\n' ORDER BY 1) FROM pg_proc WHERE pronamespace = 'public'::regnamespace),
  (SELECT string_agg(format('%s %s', nspname, nspacl), E'\n' ORDER BY 1) FROM pg_namespace),
  (SELECT string_agg(description, E'\n' ORDER BY 1) FROM pg_description WHERE classoid = 'pg_policy'::regclass))`

func snapshot(t *testing.T, d *testDB) string {
	t.Helper()
	return d.scalar(t, catalogSnapshot)
}

func diffObjects(diffs []Difference) []string {
	var out []string
	for _, d := range diffs {
		out = append(out, d.String())
	}
	return out
}
