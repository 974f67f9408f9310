package rls

import (
	"slices"
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
)

const todosDDL = `CREATE TABLE public.todos (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text NOT NULL DEFAULT '', user_id text)`

func providerSpec(p Provider) Spec {
	s := Spec{Name: "myapp", Owner: "default/myapp", Provider: p, Role: insforgetest.RoleProjectAdmin,
		Tables: []Table{{Name: "todos", ManageColumn: true}}}
	if p == ProviderBetterAuth {
		s.Tables = append(s.Tables, Table{Name: "notes", Create: true})
	}
	return s
}

func TestApplyEachProviderThenSteadyStateExecutesNothing(t *testing.T) {
	for _, p := range []Provider{ProviderClerk, ProviderAuth0, ProviderWorkOS, ProviderKinde, ProviderStytch, ProviderBetterAuth} {
		for _, authJWT := range []bool{true, false} {
			name := string(p)
			if !authJWT {
				name += "/without-auth.jwt"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				db := newTestDB(t, insforgetest.Options{AuthJWT: authJWT})
				db.asAdmin(t, todosDDL)
				if p == ProviderBetterAuth {
					// Better Auth's migrate creates its tables; one granted to the API roles must be closed.
					db.Exec(t, `CREATE SCHEMA better_auth; CREATE TABLE better_auth."user" (id text PRIMARY KEY);
						GRANT USAGE ON SCHEMA better_auth TO anon; GRANT SELECT ON better_auth."user" TO authenticated`)
				}
				spec := providerSpec(p)

				first := apply(t, db.pool, spec)
				if first.StatementCount() == 0 || !first.Drifted() {
					t.Fatalf("first apply executed nothing: %+v", first)
				}
				if got := first.Executed[len(first.Executed)-1]; got != notifySQL {
					t.Errorf("last statement = %q, want the PostgREST reload", got)
				}

				db.tracer.reset()
				second := apply(t, db.pool, spec)
				if second.StatementCount() != 0 || second.Drifted() {
					t.Fatalf("second apply found %v and executed %v", diffObjects(second.Differences), second.Executed)
				}
				if ch := db.tracer.changes(); len(ch) != 0 {
					t.Fatalf("steady-state reconcile sent non-read statements: %q", ch)
				}

				if got := db.scalar(t, `SELECT count(*) FROM pg_policies WHERE tablename = 'todos' AND policyname LIKE 'myapp_todos_%' AND roles = '{authenticated}'`); got != "4" {
					t.Errorf("%s policies on todos, want 4", got)
				}
				if got := db.scalar(t, `SELECT relrowsecurity FROM pg_class WHERE oid = 'public.todos'::regclass`); got != "true" {
					t.Error("RLS not enabled on todos")
				}
				if got := db.scalar(t, `SELECT proowner::regrole FROM pg_proc WHERE proname = 'requesting_user_id'`); got != insforgetest.RoleProjectAdmin {
					t.Errorf("helper owned by %s, want project_admin (SET ROLE)", got)
				}
				if got := db.scalar(t, `SELECT format_type(atttypid, atttypmod) || ' ' || pg_get_expr(adbin, adrelid)
					FROM pg_attribute JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
					WHERE attrelid = 'public.todos'::regclass AND attname = 'user_id'`); got != "text requesting_user_id()" {
					t.Errorf("user_id column = %q", got)
				}
				if p == ProviderBetterAuth {
					if got := db.scalar(t, `SELECT has_schema_privilege('anon', 'better_auth', 'USAGE') OR has_table_privilege('authenticated', 'better_auth."user"', 'SELECT')`); got != "false" {
						t.Error("API roles still reach better_auth")
					}
				}
			})
		}
	}
}

func TestDriftIsObservedWithoutChangeThenFixed(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{AuthJWT: true})
	db.asAdmin(t, todosDDL)
	spec := providerSpec(ProviderClerk)
	apply(t, db.pool, spec)

	db.Exec(t, `DROP POLICY myapp_todos_select ON public.todos;
		ALTER TABLE public.todos DISABLE ROW LEVEL SECURITY;
		ALTER TABLE public.todos ALTER COLUMN user_id SET DEFAULT 'nobody';
		ALTER POLICY myapp_todos_update ON public.todos USING (true);
		COMMENT ON POLICY myapp_todos_delete ON public.todos IS NULL`)

	before := snapshot(t, db)
	db.tracer.reset()
	obs, err := Reconcile(ctxT(t), db.pool, spec, Options{Mode: ModeObserve})
	if err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, db); after != before {
		t.Fatalf("observe mode changed the catalogs:\nbefore\n%s\nafter\n%s", before, after)
	}
	if ch := db.tracer.changes(); len(ch) != 0 || obs.StatementCount() != 0 {
		t.Fatalf("observe mode sent %q", ch)
	}
	got := diffObjects(obs.Differences)
	want := []string{
		`default of column user_id of public.todos: is 'nobody'::text, want public.requesting_user_id()`,
		"row level security on public.todos: disabled",
		"policy myapp_todos_select on public.todos: missing",
		`policy myapp_todos_update on public.todos: USING is "true", want "\"user_id\" = (SELECT public.requesting_user_id())"`,
		"policy myapp_todos_delete on public.todos: ownership comment missing",
	}
	if obs.Summary() != strings.Join(want, "; ") {
		t.Errorf("summary = %q", obs.Summary())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("differences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	fixed := apply(t, db.pool, spec)
	for _, s := range fixed.Executed {
		if strings.HasPrefix(s, "CREATE INDEX") || strings.HasPrefix(s, "CREATE OR REPLACE FUNCTION") ||
			strings.Contains(s, "myapp_todos_insert") || (strings.Contains(s, "myapp_todos_delete") && !strings.HasPrefix(s, "COMMENT")) {
			t.Errorf("apply ran a statement for something that had not drifted: %s", s)
		}
	}
	if n := fixed.StatementCount(); n != 10 { // default, RLS, 2x(drop, create, comment), comment, NOTIFY
		t.Errorf("fix executed %d statements, want 10: %q", n, fixed.Executed)
	}
	if again := apply(t, db.pool, spec); again.StatementCount() != 0 {
		t.Fatalf("drift not fixed: %v", diffObjects(again.Differences))
	}
}

func TestObserveOnUntouchedDatabaseChangesNothing(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{})
	db.asAdmin(t, todosDDL)
	before := snapshot(t, db)
	res, err := Reconcile(ctxT(t), db.pool, providerSpec(ProviderBetterAuth), Options{Mode: ModeObserve})
	if err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, db); after != before {
		t.Fatalf("observe changed the catalogs")
	}
	plan, _ := Plan(providerSpec(ProviderBetterAuth))
	// The fixes are the plan minus what InsForge's defaults already provide: the column exists,
	// no API role holds privileges in the (missing) better_auth schema, and authenticated may
	// already use public and the existing todos table.
	var want []string
	for _, s := range plan {
		if strings.HasPrefix(s, "REVOKE") || strings.Contains(s, "ADD COLUMN") ||
			strings.HasPrefix(s, "GRANT USAGE ON SCHEMA") || strings.HasPrefix(s, `GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."todos"`) {
			continue
		}
		want = append(want, s)
	}
	if got := Statements(res.Differences); !slices.Equal(got, want) {
		t.Fatalf("observed fixes on an untouched database:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPoliciesRemovedFromTheSpecAreDropped(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{})
	db.asAdmin(t, todosDDL+`; CREATE TABLE public.notes (id int, user_id text)`)
	spec := providerSpec(ProviderAuth0)
	spec.Tables = append(spec.Tables, Table{Name: "notes"})
	apply(t, db.pool, spec)

	spec.Tables = []Table{{Name: "todos", Commands: []Command{CommandSelect, CommandInsert}}}
	res := apply(t, db.pool, spec)
	var dropped []string
	for _, d := range res.Differences {
		if d.Problem == "no longer in the spec" {
			dropped = append(dropped, d.Object)
		}
	}
	if len(dropped) != 6 {
		t.Fatalf("dropped %q, want the 4 notes policies and todos update/delete", dropped)
	}
	if got := db.scalar(t, `SELECT string_agg(policyname, ',' ORDER BY policyname) FROM pg_policies`); got != "myapp_todos_insert,myapp_todos_select" {
		t.Fatalf("policies left: %s", got)
	}
}

// TestOwnedOnLimitsTheSearchForRemovedPolicies: with OwnedOn the owner's policies are looked for
// on the spec's tables and those only (no scan of every policy comment); nil, and observe mode,
// search the whole database.
func TestOwnedOnLimitsTheSearchForRemovedPolicies(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{})
	db.asAdmin(t, todosDDL+`; CREATE TABLE public.notes (id int, user_id text); CREATE TABLE public.other (id int, user_id text)`)
	spec := providerSpec(ProviderAuth0)
	spec.Tables = append(spec.Tables, Table{Name: "notes"})
	apply(t, db.pool, spec)
	spec.Tables = spec.Tables[:1]
	notes := []TableRef{{Schema: "public", Name: "notes"}}
	removed := func(res *Result) int {
		n := 0
		for _, d := range res.Differences {
			if d.Problem == "no longer in the spec" {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		name string
		opts Options
		want int
	}{
		{"observe mode, OwnedOn elsewhere", Options{Mode: ModeObserve, OwnedOn: []TableRef{{Schema: "public", Name: "other"}}}, 4},
		{"observe mode, OwnedOn empty", Options{Mode: ModeObserve, OwnedOn: []TableRef{}}, 4},
	} {
		res, err := Reconcile(ctxT(t), db.pool, spec, c.opts)
		if err != nil || removed(res) != c.want {
			t.Fatalf("%s: %v, %d removed policies found, want %d", c.name, err, removed(res), c.want)
		}
	}
	db.tracer.reset()
	res, err := Reconcile(ctxT(t), db.pool, spec, Options{OwnedOn: []TableRef{}})
	if err != nil || removed(res) != 0 {
		t.Fatalf("spec tables only: %v, %d removed policies found, want 0 (notes is not searched)", err, removed(res))
	}
	for _, sql := range db.tracer.sql {
		if strings.Contains(sql, "WHERE d.description = $1") {
			t.Fatalf("searched every policy comment with OwnedOn set: %s", sql)
		}
	}
	if res := apply(t, db.pool, spec); removed(res) != 4 {
		t.Fatalf("OwnedOn nil: %d removed policies dropped, want the 4 of notes", removed(res))
	}
	spec.Tables = append(spec.Tables, Table{Name: "notes"})
	apply(t, db.pool, spec)
	spec.Tables = spec.Tables[:1]
	res, err = Reconcile(ctxT(t), db.pool, spec, Options{OwnedOn: notes})
	if err != nil || removed(res) != 4 {
		t.Fatalf("OwnedOn notes: %v, %d removed policies dropped, want 4", err, removed(res))
	}
	if got := db.scalar(t, `SELECT count(*) FROM pg_policies WHERE tablename = 'notes'`); got != "0" {
		t.Fatalf("%s policies left on notes", got)
	}
}

// TestQuotedIdentifiersReachSteadyState applies the golden "quoting" spec, whose names need
// quoting everywhere, and checks that the observation matches what was generated.
func TestQuotedIdentifiersReachSteadyState(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{})
	db.asAdmin(t, `CREATE TABLE public.contacts (id int, owner text)`)
	spec := goldenSpecs["quoting"]
	spec.Role = insforgetest.RoleProjectAdmin
	apply(t, db.pool, spec)
	if res := apply(t, db.pool, spec); res.StatementCount() != 0 {
		t.Fatalf("quoted names never converge: %v", diffObjects(res.Differences))
	}
	v, err := Verify(ctxT(t), db.pool, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK() {
		t.Fatalf("verification: %s", v.Summary())
	}
	if got := db.scalar(t, `SELECT count(*) FROM pg_policies WHERE schemaname = 'Sales App' AND tablename = 'Deals "2026"'`); got != "2" {
		t.Fatalf("%s policies on the quoted table, want 2", got)
	}
}
