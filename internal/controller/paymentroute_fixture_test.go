package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// Secret values the tests look for in status and events: they must never appear there.
const (
	testOKXSecretKey  = "okx-secret-VALUE-1b2c"
	testOKXPassphrase = "okx-passphrase-VALUE-9f8e"
	testRelayerKey    = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
)

// routeFixture drives the PaymentRoute reconciler directly against envtest and a real database.
type routeFixture struct {
	t      *testing.T
	ctx    context.Context
	c      client.Client
	ns     string
	db     *pgtest.Database
	r      *PaymentRouteReconciler
	events *testRecorder
	dials  *atomic.Int64
	clock  *clocktesting.FakePassiveClock
}

// step advances the fake clock (status write spacing, domain cache).
func (f *routeFixture) step(d time.Duration) { f.clock.SetTime(f.clock.Now().Add(d)) }

func newRouteFixture(t *testing.T, opts Options, dial ChainDialer) *routeFixture {
	t.Helper()
	env := kubetest.Shared(t)
	f := &routeFixture{t: t, ctx: context.Background(), c: env.Client, ns: env.Namespace(t),
		db: pgtest.NewDatabase(t), events: &testRecorder{}, dials: &atomic.Int64{}}
	if opts.GatewayImage == "" {
		opts.GatewayImage = testGatewayImage
	}
	if dial == nil {
		dial = func(context.Context, string) (ethereum.ContractCaller, func(), error) {
			return nil, nil, fmt.Errorf("no chain in this test")
		}
	}
	counted := func(ctx context.Context, url string) (ethereum.ContractCaller, func(), error) {
		f.dials.Add(1)
		return dial(ctx, url)
	}
	r, err := NewPaymentRouteReconciler(env.Client, f.events, opts, counted, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	f.clock = clocktesting.NewFakePassiveClock(t0)
	f.r.Clock, f.r.domains.clock = f.clock, f.clock
	t.Cleanup(func() { f.r.ledgers.closeAll() })
	f.secret("insforge-db", map[string]string{"uri": f.db.URL})
	return f
}

func (f *routeFixture) secret(name string, data map[string]string) {
	f.t.Helper()
	putSecret(f.t, f.c, f.ns, name, data)
}

func (f *routeFixture) okxSecret() {
	f.secret("okx-x402-credentials", map[string]string{"apiKey": "okx-api-key", "secretKey": testOKXSecretKey, "passphrase": testOKXPassphrase})
}

func (f *routeFixture) create(pr *integrationsv1alpha1.PaymentRoute) {
	f.t.Helper()
	pr.Namespace = f.ns
	if err := f.c.Create(f.ctx, pr); err != nil {
		f.t.Fatalf("creating %s: %v", pr.Name, err)
	}
}

func (f *routeFixture) get(name string) *integrationsv1alpha1.PaymentRoute {
	f.t.Helper()
	var pr integrationsv1alpha1.PaymentRoute
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, &pr); err != nil {
		f.t.Fatalf("reading %s: %v", name, err)
	}
	return &pr
}

func (f *routeFixture) update(name string, fn func(*integrationsv1alpha1.PaymentRoute)) {
	f.t.Helper()
	pr := f.get(name)
	fn(pr)
	if err := f.c.Update(f.ctx, pr); err != nil {
		f.t.Fatalf("updating %s: %v", name, err)
	}
}

func (f *routeFixture) reconcile(name string) ctrl.Result {
	f.t.Helper()
	res, err := f.r.Reconcile(f.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: f.ns, Name: name}})
	if err != nil {
		f.t.Fatalf("reconciling %s: %v", name, err)
	}
	return res
}

func (f *routeFixture) deployment(name string) *appsv1.Deployment {
	f.t.Helper()
	var d appsv1.Deployment
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: gatewayName(name)}, &d); err != nil {
		f.t.Fatalf("reading the Deployment of %s: %v", name, err)
	}
	return &d
}

// exists reports whether an object of the route's gateway name exists.
func (f *routeFixture) exists(obj client.Object, route string) bool {
	f.t.Helper()
	err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: gatewayName(route)}, obj)
	return err == nil
}

// makeAvailable plays the Deployment controller and kubelet, which envtest lacks.
func makeAvailable(t *testing.T, c client.Client, d *appsv1.Deployment) {
	t.Helper()
	n := *d.Spec.Replicas
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	if err := c.Status().Update(context.Background(), d); err != nil {
		t.Fatalf("setting the Deployment status: %v", err)
	}
}

func routeCondition(t *testing.T, pr *integrationsv1alpha1.PaymentRoute, typ string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(pr.Status.Conditions, typ)
	if c == nil {
		t.Fatalf("%s has no %s condition; conditions: %+v", pr.Name, typ, pr.Status.Conditions)
	}
	return *c
}

func wantRouteCondition(t *testing.T, pr *integrationsv1alpha1.PaymentRoute, typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	c := routeCondition(t, pr, typ)
	if c.Status != status || (reason != "" && c.Reason != reason) {
		t.Fatalf("%s %s = %s/%s (%s), want %s/%s", pr.Name, typ, c.Status, c.Reason, c.Message, status, reason)
	}
	if c.ObservedGeneration != pr.Generation || pr.Status.ObservedGeneration != pr.Generation {
		t.Fatalf("%s: condition generation %d, status generation %d, object generation %d", pr.Name, c.ObservedGeneration,
			pr.Status.ObservedGeneration, pr.Generation)
	}
	return c
}

func assertRouteReady(t *testing.T, pr *integrationsv1alpha1.PaymentRoute) {
	t.Helper()
	wantRouteCondition(t, pr, integrationsv1alpha1.ConditionReady, metav1.ConditionTrue, integrationsv1alpha1.ReasonReconciled)
	for _, typ := range []string{integrationsv1alpha1.ConditionReconciling, integrationsv1alpha1.ConditionStalled} {
		if c := meta.FindStatusCondition(pr.Status.Conditions, typ); c != nil {
			t.Fatalf("%s is Ready but has %s=%s", pr.Name, typ, c.Status)
		}
	}
}

// assertRouteNoLeak fails when a secret value appears in the route's status or the events.
func assertRouteNoLeak(t *testing.T, pr *integrationsv1alpha1.PaymentRoute, events []string, values ...string) {
	t.Helper()
	raw, err := yaml.Marshal(pr.Status)
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

// httpRoute is a minimal route with a standard HTTP facilitator (no credentials; its chain node
// serves only the gateway's resolver, so the operator never dials it).
func httpRoute(name string) *integrationsv1alpha1.PaymentRoute {
	return &integrationsv1alpha1.PaymentRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: integrationsv1alpha1.PaymentRouteSpec{
			Upstream: integrationsv1alpha1.Upstream{URL: "http://upstream.example:8080"},
			Routes:   []integrationsv1alpha1.PricedRoute{{Path: "/paid", Price: "0.01"}},
			PayTo:    "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
			Facilitator: integrationsv1alpha1.Facilitator{
				HTTP: &integrationsv1alpha1.HTTPFacilitator{URL: "http://facilitator.example", RPCURL: "http://chain.example:8545"},
			},
			Database: integrationsv1alpha1.LedgerDatabase{DatabaseConnection: integrationsv1alpha1.DatabaseConnection{
				ConnectionSecretRef: integrationsv1alpha1.SecretKeySelector{Name: "insforge-db"},
			}},
		},
	}
}

// pay records one payment as the gateway does: Claim, MarkSettling, then MarkSettled.
func pay(ctx context.Context, l *ledger.Ledger, route, atomic string, mock bool) (string, error) {
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	in := ledger.Intent{
		Payer: "0x" + hex.EncodeToString(nonce[:20]), Nonce: "0x" + hex.EncodeToString(nonce), // a payer per payment: the ledger allows one in flight per payer and route
		Route: route, Endpoint: "/paid", Resource: "http://gw/paid", Amount: atomic,
		Network: integrationsv1alpha1.DefaultNetwork, Asset: integrationsv1alpha1.DefaultAssetAddress,
		PayTo: "0x209693bc6afc0c5328ba36faf03c514ef312287c", Facilitator: "http", Mock: mock,
	}
	c, err := l.Claim(ctx, in)
	if err != nil {
		return "", err
	}
	if err := l.MarkSettling(ctx, c.Ticket); err != nil {
		return "", err
	}
	tx := "0x" + hex.EncodeToString(nonce) // unique per payment, like a tx hash
	return tx, l.MarkSettled(ctx, c.Ticket, tx, "ok", true)
}

// stubChain answers DOMAIN_SEPARATOR() with the separator of a fixed domain, as a node would for
// a token at that address.
type stubChain struct{ domain eip3009.Domain }

func (s stubChain) CodeAt(context.Context, common.Address, *big.Int) ([]byte, error) {
	return []byte{1}, nil
}

func (s stubChain) CallContract(_ context.Context, msg ethereum.CallMsg, _ *big.Int) ([]byte, error) {
	if msg.To == nil || *msg.To != s.domain.VerifyingContract {
		return nil, fmt.Errorf("no contract at %v", msg.To)
	}
	if hex.EncodeToString(msg.Data) == "3644e515" {
		sep := s.domain.Separator()
		return sep[:], nil
	}
	return nil, fmt.Errorf("execution reverted")
}

// startRouteManager runs a manager with the PaymentRoute controller that caches only ns; tune
// adjusts the reconciler before the manager starts.
func startRouteManager(t testing.TB, env *kubetest.Env, opts Options, ns string, tune func(*PaymentRouteReconciler)) *PaymentRouteReconciler {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller:             config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	if opts.GatewayImage == "" {
		opts.GatewayImage = testGatewayImage
	}
	r, err := SetupPaymentRoute(mgr, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
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
	return r
}

func reqFor(ns, name string) ctrl.Request {
	return ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

// routeEventually polls cond until it returns "" or the deadline passes (not a timing assertion:
// deadlines are generous).
func routeEventually(tb testing.TB, timeout time.Duration, cond func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("gave up after %s: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantKstatus checks what kstatus (Flux `wait: true`, `kubectl wait`) makes of the route.
func wantKstatus(t *testing.T, pr *integrationsv1alpha1.PaymentRoute, want kstatus.Status) {
	t.Helper()
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pr)
	if err != nil {
		t.Fatal(err)
	}
	res, err := kstatus.Compute(&unstructured.Unstructured{Object: raw})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != want {
		t.Fatalf("kstatus of %s = %s (%s), want %s", pr.Name, res.Status, res.Message, want)
	}
}
