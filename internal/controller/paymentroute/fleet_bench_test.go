package paymentroute

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
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
	heap0 := fleetbench.HeapMiB()
	stopPlaying := playDeploymentController(b, env, ns)
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
	slow := time.Now().Add(time.Minute)
	controllertest.Eventually(b, 30*time.Minute, func() string {
		got := fleetbench.MetricSum(b, "insforge_paymentroutes", map[string]string{"state": kit.StateReady}) - ready0
		if got >= float64(n) {
			return ""
		}
		if time.Now().After(slow) { // say why, once a minute
			slow = time.Now().Add(time.Minute)
			fmt.Fprintf(os.Stderr, "%v of %d ready; not ready: %s\n", got, n, notReady(env.Client, ns))
		}
		time.Sleep(100 * time.Millisecond)
		return fmt.Sprintf("%v of %d ready", got, n)
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
	stopPlaying() // its informer's Deployments are the benchmark's, not the manager's
	heap := fleetbench.HeapMiB()
	b.ReportMetric(heap, "heap-MiB")
	b.ReportMetric(heap-heap0, "heap-growth-MiB")
}

// notReady counts the routes of ns that are not Ready by their Ready condition's reason.
func notReady(c client.Client, ns string) string {
	var list integrationsv1alpha1.PaymentRouteList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		return err.Error()
	}
	reasons := map[string]int{}
	for i := range list.Items {
		ready := meta.FindStatusCondition(list.Items[i].Status.Conditions, integrationsv1alpha1.ConditionReady)
		switch {
		case ready == nil:
			reasons["no Ready condition"]++
		case ready.Status != metav1.ConditionTrue:
			reasons[ready.Reason+": "+ready.Message]++
		}
	}
	return fmt.Sprint(reasons)
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
// Deployment controller and the kubelets would, until stop or the end of the benchmark. It works from an
// informer (which watches again after the API server drops a slow watch) through a workqueue
// (which never blocks the informer and retries conflicts).
func playDeploymentController(tb testing.TB, env *kubetest.Env, ns string) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	informers, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	inf, err := informers.GetInformer(ctx, &appsv1.Deployment{})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	queue := workqueue.NewTyped[types.NamespacedName]()
	enqueue := func(obj any) {
		if d, ok := obj.(*appsv1.Deployment); ok {
			if ok, _ := kit.DeploymentAvailable(d); !ok {
				queue.Add(client.ObjectKeyFromObject(d))
			}
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		cancel()
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = informers.Start(ctx) })
	for range 8 {
		wg.Go(func() {
			for {
				key, shutdown := queue.Get()
				if shutdown {
					return
				}
				var d appsv1.Deployment
				if err := informers.Get(ctx, key, &d); err == nil {
					if ok, _ := kit.DeploymentAvailable(&d); !ok && markAvailable(ctx, env.Client, &d) != nil && ctx.Err() == nil {
						queue.Add(key) // a conflict: the cache will have the newer version
					}
				}
				queue.Done(key)
			}
		})
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); queue.ShutDown(); wg.Wait() }) }
	tb.Cleanup(stop)
	return stop
}

// markAvailable sets a Deployment's status to all replicas available (a conflict means a newer
// version is on its way through the watch).
func markAvailable(ctx context.Context, c client.Client, d *appsv1.Deployment) error {
	n := kit.Replicas(d)
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	return c.Status().Update(ctx, d)
}
