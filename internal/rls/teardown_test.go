package rls

import (
	"slices"
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
)

func TestTeardownKeepsTheHelperWhileAnotherIntegrationUsesIt(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{AuthJWT: true})
	db.asAdmin(t, todosDDL+`; CREATE TABLE public.notes (id int, user_id text)`)
	a := Spec{Name: "a", Owner: "ns/a", Provider: ProviderClerk, Role: insforgetest.RoleProjectAdmin, Tables: []Table{{Name: "todos"}}}
	b := Spec{Name: "b", Owner: "ns/b", Provider: ProviderAuth0, Role: insforgetest.RoleProjectAdmin, Tables: []Table{{Name: "notes"}}}
	apply(t, db.pool, a)
	apply(t, db.pool, b)

	ra, err := Teardown(ctxT(t), db.pool, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(ra.DroppedPolicies) != 4 || ra.HelperDropped {
		t.Fatalf("teardown a: %+v", ra)
	}
	if !slices.ContainsFunc(ra.HelperUsers, func(u string) bool { return strings.Contains(u, "policy b_notes_select on table notes") }) {
		t.Errorf("helper users %q do not name b's policies", ra.HelperUsers)
	}
	if got := db.scalar(t, `SELECT string_agg(DISTINCT tablename, ',') FROM pg_policies`); got != "notes" {
		t.Fatalf("tables with policies after a's teardown: %s", got)
	}
	if got := db.scalar(t, `SELECT relrowsecurity FROM pg_class WHERE oid = 'public.todos'::regclass`); got != "true" {
		t.Error("teardown disabled RLS, opening the table to the API roles")
	}
	if got := db.scalar(t, `SELECT count(*) FROM pg_proc WHERE proname = 'requesting_user_id'`); got != "1" {
		t.Fatal("helper dropped while b still uses it")
	}
	// b is unaffected by a's teardown.
	if res := apply(t, db.pool, b); res.StatementCount() != 0 {
		t.Fatalf("b drifted after a's teardown: %v", diffObjects(res.Differences))
	}

	rb, err := Teardown(ctxT(t), db.pool, b)
	if err != nil {
		t.Fatal(err)
	}
	// todos' default still calls the helper, but todos is a's table, not b's: the helper stays
	// until nothing outside b uses it.
	if rb.HelperDropped || !slices.ContainsFunc(rb.HelperUsers, func(u string) bool { return strings.Contains(u, "todos") }) {
		t.Fatalf("teardown b: %+v", rb)
	}
	db.asAdmin(t, `ALTER TABLE public.todos ALTER COLUMN user_id DROP DEFAULT`)
	rb, err = Teardown(ctxT(t), db.pool, b)
	if err != nil {
		t.Fatal(err)
	}
	if !rb.HelperDropped || len(rb.HelperUsers) != 0 {
		t.Fatalf("helper not dropped once unused: %+v", rb)
	}
	if got := db.scalar(t, `SELECT count(*) FROM pg_proc WHERE proname = 'requesting_user_id'`); got != "0" {
		t.Fatal("helper still exists")
	}
}

func TestTeardownKeepsTheHelperForHandWrittenUsers(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{})
	db.asAdmin(t, todosDDL)
	a := providerSpec(ProviderWorkOS)
	apply(t, db.pool, a)
	db.asAdmin(t, `CREATE FUNCTION public.my_rows() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM public.todos WHERE user_id = public.requesting_user_id() $$`)
	res, err := Teardown(ctxT(t), db.pool, a)
	if err != nil {
		t.Fatal(err)
	}
	if res.HelperDropped || !slices.Contains(res.HelperUsers, "function my_rows()") {
		t.Fatalf("teardown: %+v", res)
	}
	// Teardown is rerun-safe: a second run finds nothing to drop and executes nothing.
	again, err := Teardown(ctxT(t), db.pool, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Executed) != 0 {
		t.Fatalf("second teardown executed %q", again.Executed)
	}
}
