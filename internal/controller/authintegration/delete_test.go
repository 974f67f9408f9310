package authintegration

import (
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
)

// deleteObject asks the API server to delete the integration.
func (f *fixture) deleteObject(name string) {
	f.t.Helper()
	if err := f.c.Delete(f.ctx, f.Get(name)); err != nil {
		f.t.Fatal(err)
	}
}

// gone reports whether the integration no longer exists.
func (f *fixture) gone(name string) bool {
	f.t.Helper()
	var ai integrationsv1alpha1.AuthIntegration
	err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, &ai)
	if err != nil && !apierrors.IsNotFound(err) {
		f.t.Fatal(err)
	}
	return apierrors.IsNotFound(err)
}

func TestDeletionPolicyDeleteDropsThePolicies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	userTable(t, f.db, "todos")
	ai := todos("app")
	ai.Spec.DeletionPolicy = integrationsv1alpha1.DeletionDelete
	ai.Spec.Exports = []integrationsv1alpha1.SecretExport{{SecretName: "app-export"}}
	f.Create(ai)
	f.reconcileOK("app")
	owner := f.Get("app")
	controllertest.AssertReady(t, owner, "")
	if !controllerutil.ContainsFinalizer(owner, authFinalizer) {
		t.Fatal("no finalizer with deletionPolicy Delete")
	}
	// envtest runs no garbage collector: the owner references are what deletes these Secrets.
	for _, name := range []string{"app-jwt", "app-export"} {
		if sec := f.getSecret(name); !metav1.IsControlledBy(sec, owner) {
			t.Fatalf("Secret %s is not controlled by the integration: %+v", name, sec.OwnerReferences)
		}
	}
	if f.r.Pools.Len() != 1 || f.policyCount("todos", "app") != 4 {
		t.Fatal("setup did not apply")
	}

	f.deleteObject("app")
	if f.gone("app") {
		t.Fatal("the finalizer did not hold the object")
	}
	f.reconcileOK("app")
	if !f.gone("app") {
		t.Fatal("the finalizer was not removed after the teardown")
	}
	if n := f.policyCount("todos", "app"); n != 0 {
		t.Fatalf("%d policies left after Delete", n)
	}
	if f.queryInt(`SELECT count(*)::int FROM pg_proc WHERE proname = 'requesting_user_id'`) != 0 {
		t.Fatal("the helper stayed although nothing else uses it")
	}
	if !f.rlsEnabled("todos") {
		t.Fatal("teardown disabled RLS, opening the table to the API roles")
	}
	if f.r.Pools.Len() != 0 {
		t.Fatal("the pool was not released")
	}
	if !f.events.Has(reasonTornDown) {
		t.Fatalf("no TornDown event: %v", f.events.All())
	}
}

func TestDeletionPolicyRetainLeavesTheDatabase(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	userTable(t, f.db, "todos")
	ai := todos("app")
	ai.Spec.DeletionPolicy = integrationsv1alpha1.DeletionDelete
	f.Create(ai)
	f.reconcileOK("app")
	if !controllerutil.ContainsFinalizer(f.Get("app"), authFinalizer) {
		t.Fatal("no finalizer with deletionPolicy Delete")
	}

	// Switching to Retain removes the finalizer.
	f.Update("app", func(ai *integrationsv1alpha1.AuthIntegration) {
		ai.Spec.DeletionPolicy = integrationsv1alpha1.DeletionRetain
	})
	f.reconcileOK("app")
	if controllerutil.ContainsFinalizer(f.Get("app"), authFinalizer) {
		t.Fatal("the finalizer stayed after switching to Retain")
	}

	f.deleteObject("app")
	if !f.gone("app") {
		t.Fatal("a Retain integration waited for the operator on deletion")
	}
	f.reconcileOK("app")
	if f.policyCount("todos", "app") != 4 || !f.rlsEnabled("todos") {
		t.Fatal("Retain touched the database")
	}
	if f.r.Pools.Len() != 0 {
		t.Fatal("the pool was not released")
	}
}

func TestDeletionNeverBlocksForever(t *testing.T) {
	t.Parallel()
	t.Run("connection Secret gone", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		userTable(t, f.db, "todos")
		ai := todos("app")
		ai.Spec.DeletionPolicy = integrationsv1alpha1.DeletionDelete
		f.Create(ai)
		f.reconcileOK("app")
		if err := f.c.Delete(f.ctx, f.getSecret("insforge-db")); err != nil {
			t.Fatal(err)
		}
		f.deleteObject("app")
		f.reconcileOK("app")
		if !f.gone("app") {
			t.Fatal("a missing connection Secret blocked deletion")
		}
		if f.policyCount("todos", "app") != 4 {
			t.Fatal("policies dropped without the connection Secret?")
		}
		if !f.events.Has(reasonTeardownSkipped) {
			t.Fatalf("no TeardownSkipped event: %v", f.events.All())
		}
	})
	t.Run("database unreachable", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		userTable(t, f.db, "todos")
		ai := todos("app")
		ai.Spec.DeletionPolicy = integrationsv1alpha1.DeletionDelete
		f.Create(ai)
		f.reconcileOK("app")
		// The database name carries a line and a "password": what pgx quotes of the URL in a
		// connection error must not reach status, events or the returned (logged) error.
		f.secret("insforge-db", map[string]string{"uri": "postgres://op:pw@127.0.0.1:1/insforge%0Apassword=MARKER?connect_timeout=2"})
		f.deleteObject("app")
		deletedAt := f.Get("app").DeletionTimestamp.Time

		f.clock.SetTime(deletedAt.Add(time.Minute))
		_, err := f.reconcile("app")
		if err == nil {
			t.Fatal("a failed teardown did not ask for a retry")
		}
		controllertest.AssertNoLeak(t, f.Get("app"), append(f.events.All(), err.Error()), "MARKER")
		got := f.Get("app")
		c := controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReconciling, metav1.ConditionTrue, integrationsv1alpha1.ReasonDeleting)
		if !strings.Contains(c.Message, "retrying until") {
			t.Fatalf("Reconciling message %q does not say until when", c.Message)
		}

		f.clock.SetTime(deletedAt.Add(defaultDeletionTimeout))
		f.reconcileOK("app")
		if !f.gone("app") {
			t.Fatal("the finalizer outlived the deletion timeout")
		}
		if !f.events.Has(reasonTeardownSkipped) {
			t.Fatalf("no TeardownSkipped event: %v", f.events.All())
		}
		if strings.Contains(strings.Join(f.events.All(), "\n"), "MARKER") {
			t.Fatalf("the connection string reached an event: %v", f.events.All())
		}
	})
}
