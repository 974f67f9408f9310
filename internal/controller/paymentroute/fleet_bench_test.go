package paymentroute

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/pgpool"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/fleetbench"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// routeController is the PaymentRoute controller's name in controller-runtime's metrics.
const routeController = "paymentroute"

// BenchmarkPaymentRouteFleet creates N PaymentRoutes (HTTP facilitator, one database and one
// ledger table for all) under a running manager with the shipped client limits and concurrency
// (fleetbench.LimitsFromEnv), plays the Deployment controller (envtest has none) and reports the
// time until all are Ready: each route's gateway objects applied, its ledger schema checked, its
// totals read and its status written. Then, with every route Ready, it counts the manager's API
// writes over one periodic resync of every route (target: none) and reports the manager's heap.
// Run it with -benchtime 1x; FLEET_N=100,1000 picks the sizes. See docs/benchmarks.md, "Fleet
// scale".
func BenchmarkPaymentRouteFleet(b *testing.B) {
	for _, n := range fleetbench.Sizes(b, 100, 1000) {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchRouteFleet(b, n)
			}
		})
	}
}

func benchRouteFleet(b *testing.B, n int) {
	ctx := context.Background()
	env := kubetest.Shared(b)
	ns := env.Namespace(b)
	db := pgtest.NewDatabase(b)
	controllertest.PutSecret(b, env.Client, ns, "insforge-db", map[string]string{"uri": db.URL})
	stmts := fleetbench.Statements{URL: db.URL}
	limits := fleetbench.LimitsFromEnv(b, concurrency)
	probe := fleetbench.NewProbe(limits)
	b.Logf("limits: %+v", limits)
	playDeploymentController(b, env, ns)

	heap0 := fleetbench.HeapMiB()
	r := startRouteFleetManager(b, env, probe.Config(env.Config), limits.Concurrency, ns)
	b.ResetTimer()
	stmts.Reset(b)
	reconciles := fleetbench.Reconciles(b, routeController)
	ready0 := fleetbench.MetricSum(b, "insforge_paymentroutes", map[string]string{"state": kit.StateReady})
	s0 := probe.Sample(b)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				pr := httpRoute(fmt.Sprintf("route%04d", i))
				pr.Namespace = ns
				if err := env.Client.Create(ctx, pr); err != nil {
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
	// The reconciler's own count first (no API load), then the API's word for it.
	controllertest.Eventually(b, 30*time.Minute, func() string {
		got := fleetbench.MetricSum(b, "insforge_paymentroutes", map[string]string{"state": kit.StateReady}) - ready0
		if got < float64(n) {
			time.Sleep(100 * time.Millisecond)
			return fmt.Sprintf("%v of %d ready", got, n)
		}
		return ""
	})
	controllertest.Eventually(b, 30*time.Minute, func() string {
		var list integrationsv1alpha1.PaymentRouteList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err.Error()
		}
		ready := 0
		for i := range list.Items {
			pr := &list.Items[i]
			if meta.IsStatusConditionTrue(pr.Status.Conditions, integrationsv1alpha1.ConditionReady) && pr.Status.ObservedGeneration == pr.Generation {
				ready++
			}
		}
		if ready < n {
			time.Sleep(200 * time.Millisecond)
			return fmt.Sprintf("%d of %d Ready", ready, n)
		}
		return ""
	})
	s1 := probe.Sample(b)
	s1.Since(s0).Report(b, "ready", n)
	stmts.Log(b, "to all Ready", n)
	b.ReportMetric((fleetbench.Reconciles(b, routeController)-reconciles)/float64(n), "reconciles/obj-ready")

	// Steady state: every route resyncs once (reads its totals and its children) and nothing
	// changed, so nothing may be written.
	waitRoutesIdle(b, 0)
	probe.WaitQuiet(b, 2*time.Second)
	reconciles = fleetbench.Reconciles(b, routeController)
	stmts.Reset(b)
	s2 := probe.Sample(b)
	time.Sleep(r.Resync + 10*time.Second)
	waitRoutesIdle(b, reconciles+float64(n))
	s3 := probe.Sample(b)
	b.StopTimer()
	steady := s3.Since(s2)
	steady.Report(b, "steady", n)
	stmts.Log(b, "steady", n)
	b.ReportMetric((fleetbench.Reconciles(b, routeController)-reconciles)/float64(n), "reconciles/obj-steady")
	heap := fleetbench.HeapMiB()
	b.ReportMetric(heap, "heap-MiB")
	b.ReportMetric(heap-heap0, "heap-growth-MiB")
}

// startRouteFleetManager runs a manager built from cfg with the PaymentRoute controller only.
func startRouteFleetManager(tb testing.TB, env *kubetest.Env, cfg *rest.Config, workers int, ns string) *Reconciler {
	tb.Helper()
	var r *Reconciler
	controllertest.StartManagerWith(tb, env, controllertest.ManagerOptions{Config: cfg}, func(mgr ctrl.Manager) error {
		pools := pgpool.NewCache(nil)
		if err := mgr.Add(manager.RunnableFunc(pools.Run)); err != nil {
			return err
		}
		var err error
		r, err = Setup(mgr, Options{GatewayImage: testGatewayImage, Concurrency: workers}, pools)
		return err
	}, ns)
	return r
}

// waitRoutesIdle waits until the controller has finished at least reconciles reconciles in all
// and has nothing queued or running, twice in a row 200 ms apart.
func waitRoutesIdle(tb testing.TB, reconciles float64) {
	tb.Helper()
	quiet := 0
	controllertest.Eventually(tb, 30*time.Minute, func() string {
		if fleetbench.Reconciles(tb, routeController) < reconciles || !fleetbench.Idle(tb, routeController) {
			quiet = 0
			time.Sleep(150 * time.Millisecond)
			return "busy"
		}
		if quiet++; quiet < 2 {
			time.Sleep(150 * time.Millisecond)
			return "idle once"
		}
		return ""
	})
}

// playDeploymentController marks every Deployment in ns available for its generation, as the
// Deployment controller and the kubelets would, until the benchmark ends.
func playDeploymentController(tb testing.TB, env *kubetest.Env, ns string) {
	tb.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(ctx, &appsv1.DeploymentList{}, client.InNamespace(ns))
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	done := make(chan struct{})
	tb.Cleanup(func() { cancel(); w.Stop(); <-done })
	work := make(chan *appsv1.Deployment, 1024)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for d := range work {
				markAvailable(ctx, env.Client, d)
			}
		})
	}
	go func() {
		defer close(done)
		defer wg.Wait()
		defer close(work)
		for ev := range w.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			if ok, _ := kit.DeploymentAvailable(d); !ok {
				work <- d
			}
		}
	}()
}

// markAvailable sets a Deployment's status to all replicas available (a conflict means a newer
// version is on its way through the watch).
func markAvailable(ctx context.Context, c client.Client, d *appsv1.Deployment) {
	n := kit.Replicas(d)
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	_ = c.Status().Update(ctx, d)
}
