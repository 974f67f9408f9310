package insforgetest

import (
	"context"
	"sync"
	"testing"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestPrepareCreatesRolesAndDefaultGrants(t *testing.T) {
	ctx := context.Background()
	db := NewDatabase(t, Options{AuthJWT: true})
	db.Exec(t, AsProjectAdmin("CREATE TABLE public.notes (id int)"))
	pool := db.Pool(t)

	var bypass bool
	if err := pool.QueryRow(ctx, "SELECT rolbypassrls FROM pg_roles WHERE rolname = 'project_admin'").Scan(&bypass); err != nil {
		t.Fatal(err)
	}
	if !bypass {
		t.Fatal("project_admin lacks BYPASSRLS")
	}
	var owner string
	if err := pool.QueryRow(ctx, "SELECT tableowner FROM pg_tables WHERE tablename = 'notes'").Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if owner != RoleProjectAdmin {
		t.Fatalf("table owner = %q, want project_admin", owner)
	}
	// A table created after Prepare must be open to anon and authenticated, as on InsForge.
	for _, role := range []string{RoleAnon, RoleAuthenticated} {
		var ok bool
		if err := pool.QueryRow(ctx, "SELECT has_table_privilege($1, 'public.notes', 'SELECT,INSERT,UPDATE,DELETE')", role).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("%s has no DML on a new public table", role)
		}
	}
	var sub string
	if err := pool.QueryRow(ctx, `SELECT set_config('request.jwt.claims', '{"sub":"user_2x"}', false), auth.jwt() ->> 'sub'`).Scan(new(string), &sub); err != nil {
		t.Fatal(err)
	}
	if sub != "user_2x" {
		t.Fatalf("auth.jwt() ->> 'sub' = %q", sub)
	}
}

func TestPrepareWithoutAuthJWTHasNoAuthSchema(t *testing.T) {
	db := NewDatabase(t, Options{})
	var n int
	if err := db.Pool(t).QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE nspname = 'auth'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("auth schema exists although AuthJWT was false")
	}
}

func TestPrepareIsSafeConcurrently(t *testing.T) {
	dbs := []*pgtest.Database{pgtest.NewDatabase(t), pgtest.NewDatabase(t), pgtest.NewDatabase(t)}
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = PrepareURL(context.Background(), db.URL, db.Name, Options{AuthJWT: true})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Preparing again is a no-op, not an error.
	Prepare(t, dbs[0], Options{AuthJWT: true})
}
