package authintegration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/yaml"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/pgpool"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { controllertest.Main(m) }

// fixture drives the reconciler directly, with a fake clock, recorded events, its own metrics
// registry and one InsForge-like database.
type fixture struct {
	controllertest.Objects[*integrationsv1alpha1.AuthIntegration]
	t      *testing.T
	ctx    context.Context
	env    *kubetest.Env
	c      client.Client
	ns     string
	db     *pgtest.Database
	r      *Reconciler
	clock  *clocktesting.FakePassiveClock
	events *controllertest.Recorder
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := kubetest.Shared(t)
	f := &fixture{t: t, ctx: context.Background(), env: env, c: env.Client, ns: env.Namespace(t),
		clock: clocktesting.NewFakePassiveClock(controllertest.T0), events: &controllertest.Recorder{}}
	f.db = insforgetest.NewDatabase(t, insforgetest.Options{AuthJWT: true})
	pools := pgpool.NewCache(nil)
	t.Cleanup(pools.Close)
	r, err := New(env.Client, env.Scheme, f.events, pools, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r.Clock = f.clock
	r.NewSecret = keyGenerator()
	f.r = r
	f.Objects = controllertest.Objects[*integrationsv1alpha1.AuthIntegration]{T: t, C: f.c, NS: f.ns,
		New: func() *integrationsv1alpha1.AuthIntegration { return &integrationsv1alpha1.AuthIntegration{} }}
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
	controllertest.PutSecret(f.t, f.c, f.ns, name, data)
}

func (f *fixture) getSecret(name string) *corev1.Secret {
	f.t.Helper()
	var sec corev1.Secret
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, &sec); err != nil {
		f.t.Fatalf("reading Secret %s: %v", name, err)
	}
	return &sec
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

// sampleProviders names the AuthIntegration samples, one per provider.
var sampleProviders = []string{"clerk", "auth0", "workos", "kinde", "stytch", "betterauth"}

// samplePath is config/samples/integrations_v1alpha1_<kind>_<name>.yaml.
func samplePath(root, kind, name string) string {
	return filepath.Join(root, "config", "samples", "integrations_v1alpha1_"+kind+"_"+name+".yaml")
}

// loadSample reads config/samples/integrations_v1alpha1_authintegration_<name>.yaml.
func loadSample(t *testing.T, root, name string) *integrationsv1alpha1.AuthIntegration {
	t.Helper()
	raw, err := os.ReadFile(samplePath(root, "authintegration", name))
	if err != nil {
		t.Fatal(err)
	}
	var ai integrationsv1alpha1.AuthIntegration
	if err := yaml.UnmarshalStrict(raw, &ai); err != nil {
		t.Fatalf("decoding the %s sample: %v", name, err)
	}
	return &ai
}

// startManager runs a real manager with the AuthIntegration controller, caching only the given
// namespaces so that parallel tests do not reconcile each other's objects.
func startManager(t testing.TB, env *kubetest.Env, namespaces ...string) *Reconciler {
	t.Helper()
	var r *Reconciler
	controllertest.StartManager(t, env, func(mgr ctrl.Manager) error {
		pools := pgpool.NewCache(nil)
		if err := mgr.Add(manager.RunnableFunc(pools.Run)); err != nil {
			return err
		}
		var err error
		if r, err = Setup(mgr, pools, Options{Exchange: ExchangeOptions{Image: testImage}}); err != nil {
			return err
		}
		r.DeletionTimeout = time.Minute
		return nil
	}, namespaces...)
	return r
}

// readyMessage returns "" when the integration is Ready for its generation, else why not.
func readyMessage(c client.Client, key types.NamespacedName) string {
	return controllertest.ReadyMessage(c, &integrationsv1alpha1.AuthIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
}

// step advances the fake clock.
func (f *fixture) step(d time.Duration) { f.clock.SetTime(f.clock.Now().Add(d)) }
