package paymentroute

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// routeEnv is a running manager with the PaymentRoute controller, one namespace and one database.
type routeEnv struct {
	env *kubetest.Env
	ns  string
	db  *pgtest.Database
	r   *Reconciler
	l   *ledger.Ledger
}

// newRouteEnv starts a manager whose periodic resync is an hour, so that anything seen within a
// test's deadline came from the ledger's notifications.
func newRouteEnv(tb testing.TB, opts Options) *routeEnv {
	tb.Helper()
	env := kubetest.Shared(tb)
	e := &routeEnv{env: env, ns: env.Namespace(tb), db: pgtest.NewDatabase(tb)}
	controllertest.PutSecret(tb, env.Client, e.ns, "insforge-db", map[string]string{"uri": e.db.URL})
	e.r = startRouteManager(tb, env, opts, e.ns, func(r *Reconciler) { r.Resync = time.Hour })
	l, err := ledger.New(e.db.Pool(tb), ledger.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	e.l = l
	return e
}

func (e *routeEnv) route(tb testing.TB, name string) *integrationsv1alpha1.PaymentRoute {
	tb.Helper()
	var pr integrationsv1alpha1.PaymentRoute
	if err := e.env.Client.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: name}, &pr); err != nil {
		tb.Fatal(err)
	}
	return &pr
}

// createReady creates an http-facilitator route and waits for its ledger schema.
func (e *routeEnv) create(tb testing.TB, name string) {
	tb.Helper()
	pr := httpRoute(name)
	pr.Namespace = e.ns
	if err := e.env.Client.Create(context.Background(), pr); err != nil {
		tb.Fatal(err)
	}
	controllertest.Eventually(tb, 60*time.Second, func() string {
		c := meta.FindStatusCondition(e.route(tb, name).Status.Conditions, integrationsv1alpha1.ConditionLedgerReady)
		if c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Sprintf("%s: ledger not ready: %+v", name, c)
		}
		return ""
	})
}

func TestPaymentRouteTotalsFollowLedgerNotifications(t *testing.T) {
	e := newRouteEnv(t, Options{})
	e.create(t, "shop")
	e.create(t, "blog")
	if n := e.r.notices.Listeners(); n != 1 {
		t.Fatalf("%d listeners for two routes on one database, want 1", n)
	}

	ctx := context.Background()
	var last string
	for _, a := range []string{"10000", "20000", "30000"} {
		tx, err := pay(ctx, e.l, e.ns+"/shop", a, false)
		if err != nil {
			t.Fatal(err)
		}
		last = tx
	}
	if _, err := pay(ctx, e.l, e.ns+"/shop", "5", true); err != nil {
		t.Fatal(err)
	}
	if _, err := pay(ctx, e.l, e.ns+"/blog", "1000000", false); err != nil {
		t.Fatal(err)
	}

	controllertest.Eventually(t, 30*time.Second, func() string {
		shop, blog := e.route(t, "shop").Status, e.route(t, "blog").Status
		if shop.Settled.Count != 3 || shop.Settled.Total != "0.06" || shop.Settled.LastTxHash != last ||
			shop.MockSettled == nil || shop.MockSettled.Count != 1 || blog.Settled.Total != "1" {
			return fmt.Sprintf("shop settled %+v mock %+v; blog settled %+v", shop.Settled, shop.MockSettled, blog.Settled)
		}
		return ""
	})

	// Deleting one route keeps the shared listener; deleting both stops it.
	for i, name := range []string{"blog", "shop"} {
		if err := e.env.Client.Delete(ctx, e.route(t, name)); err != nil {
			t.Fatal(err)
		}
		want := 1 - i
		controllertest.Eventually(t, 30*time.Second, func() string {
			if n := e.r.notices.Listeners(); n != want {
				return fmt.Sprintf("%d listeners after deleting %s, want %d", n, name, want)
			}
			return ""
		})
	}
}

// burstResult is what runSettlementBurst measured.
type burstResult struct {
	// latencies from each settled row to the first status write that counts it, sorted.
	latencies []time.Duration
	// writes is the number of writes to the route during the burst.
	writes int
	// applies is the number of applies of the gateway objects during the burst.
	applies float64
}

func (b burstResult) percentile(p float64) time.Duration {
	if len(b.latencies) == 0 {
		return 0
	}
	return b.latencies[int(p*float64(len(b.latencies)-1))]
}

// runSettlementBurst settles n payments of 0.01 from workers goroutines, each pausing gap between
// its payments (0: as fast as the database takes them), and watches the route until its status
// counts them all.
func runSettlementBurst(tb testing.TB, n, workers int, gap time.Duration) burstResult {
	tb.Helper()
	e := newRouteEnv(tb, Options{})
	e.create(tb, "burst")
	if gap > 0 {
		// Let the route's own first writes age, so the first payment is isolated too.
		time.Sleep(gap)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	wc, err := client.NewWithWatch(e.env.Config, client.Options{Scheme: e.env.Scheme})
	if err != nil {
		tb.Fatal(err)
	}
	w, err := wc.Watch(ctx, &integrationsv1alpha1.PaymentRouteList{}, client.InNamespace(e.ns))
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Stop()
	type seen struct {
		at    time.Time
		count int64
	}
	var (
		mu      sync.Mutex
		updates []seen
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			pr, ok := ev.Object.(*integrationsv1alpha1.PaymentRoute)
			if !ok || ev.Type != watch.Modified {
				continue
			}
			mu.Lock()
			updates = append(updates, seen{at: time.Now(), count: pr.Status.Settled.Count})
			mu.Unlock()
			if pr.Status.Settled.Count >= int64(n) {
				return
			}
		}
	}()

	applies0 := testutil.ToFloat64(e.r.metrics.applies)
	settled := make([]time.Time, 0, n)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for wkr := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := wkr; i < n; i += workers {
				if _, err := pay(ctx, e.l, e.ns+"/burst", "10000", false); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				settled = append(settled, time.Now())
				mu.Unlock()
				time.Sleep(gap)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		tb.Fatalf("the status never counted %d payments: %+v", n, e.route(tb, "burst").Status.Settled)
	}
	if got := e.route(tb, "burst").Status.Settled; got.Count != int64(n) || got.Amount != fmt.Sprint(int64(n)*10000) {
		tb.Fatalf("settled %+v after %d payments of 10000", got, n)
	}

	mu.Lock()
	defer mu.Unlock()
	sort.Slice(settled, func(i, j int) bool { return settled[i].Before(settled[j]) })
	res := burstResult{writes: len(updates), applies: testutil.ToFloat64(e.r.metrics.applies) - applies0}
	for k, at := range settled {
		for _, u := range updates {
			if u.count >= int64(k+1) && !u.at.Before(at) {
				res.latencies = append(res.latencies, u.at.Sub(at))
				break
			}
		}
	}
	sort.Slice(res.latencies, func(i, j int) bool { return res.latencies[i] < res.latencies[j] })
	return res
}

func TestPaymentRouteCoalescesStatusWritesUnderABurst(t *testing.T) {
	const n = 1000
	res := runSettlementBurst(t, n, 8, 0)
	t.Logf("%d payments: %d status writes, %v applies; settled→status p50 %s p99 %s", n, res.writes, res.applies,
		res.percentile(0.5), res.percentile(0.99))
	if res.applies > 5 {
		t.Errorf("%v applies of unchanged gateway objects during the burst", res.applies)
	}
	if res.writes == 0 || res.writes >= n/10 {
		t.Fatalf("%d status writes for %d payments, want far fewer than one per payment", res.writes, n)
	}
	if len(res.latencies) != n {
		t.Fatalf("%d of %d payments were seen in a status write", len(res.latencies), n)
	}
}

// BenchmarkPaymentRouteSettledToStatus reports the time from a settled ledger row to the status
// write that counts it (p50/p99 over a burst of 1,000 payments) and the writes per 1,000.
// Run with -benchtime=1x.
func BenchmarkPaymentRouteSettledToStatus(b *testing.B) {
	const n = 1000
	var all burstResult
	for b.Loop() {
		r := runSettlementBurst(b, n, 8, 0)
		all.latencies = append(all.latencies, r.latencies...)
		all.writes += r.writes
	}
	sort.Slice(all.latencies, func(i, j int) bool { return all.latencies[i] < all.latencies[j] })
	runs := float64(len(all.latencies)) / n
	b.ReportMetric(float64(all.percentile(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all.percentile(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(all.writes)/runs, "writes/1000-payments")
}

// BenchmarkPaymentRouteIsolatedSettlement reports the same latency for payments that arrive one
// at a time, further apart than the status write interval (nothing to coalesce).
func BenchmarkPaymentRouteIsolatedSettlement(b *testing.B) {
	const n = 20
	var all burstResult
	for b.Loop() {
		r := runSettlementBurst(b, n, 1, defaultTotalsWriteInterval+200*time.Millisecond)
		all.latencies = append(all.latencies, r.latencies...)
		all.writes += r.writes
	}
	sort.Slice(all.latencies, func(i, j int) bool { return all.latencies[i] < all.latencies[j] })
	b.ReportMetric(float64(all.percentile(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all.percentile(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(all.writes)/float64(len(all.latencies)), "writes/payment")
}

func TestPaymentRouteWatchesSecretsAndOwnedObjects(t *testing.T) {
	e := newRouteEnv(t, Options{})
	e.create(t, "shop")
	ctx := context.Background()
	key := types.NamespacedName{Namespace: e.ns, Name: gatewayName("shop")}
	hash := func() string {
		var d appsv1.Deployment
		if err := e.env.Client.Get(ctx, key, &d); err != nil {
			return ""
		}
		return d.Spec.Template.Annotations[annotationGatewayHash]
	}
	h0 := hash()
	if h0 == "" {
		t.Fatal("no gateway Deployment")
	}

	// A change to the referenced Secret reaches the route through the Secret index.
	var sec corev1.Secret
	if err := e.env.Client.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "insforge-db"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.StringData = map[string]string{"note": "rotated"}
	if err := e.env.Client.Update(ctx, &sec); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, 30*time.Second, func() string {
		if h := hash(); h == h0 || h == "" {
			return "the pod-template hash did not follow the Secret change"
		}
		return ""
	})

	// A deleted child comes back through the Owns watch.
	var svc corev1.Service
	if err := e.env.Client.Get(ctx, key, &svc); err != nil {
		t.Fatal(err)
	}
	if err := e.env.Client.Delete(ctx, &svc); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, 30*time.Second, func() string {
		var again corev1.Service
		if err := e.env.Client.Get(ctx, key, &again); err != nil || again.UID == svc.UID {
			return fmt.Sprintf("the Service was not recreated (err %v)", err)
		}
		return ""
	})
}
