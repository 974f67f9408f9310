package authintegration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/pgpool"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/fleetbench"
	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// benchTables is the number of tables each benchmark integration manages.
const benchTables = 3

// controllerName is the AuthIntegration controller's name in controller-runtime's metrics.
const controllerName = "authintegration"

// BenchmarkAuthIntegrationFleet creates N AuthIntegrations (3 tables each, one PostgreSQL) under a
// running manager with the shipped client limits and concurrency (fleetbench.LimitsFromEnv), and
// reports the time until all are Ready, then stops that manager and starts another (a restart or
// a leader change: every integration is reconciled once more, as a drift check does) and reports
// the time until it has reconciled all N and is idle. Both phases report the API requests and
// writes per integration and the time spent in client-side rate limiters; the resync must execute
// no SQL statement. Run it with -benchtime 1x; FLEET_N=100,1000 picks the sizes. See
// docs/benchmarks.md, "Fleet scale".
func BenchmarkAuthIntegrationFleet(b *testing.B) {
	for _, n := range fleetbench.Sizes(b, 100, 1000) {
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
	db := fleetDatabase(b, env, ns, n)
	stmts := fleetbench.Statements{URL: db.URL}
	limits := fleetbench.LimitsFromEnv(b, defaultConcurrency)
	probe := fleetbench.NewProbe(limits)
	cfg := probe.Config(env.Config)
	b.Logf("limits: %+v", limits)

	stop, r := startFleetManager(b, env, cfg, limits.Concurrency, ns)
	statementsBefore := testutil.ToFloat64(r.metrics.statements)
	b.ResetTimer()
	stmts.Reset(b)
	ready0 := testutil.ToFloat64(r.metrics.integrations.Gauge(kit.StateReady))
	reconciles := fleetbench.Reconciles(b, controllerName)
	s0 := probe.Sample(b)
	parallel(b, n, func(i int) error { return env.Client.Create(ctx, benchIntegration(ns, i)) })
	// The reconciler's own count first (no API load), then the API's word for it.
	controllertest.Eventually(b, 30*time.Minute, func() string {
		if got := testutil.ToFloat64(r.metrics.integrations.Gauge(kit.StateReady)) - ready0; got < float64(n) {
			return fmt.Sprintf("%v of %d ready", got, n)
		}
		return ""
	})
	waitAll(b, env.Client, ns, n, func(ai *integrationsv1alpha1.AuthIntegration) bool {
		return meta.IsStatusConditionTrue(ai.Status.Conditions, integrationsv1alpha1.ConditionReady) &&
			ai.Status.ObservedGeneration == ai.Generation
	})
	s1 := probe.Sample(b)
	stmts.Log(b, "to all Ready", n)
	applied := testutil.ToFloat64(r.metrics.statements) - statementsBefore
	s1.Since(s0).Report(b, "ready", n)
	b.ReportMetric(applied/float64(n), "stmts/obj-apply")
	b.ReportMetric((fleetbench.Reconciles(b, controllerName)-reconciles)/float64(n), "reconciles/obj-ready")

	// What follows Ready until the controller is idle and the manager has sent everything (the
	// events are sent in the background).
	waitIdle(b, 0)
	probe.WaitQuiet(b, 2*time.Second)
	s2 := probe.Sample(b)
	b.ReportMetric(float64(s2.Since(s1).Requests.Writes().Total())/float64(n), "writes/obj-after-ready")
	b.ReportMetric(fleetbench.HeapMiB(), "heap-MiB")

	// Warm resync: a change of the connection Secret (a label here; a new password in real life)
	// makes every integration reconcile with the manager's caches and pool warm, as the periodic
	// drift checks do one by one.
	before := testutil.ToFloat64(r.metrics.statements)
	reconciles = fleetbench.Reconciles(b, controllerName)
	stmts.Reset(b)
	s3 := probe.Sample(b)
	touchSecret(b, env, ns, "insforge-db")
	waitIdle(b, reconciles+float64(n))
	s4 := probe.Sample(b)
	s4.Since(s3).Report(b, "resync", n)
	stmts.Log(b, "resync", n)
	resyncStatements := testutil.ToFloat64(r.metrics.statements) - before
	b.ReportMetric(resyncStatements, "stmts-resync")
	stop()
	if resyncStatements != 0 {
		b.Fatalf("a steady resync of %d integrations executed %v statements, want 0", n, resyncStatements)
	}

	// Restart: a new manager (a restart, a leader change) reconciles every integration once with
	// cold caches and a new pool; nothing differs.
	before = testutil.ToFloat64(r.metrics.statements)
	reconciles = fleetbench.Reconciles(b, controllerName)
	stmts.Reset(b)
	s5 := probe.Sample(b)
	stop, _ = startFleetManager(b, env, cfg, limits.Concurrency, ns)
	waitIdle(b, reconciles+float64(n))
	s6 := probe.Sample(b)
	b.StopTimer()
	stop()
	s6.Since(s5).Report(b, "restart", n)
	stmts.Log(b, "restart", n)
	restartStatements := testutil.ToFloat64(r.metrics.statements) - before
	b.ReportMetric(restartStatements, "stmts-restart")
	if restartStatements != 0 {
		b.Fatalf("a steady restart of %d integrations executed %v statements, want 0", n, restartStatements)
	}
}

// touchSecret changes a Secret's labels, which makes every resource referencing it reconcile.
func touchSecret(tb testing.TB, env *kubetest.Env, ns, name string) {
	tb.Helper()
	var sec corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &sec); err != nil {
		tb.Fatal(err)
	}
	sec.Labels["fleetbench-touched"] = strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := env.Client.Update(context.Background(), &sec); err != nil {
		tb.Fatal(err)
	}
}

// fleetDatabase creates the tables of n integrations in a new InsForge database and the
// connection Secret in ns.
func fleetDatabase(tb testing.TB, env *kubetest.Env, ns string, n int) *pgtest.Database {
	tb.Helper()
	db := insforgetest.NewDatabase(tb, insforgetest.Options{AuthJWT: true})
	for lo := 0; lo < n; lo += 100 { // in batches: each Exec has a 30 s budget
		var ddl strings.Builder
		for i := lo; i < min(lo+100, n); i++ {
			for j := range benchTables {
				fmt.Fprintf(&ddl, "CREATE TABLE public.%s (id bigserial PRIMARY KEY, title text);\n", pgx.Identifier{benchTable(i, j)}.Sanitize())
			}
		}
		db.Exec(tb, insforgetest.AsProjectAdmin(ddl.String()))
	}
	controllertest.PutSecret(tb, env.Client, ns, "insforge-db", map[string]string{"uri": db.URL})
	return db
}

// startFleetManager runs a manager built from cfg with the AuthIntegration controller only.
func startFleetManager(tb testing.TB, env *kubetest.Env, cfg *rest.Config, concurrency int, ns string) (stop func(), r *Reconciler) {
	tb.Helper()
	stop = controllertest.StartManagerWith(tb, env, controllertest.ManagerOptions{Config: cfg}, func(mgr ctrl.Manager) error {
		pools := pgpool.NewCache(nil)
		if err := mgr.Add(manager.RunnableFunc(pools.Run)); err != nil {
			return err
		}
		var err error
		r, err = Setup(mgr, pools, Options{Concurrency: concurrency})
		return err
	}, ns)
	return stop, r
}

// waitIdle waits until the controller has finished at least reconciles reconciles in all and
// has nothing queued or running, twice in a row 200 ms apart.
func waitIdle(tb testing.TB, reconciles float64) {
	tb.Helper()
	quiet := 0
	controllertest.Eventually(tb, 30*time.Minute, func() string {
		done := fleetbench.Reconciles(tb, controllerName)
		if done < reconciles || !fleetbench.Idle(tb, controllerName) {
			quiet = 0
			time.Sleep(150 * time.Millisecond)
			return fmt.Sprintf("%v of %v reconciles, or still busy", done, reconciles)
		}
		if quiet++; quiet < 2 {
			time.Sleep(150 * time.Millisecond)
			return "idle once"
		}
		return ""
	})
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
func parallel(tb testing.TB, n int, fn func(i int) error) {
	tb.Helper()
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
		tb.Fatal(err)
	}
}

// waitAll polls the namespace until done holds for all n integrations. It lists at most every
// 250 ms: the list of a large fleet is itself work for the API server the manager shares.
func waitAll(tb testing.TB, c client.Client, ns string, n int, done func(*integrationsv1alpha1.AuthIntegration) bool) {
	tb.Helper()
	controllertest.Eventually(tb, 30*time.Minute, func() string {
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
			time.Sleep(200 * time.Millisecond)
			return fmt.Sprintf("%d of %d done", count, n)
		}
		return ""
	})
}
