package rls

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
)

func TestApplyIsOneTransaction(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{})
	db.asAdmin(t, todosDDL)
	// notes is owned by the superuser, so project_admin's ALTER TABLE fails after todos was done.
	db.Exec(t, `CREATE TABLE public.notes (id int, user_id text)`)
	spec := providerSpec(ProviderClerk)
	spec.Tables = append(spec.Tables, Table{Name: "notes"})
	before := snapshot(t, db)

	_, err := Reconcile(ctxT(t), db.pool, spec, Options{})
	if err == nil || !strings.Contains(err.Error(), "must be owner") || !IsTerminal(err) {
		t.Fatalf("err = %v, want a terminal 'must be owner'", err)
	}
	// The statements go out as one query; the error still names the difference that failed.
	if !strings.Contains(err.Error(), "fixing default of column user_id of public.notes") {
		t.Fatalf("err = %v, want it to name the failing difference", err)
	}
	if snapshot(t, db) != before {
		t.Fatal("a failed apply left part of its changes behind")
	}
}

func TestApplyWaitsForTheIntegrationLock(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{})
	db.asAdmin(t, todosDDL)
	spec := providerSpec(ProviderClerk)
	ctx := ctxT(t)

	holder, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", IntegrationLockKey(spec.Owner)); err != nil {
		t.Fatal(err)
	}
	_, err = Reconcile(ctx, db.pool, spec, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil || !IsTransient(err) || !strings.Contains(err.Error(), "lock timeout") {
		t.Fatalf("err = %v, want a transient lock timeout while another apply holds the lock", err)
	}
	// Observe mode takes no lock.
	if _, err := Reconcile(ctx, db.pool, spec, Options{Mode: ModeObserve}); err != nil {
		t.Fatalf("observe blocked by the apply lock: %v", err)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	apply(t, db.pool, spec)
}

func TestConcurrentIntegrations(t *testing.T) {
	db := newTestDB(t, insforgetest.Options{})
	const n = 6
	var ddl []string
	for i := range n {
		ddl = append(ddl, fmt.Sprintf("CREATE TABLE public.t%d (id int, user_id text)", i))
	}
	db.asAdmin(t, strings.Join(ddl, ";\n"))

	run := func(specs []Spec) []error {
		errs := make([]error, len(specs))
		var wg sync.WaitGroup
		for i, s := range specs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = Reconcile(ctxT(t), db.pool, s, Options{})
			}()
		}
		wg.Wait()
		return errs
	}
	// Distinct tables: all succeed, sharing the helper.
	var specs []Spec
	for i := range n {
		specs = append(specs, Spec{Name: fmt.Sprintf("i%d", i), Owner: fmt.Sprintf("ns/i%d", i), Provider: ProviderClerk,
			Role: insforgetest.RoleProjectAdmin, Tables: []Table{{Name: fmt.Sprintf("t%d", i)}}})
	}
	for i, err := range run(specs) {
		if err != nil {
			t.Fatalf("integration %d: %v", i, err)
		}
	}
	// The same new table claimed by several at once: exactly one wins, the others see its policies.
	db.asAdmin(t, "CREATE TABLE public.shared (id int, user_id text)")
	for i := range specs {
		specs[i].Tables = append(specs[i].Tables, Table{Name: "shared"})
	}
	var won, conflicts int
	for _, err := range run(specs) {
		var ce *ConflictError
		switch {
		case err == nil:
			won++
		case errors.As(err, &ce):
			conflicts++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if won != 1 || conflicts != n-1 {
		t.Fatalf("%d won and %d conflicted, want 1 and %d", won, conflicts, n-1)
	}
}
