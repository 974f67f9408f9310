package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/rls"
	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

func TestMain(m *testing.M) {
	// Managers started by tests log through controller-runtime; failures are asserted, not logged.
	logf.SetLogger(logr.Discard())
	code := m.Run()
	kubetest.Shutdown()
	pgtest.Shutdown()
	os.Exit(code)
}

// t0 is the fake clock's start.
var t0 = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

// fixture drives the reconciler directly, with a fake clock, recorded events, its own metrics
// registry and one InsForge-like database.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	env    *kubetest.Env
	c      client.Client
	ns     string
	db     *pgtest.Database
	r      *AuthIntegrationReconciler
	clock  *clocktesting.FakePassiveClock
	events *testRecorder
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := kubetest.Shared(t)
	f := &fixture{t: t, ctx: context.Background(), env: env, c: env.Client, ns: env.Namespace(t),
		clock: clocktesting.NewFakePassiveClock(t0), events: &testRecorder{}}
	f.db = insforgetest.NewDatabase(t, insforgetest.Options{AuthJWT: true})
	pools := rls.NewPoolCache(nil)
	t.Cleanup(pools.Close)
	r, err := NewAuthIntegrationReconciler(env.Client, env.Scheme, f.events, pools, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r.Clock = f.clock
	r.NewSecret = keyGenerator()
	f.r = r
	f.secret("insforge-db", map[string]string{"uri": f.db.URL})
	return f
}

// keyGenerator returns distinct, recognisable 64-character keys.
func keyGenerator() func() (string, error) {
	var mu sync.Mutex
	n := 0
	return func() (string, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("testkey%03d-%s", n, strings.Repeat("k", 53)), nil
	}
}

// secret creates or replaces a Secret.
func (f *fixture) secret(name string, data map[string]string) {
	f.t.Helper()
	putSecret(f.t, f.c, f.ns, name, data)
}

func putSecret(t testing.TB, c client.Client, ns, name string, data map[string]string) {
	t.Helper()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	err := c.Create(context.Background(), sec)
	if apierrors.IsAlreadyExists(err) {
		var cur corev1.Secret
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(sec), &cur); err != nil {
			t.Fatal(err)
		}
		cur.Data, cur.StringData = nil, data
		err = c.Update(context.Background(), &cur)
	}
	if err != nil {
		t.Fatalf("writing Secret %s: %v", name, err)
	}
}

func (f *fixture) getSecret(name string) *corev1.Secret {
	f.t.Helper()
	var sec corev1.Secret
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, &sec); err != nil {
		f.t.Fatalf("reading Secret %s: %v", name, err)
	}
	return &sec
}

// create creates the integration in the fixture's namespace.
func (f *fixture) create(ai *integrationsv1alpha1.AuthIntegration) {
	f.t.Helper()
	ai.Namespace = f.ns
	if err := f.c.Create(f.ctx, ai); err != nil {
		f.t.Fatalf("creating %s: %v", ai.Name, err)
	}
}

func (f *fixture) get(name string) *integrationsv1alpha1.AuthIntegration {
	f.t.Helper()
	var ai integrationsv1alpha1.AuthIntegration
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, &ai); err != nil {
		f.t.Fatalf("reading %s: %v", name, err)
	}
	return &ai
}

// update applies fn to the latest version of the integration.
func (f *fixture) update(name string, fn func(*integrationsv1alpha1.AuthIntegration)) {
	f.t.Helper()
	ai := f.get(name)
	fn(ai)
	if err := f.c.Update(f.ctx, ai); err != nil {
		f.t.Fatalf("updating %s: %v", name, err)
	}
}

func (f *fixture) reconcile(name string) (ctrl.Result, error) {
	f.t.Helper()
	return f.r.Reconcile(f.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: f.ns, Name: name}})
}

// reconcileOK reconciles and fails the test on error.
func (f *fixture) reconcileOK(name string) ctrl.Result {
	f.t.Helper()
	res, err := f.reconcile(name)
	if err != nil {
		f.t.Fatalf("reconciling %s: %v", name, err)
	}
	return res
}

func (f *fixture) statements() float64 { return testutil.ToFloat64(f.r.metrics.statements) }

// exec runs SQL on the fixture's database.
func (f *fixture) exec(sql string) { f.t.Helper(); f.db.Exec(f.t, sql) }

// queryInt runs a query returning one integer.
func (f *fixture) queryInt(sql string, args ...any) int {
	f.t.Helper()
	conn, err := pgx.Connect(f.ctx, f.db.URL)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(f.ctx)
	var n int
	if err := conn.QueryRow(f.ctx, sql, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// policyCount counts the policies named prefix_* on a table.
func (f *fixture) policyCount(table, prefix string) int {
	return f.queryInt(`SELECT count(*)::int FROM pg_policies WHERE schemaname = 'public' AND tablename = $1 AND policyname LIKE $2`, table, prefix+"\\_%")
}

func (f *fixture) rlsEnabled(table string) bool {
	return f.queryInt(`SELECT relrowsecurity::int FROM pg_class WHERE oid = to_regclass($1)`, "public."+table) == 1
}

// userTable creates a table owned by project_admin, as InsForge would have it.
func userTable(t testing.TB, db *pgtest.Database, name string) {
	t.Helper()
	db.Exec(t, insforgetest.AsProjectAdmin("CREATE TABLE public."+pgx.Identifier{name}.Sanitize()+" (id bigserial PRIMARY KEY, title text)"))
}

// todos is a minimal Clerk integration on public.todos.
func todos(name string) *integrationsv1alpha1.AuthIntegration {
	return &integrationsv1alpha1.AuthIntegration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: integrationsv1alpha1.AuthIntegrationSpec{
			Provider: integrationsv1alpha1.ProviderClerk,
			Database: integrationsv1alpha1.AuthDatabase{
				DatabaseConnection: integrationsv1alpha1.DatabaseConnection{
					ConnectionSecretRef: integrationsv1alpha1.SecretKeySelector{Name: "insforge-db"},
				},
				Role: "project_admin",
			},
			Tables: []integrationsv1alpha1.ManagedTable{{Name: "todos"}},
			JWT: integrationsv1alpha1.JWTSecret{Generate: &integrationsv1alpha1.GeneratedJWTSecret{
				SecretName: name + "-jwt", Ownership: integrationsv1alpha1.SecretOwned,
			}},
		},
	}
}

// loadSample reads config/samples/integrations_v1alpha1_authintegration_<name>.yaml.
func loadSample(t *testing.T, root, name string) *integrationsv1alpha1.AuthIntegration {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "config", "samples", "integrations_v1alpha1_authintegration_"+name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ai integrationsv1alpha1.AuthIntegration
	if err := yaml.UnmarshalStrict(raw, &ai); err != nil {
		t.Fatalf("decoding the %s sample: %v", name, err)
	}
	return &ai
}

// condition returns the condition of a type, or fails the test.
func condition(t *testing.T, ai *integrationsv1alpha1.AuthIntegration, typ string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(ai.Status.Conditions, typ)
	if c == nil {
		t.Fatalf("%s has no %s condition; conditions: %+v", ai.Name, typ, ai.Status.Conditions)
	}
	return *c
}

// wantCondition checks a condition's status and reason.
func wantCondition(t *testing.T, ai *integrationsv1alpha1.AuthIntegration, typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	c := condition(t, ai, typ)
	if c.Status != status || (reason != "" && c.Reason != reason) {
		t.Fatalf("%s %s = %s/%s (%s), want %s/%s", ai.Name, typ, c.Status, c.Reason, c.Message, status, reason)
	}
	return c
}

// assertReady checks a kstatus-clean Ready state for the current generation.
func assertReady(t *testing.T, ai *integrationsv1alpha1.AuthIntegration) {
	t.Helper()
	wantCondition(t, ai, integrationsv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	for _, typ := range []string{integrationsv1alpha1.ConditionReconciling, integrationsv1alpha1.ConditionStalled} {
		if c := meta.FindStatusCondition(ai.Status.Conditions, typ); c != nil {
			t.Fatalf("%s is Ready but has %s=%s", ai.Name, typ, c.Status)
		}
	}
	if ai.Status.ObservedGeneration != ai.Generation {
		t.Fatalf("observedGeneration %d, generation %d", ai.Status.ObservedGeneration, ai.Generation)
	}
}

// assertNoLeak fails when a secret value appears in the integration's status or the events.
func assertNoLeak(t *testing.T, ai *integrationsv1alpha1.AuthIntegration, events []string, values ...string) {
	t.Helper()
	raw, err := yaml.Marshal(ai.Status)
	if err != nil {
		t.Fatal(err)
	}
	all := string(raw) + "\n" + strings.Join(events, "\n")
	for _, v := range values {
		if v != "" && strings.Contains(all, v) {
			t.Fatalf("a secret value appears in the status or the events:\n%s", all)
		}
	}
}

// testRecorder keeps events in memory.
type testRecorder struct {
	mu     sync.Mutex
	events []string
}

func (r *testRecorder) Eventf(_ runtime.Object, _ runtime.Object, typ, reason, action, note string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, typ+" "+reason+" "+action+" "+fmt.Sprintf(note, args...))
}

func (r *testRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// has reports whether an event with this reason was recorded.
func (r *testRecorder) has(reason string) bool {
	for _, e := range r.all() {
		if strings.Fields(e)[1] == reason {
			return true
		}
	}
	return false
}

// startManager runs a real manager with the AuthIntegration controller, caching only the given
// namespaces so that parallel tests do not reconcile each other's objects.
func startManager(t testing.TB, env *kubetest.Env, namespaces ...string) *AuthIntegrationReconciler {
	t.Helper()
	nsCfg := map[string]cache.Config{}
	for _, ns := range namespaces {
		nsCfg[ns] = cache.Config{}
	}
	skip := true
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: nsCfg},
		Controller:             config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := SetupAuthIntegration(mgr)
	if err != nil {
		t.Fatal(err)
	}
	r.DeletionTimeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return r
}

// eventually polls cond until it returns "" (success) or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s: %s", timeout, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readyMessage returns "" when the integration is Ready for its generation, else why not.
func readyMessage(c client.Client, key types.NamespacedName) string {
	var ai integrationsv1alpha1.AuthIntegration
	if err := c.Get(context.Background(), key, &ai); err != nil {
		return err.Error()
	}
	ready := meta.FindStatusCondition(ai.Status.Conditions, integrationsv1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue || ai.Status.ObservedGeneration != ai.Generation {
		return fmt.Sprintf("%s not ready: %+v", key, ai.Status.Conditions)
	}
	return ""
}

// step advances the fake clock.
func (f *fixture) step(d time.Duration) { f.clock.SetTime(f.clock.Now().Add(d)) }
