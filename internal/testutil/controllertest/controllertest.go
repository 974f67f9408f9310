// Package controllertest is the one test fixture of the controllers: the shared envtest and
// PostgreSQL lifecycle, a manager whose shutdown is bounded, an in-memory event recorder, and
// checks of conditions, kstatus and secret leaks that work for every kind.
package controllertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// T0 is where fake clocks start.
var T0 = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

// Main is a controller package's TestMain: managers started by tests log through
// controller-runtime (failures are asserted, not logged), and the shared control plane and
// PostgreSQL server stop after the tests.
func Main(m *testing.M) {
	logf.SetLogger(logr.Discard())
	code := m.Run()
	kubetest.Shutdown()
	pgtest.Shutdown()
	os.Exit(code)
}

// Object is a resource of this operator: it reports conditions for a generation.
type Object interface {
	client.Object
	StatusConditions() []metav1.Condition
	StatusObservedGeneration() int64
}

// Condition returns the condition of a type, or fails the test.
func Condition(t testing.TB, obj Object, typ string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(obj.StatusConditions(), typ)
	if c == nil {
		t.Fatalf("%s has no %s condition; conditions: %+v", obj.GetName(), typ, obj.StatusConditions())
	}
	return *c
}

// WantCondition checks a condition's status and reason ("" for any), and that both the
// condition and the status describe the object's current generation.
func WantCondition(t testing.TB, obj Object, typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	c := Condition(t, obj, typ)
	if c.Status != status || (reason != "" && c.Reason != reason) {
		t.Fatalf("%s %s = %s/%s (%s), want %s/%s", obj.GetName(), typ, c.Status, c.Reason, c.Message, status, reason)
	}
	if c.ObservedGeneration != obj.GetGeneration() || obj.StatusObservedGeneration() != obj.GetGeneration() {
		t.Fatalf("%s: condition generation %d, status generation %d, object generation %d", obj.GetName(), c.ObservedGeneration,
			obj.StatusObservedGeneration(), obj.GetGeneration())
	}
	return c
}

// AssertReady checks a kstatus-clean Ready state (reason "" for any) for the current generation:
// Ready=True and neither Reconciling nor Stalled present.
func AssertReady(t testing.TB, obj Object, reason string) {
	t.Helper()
	WantCondition(t, obj, "Ready", metav1.ConditionTrue, reason)
	for _, typ := range []string{"Reconciling", "Stalled"} {
		if c := meta.FindStatusCondition(obj.StatusConditions(), typ); c != nil {
			t.Fatalf("%s is Ready but has %s=%s", obj.GetName(), typ, c.Status)
		}
	}
}

// ReadyMessage returns "" when the object is Ready for its generation, else why not.
func ReadyMessage(c client.Client, obj Object) string {
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		return err.Error()
	}
	ready := meta.FindStatusCondition(obj.StatusConditions(), "Ready")
	if ready == nil || ready.Status != metav1.ConditionTrue || obj.StatusObservedGeneration() != obj.GetGeneration() {
		return fmt.Sprintf("%s/%s not ready: %+v", obj.GetNamespace(), obj.GetName(), obj.StatusConditions())
	}
	return ""
}

// WantKstatus checks what kstatus (Flux `wait: true`, `kubectl wait`) makes of the object.
func WantKstatus(t testing.TB, obj Object, want kstatus.Status) {
	t.Helper()
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	res, err := kstatus.Compute(&unstructured.Unstructured{Object: raw})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != want {
		t.Fatalf("kstatus of %s = %s (%s), want %s", obj.GetName(), res.Status, res.Message, want)
	}
}

// AssertNoLeak fails when a secret value appears in the object's status or in events.
func AssertNoLeak(t testing.TB, obj Object, events []string, values ...string) {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	rawStatus, err := yaml.Marshal(u["status"])
	if err != nil {
		t.Fatal(err)
	}
	all := string(rawStatus) + "\n" + strings.Join(events, "\n")
	for _, v := range values {
		if v != "" && strings.Contains(all, v) {
			t.Fatalf("a secret value appears in the status or the events:\n%s", all)
		}
	}
}

// Eventually polls cond until it returns "" (success) or the deadline passes. Deadlines are
// generous: this waits for asynchronous work, it asserts no timing.
func Eventually(t testing.TB, timeout time.Duration, cond func() string) {
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
		time.Sleep(50 * time.Millisecond)
	}
}

// PutSecret creates or replaces a Secret that opts in to the operator's use
// (v1alpha1.LabelSecretAccess), as a user would label the Secrets they reference.
func PutSecret(t testing.TB, c client.Client, ns, name string, data map[string]string) {
	t.Helper()
	putSecret(t, c, ns, name, data, map[string]string{v1alpha1.LabelSecretAccess: "true"})
}

// PutUnlabelledSecret creates or replaces a Secret that does not opt in.
func PutUnlabelledSecret(t testing.TB, c client.Client, ns, name string, data map[string]string) {
	t.Helper()
	putSecret(t, c, ns, name, data, nil)
}

func putSecret(t testing.TB, c client.Client, ns, name string, data, labels map[string]string) {
	t.Helper()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, StringData: data}
	err := c.Create(context.Background(), sec)
	if apierrors.IsAlreadyExists(err) {
		var cur corev1.Secret
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(sec), &cur); err != nil {
			t.Fatal(err)
		}
		cur.Data, cur.StringData, cur.Labels = nil, data, labels
		err = c.Update(context.Background(), &cur)
	}
	if err != nil {
		t.Fatalf("writing Secret %s: %v", name, err)
	}
}

// Recorder keeps events in memory, as "type reason action note".
type Recorder struct {
	mu     sync.Mutex
	events []string
}

// Eventf implements events.EventRecorder.
func (r *Recorder) Eventf(_ runtime.Object, _ runtime.Object, typ, reason, action, note string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, typ+" "+reason+" "+action+" "+fmt.Sprintf(note, args...))
}

// All returns the events recorded so far.
func (r *Recorder) All() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// Has reports whether an event with this reason was recorded.
func (r *Recorder) Has(reason string) bool {
	for _, e := range r.All() {
		if strings.Fields(e)[1] == reason {
			return true
		}
	}
	return false
}

// StartManager runs a real manager that caches only the given namespaces (so that parallel
// tests do not reconcile each other's objects); setup registers the reconcilers under test.
// The manager stops when the test ends, and a manager that does not stop within 30 s fails
// the test instead of hanging it.
func StartManager(t testing.TB, env *kubetest.Env, setup func(ctrl.Manager) error, namespaces ...string) {
	t.Helper()
	StartManagerWith(t, env, ManagerOptions{}, setup, namespaces...)
}

// ManagerOptions adjust a manager started by StartManagerWith.
type ManagerOptions struct {
	// Config reaches the API server instead of env.Config: a copy with the production client
	// limits, or one whose requests are counted (apicount).
	Config *rest.Config
}

// StartManagerWith is StartManager with options. It returns a function that stops the manager
// and waits for it (benchmarks restart managers); the test's cleanup calls it too.
func StartManagerWith(t testing.TB, env *kubetest.Env, opts ManagerOptions, setup func(ctrl.Manager) error, namespaces ...string) (stop func()) {
	t.Helper()
	nsCfg := map[string]cache.Config{}
	for _, ns := range namespaces {
		nsCfg[ns] = cache.Config{}
	}
	cfg := opts.Config
	if cfg == nil {
		cfg = env.Config
	}
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{DefaultNamespaces: nsCfg,
			ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: kit.SecretCache()}},
		Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("manager: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("manager did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Objects creates, reads and updates one kind's objects in a test's namespace, failing the test
// on error. Embed it in a kind's fixture.
type Objects[T Object] struct {
	T  testing.TB
	C  client.Client
	NS string
	// New returns an empty object of the kind.
	New func() T
}

// Create creates obj in the namespace.
func (o Objects[T]) Create(obj T) {
	o.T.Helper()
	obj.SetNamespace(o.NS)
	if err := o.C.Create(context.Background(), obj); err != nil {
		o.T.Fatalf("creating %s: %v", obj.GetName(), err)
	}
}

// Get reads the object called name.
func (o Objects[T]) Get(name string) T {
	o.T.Helper()
	obj := o.New()
	if err := o.C.Get(context.Background(), client.ObjectKey{Namespace: o.NS, Name: name}, obj); err != nil {
		o.T.Fatalf("reading %s: %v", name, err)
	}
	return obj
}

// Update applies fn to the latest version of the object and writes it.
func (o Objects[T]) Update(name string, fn func(T)) {
	o.T.Helper()
	obj := o.Get(name)
	fn(obj)
	if err := o.C.Update(context.Background(), obj); err != nil {
		o.T.Fatalf("updating %s: %v", name, err)
	}
}
