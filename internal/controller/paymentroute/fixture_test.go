package paymentroute

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/pgpool"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/tokendomain"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

func TestMain(m *testing.M) { controllertest.Main(m) }

// Secret values the tests look for in status and events: they must never appear there.
const (
	testOKXSecretKey  = "okx-secret-VALUE-1b2c"
	testOKXPassphrase = "okx-passphrase-VALUE-9f8e"
	testRelayerKey    = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
)

// routeFixture drives the PaymentRoute reconciler directly against envtest and a real database.
type routeFixture struct {
	controllertest.Objects[*integrationsv1alpha1.PaymentRoute]
	t      *testing.T
	ctx    context.Context
	c      client.Client
	ns     string
	db     *pgtest.Database
	r      *Reconciler
	events *controllertest.Recorder
	dials  *atomic.Int64
	clock  *clocktesting.FakePassiveClock
}

// step advances the fake clock (status write spacing, domain cache).
func (f *routeFixture) step(d time.Duration) { f.clock.SetTime(f.clock.Now().Add(d)) }

func newRouteFixture(t *testing.T, opts Options, dial tokendomain.Dialer) *routeFixture {
	t.Helper()
	env := kubetest.Shared(t)
	f := &routeFixture{t: t, ctx: context.Background(), c: env.Client, ns: env.Namespace(t),
		db: pgtest.NewDatabase(t), events: &controllertest.Recorder{}, dials: &atomic.Int64{}}
	if opts.GatewayImage == "" {
		opts.GatewayImage = testGatewayImage
	}
	if dial == nil {
		dial = func(context.Context, string) (ethereum.ContractCaller, func(), error) {
			return nil, nil, fmt.Errorf("no chain in this test")
		}
	}
	opts.Dial = func(ctx context.Context, url string) (ethereum.ContractCaller, func(), error) {
		f.dials.Add(1)
		return dial(ctx, url)
	}
	pools := pgpool.NewCache(nil)
	t.Cleanup(pools.Close)
	r, err := New(env.Client, f.events, opts, pools, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	f.Objects = controllertest.Objects[*integrationsv1alpha1.PaymentRoute]{T: t, C: f.c, NS: f.ns,
		New: func() *integrationsv1alpha1.PaymentRoute { return &integrationsv1alpha1.PaymentRoute{} }}
	f.clock = clocktesting.NewFakePassiveClock(controllertest.T0)
	f.r.Clock = f.clock
	f.r.domains.SetClock(f.clock)
	f.secret("insforge-db", map[string]string{"uri": f.db.URL})
	return f
}

func (f *routeFixture) secret(name string, data map[string]string) {
	f.t.Helper()
	controllertest.PutSecret(f.t, f.c, f.ns, name, data)
}

func (f *routeFixture) okxSecret() {
	f.secret("okx-x402-credentials", map[string]string{"apiKey": "okx-api-key", "secretKey": testOKXSecretKey, "passphrase": testOKXPassphrase})
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
func startRouteManager(t testing.TB, env *kubetest.Env, opts Options, ns string, tune func(*Reconciler)) *Reconciler {
	t.Helper()
	if opts.GatewayImage == "" {
		opts.GatewayImage = testGatewayImage
	}
	var r *Reconciler
	controllertest.StartManager(t, env, func(mgr ctrl.Manager) error {
		pools := pgpool.NewCache(nil)
		if err := mgr.Add(manager.RunnableFunc(pools.Run)); err != nil {
			return err
		}
		var err error
		if r, err = Setup(mgr, opts, pools); err != nil {
			return err
		}
		if tune != nil {
			tune(r)
		}
		return nil
	}, ns)
	return r
}

func reqFor(ns, name string) ctrl.Request {
	return ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}
