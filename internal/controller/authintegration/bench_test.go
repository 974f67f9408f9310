package authintegration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

// benchTables is the number of tables each benchmark integration manages.
const benchTables = 3

// BenchmarkAuthIntegrationFleet creates N AuthIntegrations (3 tables each, one PostgreSQL) under a
// running manager and reports the time until all are Ready, then asks every one to resync
// (reconcile.fluxcd.io/requestedAt) and reports that time and the statements the resync
// executed, which must be zero. Run it with -benchtime 1x; see docs/benchmarks.md.
func BenchmarkAuthIntegrationFleet(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchFleet(b, n)
			}
		})
	}
}

func benchFleet(b *testing.B, n int) {
	ctx := context.Background()
	env := kubetest.Shared(b)
	ns := env.Namespace(b)
	db := insforgetest.NewDatabase(b, insforgetest.Options{AuthJWT: true})
	for lo := 0; lo < n; lo += 100 { // in batches: each Exec has a 30 s budget
		var ddl strings.Builder
		for i := lo; i < min(lo+100, n); i++ {
			for j := range benchTables {
				fmt.Fprintf(&ddl, "CREATE TABLE public.%s (id bigserial PRIMARY KEY, title text);\n", pgx.Identifier{benchTable(i, j)}.Sanitize())
			}
		}
		db.Exec(b, insforgetest.AsProjectAdmin(ddl.String()))
	}
	controllertest.PutSecret(b, env.Client, ns, "insforge-db", map[string]string{"uri": db.URL})

	r := startManager(b, env, ns)
	statementsBefore := testutil.ToFloat64(r.metrics.statements)
	b.ResetTimer()
	start := time.Now()
	parallel(b, n, func(i int) error {
		ai := benchIntegration(ns, i)
		return env.Client.Create(ctx, ai)
	})
	waitAll(b, env.Client, ns, n, func(ai *integrationsv1alpha1.AuthIntegration) bool {
		return meta.IsStatusConditionTrue(ai.Status.Conditions, integrationsv1alpha1.ConditionReady) &&
			ai.Status.ObservedGeneration == ai.Generation
	})
	ready := time.Since(start)
	applied := testutil.ToFloat64(r.metrics.statements) - statementsBefore

	// Steady resync: every integration observes and verifies again; nothing differs.
	token := time.Now().UTC().Format(time.RFC3339Nano)
	before := testutil.ToFloat64(r.metrics.statements)
	start = time.Now()
	parallel(b, n, func(i int) error {
		ai := &integrationsv1alpha1.AuthIntegration{}
		ai.Namespace, ai.Name = ns, benchName(i)
		patch := client.RawPatch("application/merge-patch+json",
			[]byte(`{"metadata":{"annotations":{"`+kit.AnnotationRequestedAt+`":"`+token+`"}}}`))
		return env.Client.Patch(ctx, ai, patch)
	})
	waitAll(b, env.Client, ns, n, func(ai *integrationsv1alpha1.AuthIntegration) bool {
		return ai.Status.LastHandledReconcileAt == token
	})
	resync := time.Since(start)
	b.StopTimer()
	resyncStatements := testutil.ToFloat64(r.metrics.statements) - before
	if resyncStatements != 0 {
		b.Fatalf("a steady resync of %d integrations executed %v statements, want 0", n, resyncStatements)
	}
	b.ReportMetric(ready.Seconds(), "s-to-all-ready")
	b.ReportMetric(applied/float64(n), "stmts-per-apply")
	b.ReportMetric(resync.Seconds(), "s-resync-all")
	b.ReportMetric(resyncStatements, "stmts-resync")
}

func benchName(i int) string { return fmt.Sprintf("app%04d", i) }

func benchTable(i, j int) string { return fmt.Sprintf("t%04d_%d", i, j) }

func benchIntegration(ns string, i int) *integrationsv1alpha1.AuthIntegration {
	ai := todos(benchName(i))
	ai.Namespace = ns
	ai.Spec.Provider = integrationsv1alpha1.ProviderKinde
	ai.Spec.Tables = nil
	for j := range benchTables {
		ai.Spec.Tables = append(ai.Spec.Tables, integrationsv1alpha1.ManagedTable{Name: benchTable(i, j)})
	}
	ai.Spec.DriftCheckInterval = &metav1.Duration{Duration: time.Hour}
	return ai
}

// parallel runs fn for 0..n-1 on a few goroutines and fails the benchmark on the first error.
func parallel(b *testing.B, n int, fn func(i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// waitAll polls the namespace until done holds for all n integrations.
func waitAll(b *testing.B, c client.Client, ns string, n int, done func(*integrationsv1alpha1.AuthIntegration) bool) {
	b.Helper()
	controllertest.Eventually(b, 30*time.Minute, func() string {
		var list integrationsv1alpha1.AuthIntegrationList
		if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err.Error()
		}
		count := 0
		for i := range list.Items {
			if done(&list.Items[i]) {
				count++
			}
		}
		if count < n {
			return fmt.Sprintf("%d of %d done", count, n)
		}
		return ""
	})
}
