package rls

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
)

func TestVerifyPassesAndLeavesNothingBehind(t *testing.T) {
	for _, authJWT := range []bool{true, false} {
		db := newTestDB(t, insforgetest.Options{AuthJWT: authJWT})
		db.asAdmin(t, todosDDL+`; CREATE TABLE public.readonly (id int NOT NULL, user_id text)`)
		spec := providerSpec(ProviderClerk)
		spec.Tables = append(spec.Tables, Table{Name: "readonly", Commands: []Command{CommandSelect}})
		apply(t, db.pool, spec)
		before := snapshot(t, db)

		v, err := Verify(ctxT(t), db.pool, spec)
		if err != nil {
			t.Fatal(err)
		}
		if !v.OK() || !v.HelperReturnsSubject {
			t.Fatalf("verification failed on a freshly applied database: %s", v.Summary())
		}
		if v.Tables[0].Isolation != IsolationPassed || !v.Tables[0].RLSActive {
			t.Errorf("todos: %+v", v.Tables[0])
		}
		if v.Tables[1].Isolation != IsolationNotRun || v.Tables[1].Note == "" {
			t.Errorf("readonly: isolation = %s, want NotRun with a note", v.Tables[1].Isolation)
		}
		if got := db.scalar(t, `SELECT count(*) FROM public.todos`); got != "0" {
			t.Fatalf("verification left %s rows behind", got)
		}
		if snapshot(t, db) != before {
			t.Fatal("verification changed the catalogs")
		}
	}
}

// TestVerifyGoesOnAfterAFailedInsert: the checks of all tables go out as one query, which an
// insert that fails ends; the tables after it are still checked.
func TestVerifyGoesOnAfterAFailedInsert(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{AuthJWT: true})
	db.asAdmin(t, todosDDL+`; CREATE TABLE public.strict (id int NOT NULL, user_id text);
		CREATE TABLE public.refusing (id serial, user_id text); CREATE TABLE public.notes (id serial, user_id text)`)
	spec := providerSpec(ProviderClerk)
	spec.Tables = []Table{{Name: "strict"}, {Name: "refusing"}, {Name: "todos", ManageColumn: true}, {Name: "notes"}}
	apply(t, db.pool, spec)
	db.asAdmin(t, `ALTER POLICY myapp_refusing_insert ON public.refusing WITH CHECK (false)`)

	v, err := Verify(ctxT(t), db.pool, spec)
	if err != nil {
		t.Fatal(err)
	}
	strict, refusing, todos, notes := v.Tables[0], v.Tables[1], v.Tables[2], v.Tables[3]
	if strict.Isolation != IsolationNotRun || !strings.Contains(strict.Note, "cannot be inserted") || !strict.RLSActive {
		t.Errorf("strict: %+v", strict)
	}
	if refusing.Isolation != IsolationFailed || !strings.Contains(strings.Join(refusing.Problems, ";"), "a user cannot insert its own row") {
		t.Errorf("refusing: %+v", refusing)
	}
	for _, tv := range []TableVerification{todos, notes} {
		if tv.Isolation != IsolationPassed || !tv.OK() || !tv.RLSActive {
			t.Errorf("%s after a failed insert: %+v", tv.Table, tv)
		}
	}
	if !v.HelperReturnsSubject {
		t.Error("the helper did not return the subject")
	}
	if got := db.scalar(t, `SELECT (SELECT count(*) FROM public.todos) + (SELECT count(*) FROM public.notes)`); got != "0" {
		t.Fatalf("verification left %s rows behind", got)
	}
}

// TestVerifyAfterASteadyReconcileReusesItsObservation: after a Reconcile that found nothing,
// VerifyAfter reads no catalog again and finds what Verify finds; after one that changed
// something it observes again.
func TestVerifyAfterASteadyReconcileReusesItsObservation(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{AuthJWT: true})
	db.asAdmin(t, todosDDL)
	spec := providerSpec(ProviderClerk)
	first := apply(t, db.pool, spec)
	observations := func() int {
		n := 0
		for _, sql := range db.tracer.sql {
			if strings.Contains(sql, "JOIN pg_policy pol ON pol.polrelid = c.oid") {
				n++
			}
		}
		return n
	}
	db.tracer.reset()
	if v, err := VerifyAfter(ctxT(t), db.pool, spec, first); err != nil || !v.OK() || observations() != 1 {
		t.Fatalf("after an apply: %v, %+v, %d observations, want 1", err, v, observations())
	}
	steady := apply(t, db.pool, spec)
	db.tracer.reset()
	v, err := VerifyAfter(ctxT(t), db.pool, spec, steady)
	if err != nil || !v.OK() || v.Tables[0].Isolation != IsolationPassed || !v.HelperReturnsSubject {
		t.Fatalf("after a steady reconcile: %v, %+v", err, v)
	}
	if n := observations(); n != 0 {
		t.Fatalf("observed the catalogs %d times again after a steady reconcile", n)
	}
	db.asAdmin(t, `ALTER TABLE public.todos DISABLE ROW LEVEL SECURITY`)
	observed, err := Reconcile(ctxT(t), db.pool, spec, Options{Mode: ModeObserve})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := VerifyAfter(ctxT(t), db.pool, spec, observed); err != nil || v.OK() {
		t.Fatalf("after a reconcile that found drift: %v, OK %v", err, v.OK())
	}
}

func TestVerifyDetectsDisabledRLSAndAPermissivePolicy(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{AuthJWT: true})
	db.asAdmin(t, todosDDL+`; CREATE TABLE public.notes (id serial, user_id text)`)
	spec := providerSpec(ProviderKinde)
	spec.Tables = append(spec.Tables, Table{Name: "notes"})
	apply(t, db.pool, spec)
	db.asAdmin(t, `ALTER TABLE public.todos DISABLE ROW LEVEL SECURITY;
		CREATE POLICY "everyone reads" ON public.notes FOR SELECT TO authenticated USING (true)`)

	v, err := Verify(ctxT(t), db.pool, spec)
	if err != nil {
		t.Fatal(err)
	}
	if v.OK() {
		t.Fatal("verification passed with RLS disabled")
	}
	todos, notes := v.Tables[0], v.Tables[1]
	if todos.RLSEnabled || todos.Isolation != IsolationFailed || !strings.Contains(strings.Join(todos.Problems, ";"), "row level security disabled on public.todos") {
		t.Errorf("todos: %+v", todos)
	}
	// notes' own policies are intact, but a hand-written permissive policy leaks rows: only the
	// behavioural check can see that.
	if notes.Isolation != IsolationFailed || !strings.Contains(strings.Join(notes.Problems, ";"), "could read") {
		t.Errorf("notes: %+v", notes)
	}
}

// TestUserACannotReadUserBsRows drives the generated policies the way PostgREST does, with
// committed rows from two users.
func TestUserACannotReadUserBsRows(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{AuthJWT: true})
	db.asAdmin(t, todosDDL)
	apply(t, db.pool, providerSpec(ProviderClerk))
	ctx := ctxT(t)

	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	as := func(sub string, fn func(tx pgx.Tx) error) error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `SELECT set_config('request.jwt.claims', $1, true)`, `{"sub":"`+sub+`","role":"authenticated"}`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE authenticated"); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	insert := func(title string) func(pgx.Tx) error {
		return func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO public.todos (title) VALUES ($1)", title)
			return err
		}
	}
	const userA, userB = "user_2xPnG8KxVQr", "auth0|64a1b2"
	for _, step := range []struct {
		sub string
		fn  func(pgx.Tx) error
	}{{userA, insert("a1")}, {userA, insert("a2")}, {userB, insert("b1")}} {
		if err := as(step.sub, step.fn); err != nil {
			t.Fatal(err)
		}
	}

	titles := func(sub string) string {
		var got string
		if err := as(sub, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT coalesce(string_agg(title, ',' ORDER BY title), '') FROM public.todos").Scan(&got)
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := titles(userA); got != "a1,a2" {
		t.Errorf("user A sees %q, want a1,a2", got)
	}
	if got := titles(userB); got != "b1" {
		t.Errorf("user B sees %q, want b1", got)
	}
	if got := titles("kp_nobody"); got != "" {
		t.Errorf("a third user sees %q", got)
	}

	// B can neither change nor delete A's rows, nor write a row in A's name.
	var n int64
	if err := as(userB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE public.todos SET title = 'stolen' WHERE user_id = $1", userA)
		n = tag.RowsAffected()
		if err != nil {
			return err
		}
		tag, err = tx.Exec(ctx, "DELETE FROM public.todos WHERE user_id = $1", userA)
		n += tag.RowsAffected()
		return err
	}); err != nil || n != 0 {
		t.Fatalf("B changed %d of A's rows (err %v)", n, err)
	}
	err = as(userB, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO public.todos (title, user_id) VALUES ('forged', $1)", userA)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Fatalf("B inserted a row as A: err = %v", err)
	}
	// Without claims (anon-like request as authenticated), nothing is visible: policies fail closed.
	var count int64
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE authenticated"); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM public.todos").Scan(&count); err != nil || count != 0 {
		t.Fatalf("without claims: %d rows visible (err %v)", count, err)
	}
}
