package paymentroute

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/allowlist"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	gwconfig "github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// xlayerUSDG answers for USDG on X Layer, as the onchain sample's node would.
func xlayerUSDG(context.Context, string) (ethereum.ContractCaller, func(), error) {
	return stubChain{domain: eip3009.Domain{
		Name: integrationsv1alpha1.DefaultEIP712Name, Version: integrationsv1alpha1.DefaultEIP712Version,
		ChainID: big.NewInt(196), VerifyingContract: common.HexToAddress(integrationsv1alpha1.DefaultAssetAddress),
	}}, func() {}, nil
}

func TestPaymentRouteSamplesReconcileToTheGateway(t *testing.T) {
	for _, tc := range []struct {
		sample, secret string
		replicas       int32
		env            map[string][2]string
	}{
		{"okx", "okx-x402-credentials", 2, map[string][2]string{
			gwconfig.EnvDatabaseURL: {"insforge-db", "uri"}, gwconfig.EnvOKXAPIKey: {"okx-x402-credentials", "apiKey"},
			gwconfig.EnvOKXSecretKey: {"okx-x402-credentials", "secretKey"}, gwconfig.EnvOKXPassphrase: {"okx-x402-credentials", "passphrase"},
		}},
		{"onchain", "x402-relayer", 1, map[string][2]string{
			gwconfig.EnvDatabaseURL: {"insforge-db", "uri"}, gwconfig.EnvRelayerKey: {"x402-relayer", "privateKey"},
		}},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			f := newRouteFixture(t, Options{}, xlayerUSDG)
			f.okxSecret()
			f.secret("x402-relayer", map[string]string{"privateKey": testRelayerKey})
			pr := loadRouteSample(t, tc.sample)
			f.Create(pr)
			f.reconcile(pr.Name)

			got := f.Get(pr.Name)
			controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionLedgerReady, metav1.ConditionTrue, integrationsv1alpha1.ReasonSchemaApplied)
			controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionGatewayAvailable, metav1.ConditionFalse, integrationsv1alpha1.ReasonDeploymentPending)
			controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReconciling, metav1.ConditionTrue, integrationsv1alpha1.ReasonDeploymentPending)
			controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReady, metav1.ConditionFalse, integrationsv1alpha1.ReasonDeploymentPending)
			controllertest.WantKstatus(t, got, kstatus.InProgressStatus)

			d := f.deployment(pr.Name)
			if len(d.OwnerReferences) != 1 || d.OwnerReferences[0].UID != got.UID || !ptr.Deref(d.OwnerReferences[0].Controller, false) {
				t.Fatalf("owner references %+v", d.OwnerReferences)
			}
			if *d.Spec.Replicas != tc.replicas {
				t.Errorf("replicas %d, want %d", *d.Spec.Replicas, tc.replicas)
			}
			pod := d.Spec.Template.Spec
			c := pod.Containers[0]
			if c.Image != testGatewayImage || !reflect.DeepEqual(c.Command, []string{"/gateway"}) ||
				!reflect.DeepEqual(c.Args, []string{"--config", gwconfig.DefaultConfigPath}) {
				t.Errorf("container %s %v %v", c.Image, c.Command, c.Args)
			}
			if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
				c.ReadinessProbe.HTTPGet.Port.StrVal != "admin" {
				t.Errorf("probes %+v %+v", c.LivenessProbe.HTTPGet, c.ReadinessProbe.HTTPGet)
			}
			sc := c.SecurityContext
			if !*sc.RunAsNonRoot || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem ||
				!reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("securityContext %+v / %+v", sc, pod.SecurityContext)
			}
			if len(c.Env) != len(tc.env) {
				t.Errorf("env %+v", c.Env)
			}
			for _, e := range c.Env {
				w := tc.env[e.Name]
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != w[0] || e.ValueFrom.SecretKeyRef.Key != w[1] {
					t.Errorf("env %s = %+v, want secret %v", e.Name, e, w)
				}
			}
			// The hash is the one the renderer computes from the live Secrets' versions.
			versions := map[string]string{}
			for _, n := range []string{"insforge-db", tc.secret} {
				versions[n] = f.getSecretVersion(n)
			}
			want, err := renderGateway(gatewayRender{Route: got, Image: testGatewayImage, SecretVersions: versions})
			if err != nil {
				t.Fatal(err)
			}
			if h := d.Spec.Template.Annotations[annotationGatewayHash]; h != want.Hash {
				t.Errorf("hash annotation %q, want %q", h, want.Hash)
			}

			var cm corev1.ConfigMap
			if !f.exists(&cm, pr.Name) || cm.Data[gwconfig.ConfigMapKey] != want.ConfigMap.Data[gwconfig.ConfigMapKey] {
				t.Errorf("ConfigMap %+v", cm.Data)
			}
			var cfg gwconfig.Config
			if err := json.Unmarshal([]byte(cm.Data[gwconfig.ConfigMapKey]), &cfg); err != nil || cfg.Route != f.ns+"/"+pr.Name {
				t.Errorf("config route %q, err %v", cfg.Route, err)
			}
			var svc corev1.Service
			if !f.exists(&svc, pr.Name) || len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].TargetPort.StrVal != "http" ||
				svc.Spec.Ports[1].Name != "metrics" || svc.Spec.Ports[1].Port != 9090 || svc.Spec.Ports[1].TargetPort.StrVal != "admin" {
				t.Errorf("Service %+v", svc.Spec)
			}
			var pdb policyv1.PodDisruptionBudget
			if !f.exists(&pdb, pr.Name) || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
				t.Errorf("PodDisruptionBudget with %d replicas: %+v", tc.replicas, pdb.Spec)
			}

			// The Deployment becomes available: the route is Ready.
			makeAvailable(t, f.c, d)
			f.reconcile(pr.Name)
			got = f.Get(pr.Name)
			controllertest.AssertReady(t, got, integrationsv1alpha1.ReasonReconciled)
			controllertest.WantKstatus(t, got, kstatus.CurrentStatus)
			controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionGatewayAvailable, metav1.ConditionTrue, integrationsv1alpha1.ReasonAvailable)
			if g := got.Status.Gateway; g.ReadyReplicas != tc.replicas || g.Replicas != tc.replicas ||
				g.ServiceURL != "http://"+gatewayName(pr.Name)+"."+f.ns+".svc:8080" {
				t.Errorf("status.gateway %+v", g)
			}
			if s := got.Status.Settled; s.Count != 0 || s.Total != "0" || s.Amount != "0" {
				t.Errorf("status.settled %+v", s)
			}
			if tc.sample == "onchain" && !strings.Contains(controllertest.Condition(t, got, integrationsv1alpha1.ConditionReady).Message, "domain verified") {
				t.Errorf("the onchain sample's domain was not checked: %s", controllertest.Condition(t, got, integrationsv1alpha1.ConditionReady).Message)
			}
			if !f.events.Has("GatewayCreated") || !f.events.Has(integrationsv1alpha1.ReasonAvailable) {
				t.Errorf("events %v", f.events.All())
			}

			// A steady reconcile writes nothing and does not even send an apply.
			rv := got.ResourceVersion
			drv := f.deployment(pr.Name).ResourceVersion
			applies := testutil.ToFloat64(f.r.metrics.applies)
			f.reconcile(pr.Name)
			if f.Get(pr.Name).ResourceVersion != rv || f.deployment(pr.Name).ResourceVersion != drv {
				t.Error("a reconcile without changes wrote the route or the Deployment")
			}
			if n := testutil.ToFloat64(f.r.metrics.applies); n != applies {
				t.Errorf("a reconcile without changes applied the gateway objects (%v → %v applies)", applies, n)
			}
			controllertest.AssertNoLeak(t, f.Get(pr.Name), f.events.All(), testOKXSecretKey, testOKXPassphrase, testRelayerKey, f.db.URL)
		})
	}
}

func (f *routeFixture) getSecretVersion(name string) string {
	f.t.Helper()
	var s corev1.Secret
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, &s); err != nil {
		f.t.Fatal(err)
	}
	return s.ResourceVersion
}

func TestPaymentRouteSpecAndSecretChangesRollThePods(t *testing.T) {
	f := newRouteFixture(t, Options{}, nil)
	f.okxSecret()
	pr := loadRouteSample(t, "okx")
	f.Create(pr)
	f.reconcile(pr.Name)
	makeAvailable(t, f.c, f.deployment(pr.Name))
	f.reconcile(pr.Name)
	controllertest.AssertReady(t, f.Get(pr.Name), integrationsv1alpha1.ReasonReconciled)
	h0 := f.deployment(pr.Name).Spec.Template.Annotations[annotationGatewayHash]

	// A new price reaches the ConfigMap and rolls the pods; the PDB stays at one replica.
	f.Update(pr.Name, func(p *integrationsv1alpha1.PaymentRoute) {
		p.Spec.Routes[0].Price = "0.02"
		p.Spec.Gateway.Replicas = ptr.To[int32](1)
	})
	f.reconcile(pr.Name)
	d := f.deployment(pr.Name)
	h1 := d.Spec.Template.Annotations[annotationGatewayHash]
	if h1 == h0 || *d.Spec.Replicas != 1 {
		t.Fatalf("after a spec change: hash %s (was %s), replicas %d", h1, h0, *d.Spec.Replicas)
	}
	var cm corev1.ConfigMap
	if !f.exists(&cm, pr.Name) || !strings.Contains(cm.Data[gwconfig.ConfigMapKey], `"price": "0.02"`) {
		t.Errorf("ConfigMap not updated: %s", cm.Data[gwconfig.ConfigMapKey])
	}
	if !f.exists(&policyv1.PodDisruptionBudget{}, pr.Name) {
		t.Error("the PodDisruptionBudget went with scaling to one replica")
	}
	got := f.Get(pr.Name)
	// The Deployment controller has not seen the new generation: not Ready until it has.
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReady, metav1.ConditionFalse, integrationsv1alpha1.ReasonDeploymentPending)
	if !f.events.Has("RolloutStarted") {
		t.Errorf("no RolloutStarted event: %v", f.events.All())
	}
	makeAvailable(t, f.c, d)
	f.reconcile(pr.Name)
	controllertest.AssertReady(t, f.Get(pr.Name), integrationsv1alpha1.ReasonReconciled)
	if n := testutil.ToFloat64(f.r.metrics.routes.Gauge(kit.StateReady)); n != 1 {
		t.Errorf("ready routes metric = %v", n)
	}

	// A hand edit of a field the route renders is taken back on the next reconcile.
	d = f.deployment(pr.Name)
	d.Spec.Template.Spec.Containers[0].Image = "example/hand-edited:1"
	if err := f.c.Update(f.ctx, d); err != nil {
		t.Fatal(err)
	}
	f.reconcile(pr.Name)
	if img := f.deployment(pr.Name).Spec.Template.Spec.Containers[0].Image; img != testGatewayImage {
		t.Errorf("image after a hand edit and a reconcile: %s", img)
	}

	// "Reconcile now" (flux reconcile) is echoed once handled.
	f.Update(pr.Name, func(p *integrationsv1alpha1.PaymentRoute) {
		p.Annotations = map[string]string{kit.AnnotationRequestedAt: "2026-11-26T10:00:00Z"}
	})
	f.reconcile(pr.Name)
	if got := f.Get(pr.Name).Status.LastHandledReconcileAt; got != "2026-11-26T10:00:00Z" {
		t.Errorf("lastHandledReconcileAt = %q", got)
	}

	// Rotating the OKX credentials rolls the pods too (env vars never refresh in place).
	f.secret("okx-x402-credentials", map[string]string{"apiKey": "okx-api-key-2", "secretKey": testOKXSecretKey + "2", "passphrase": testOKXPassphrase})
	f.reconcile(pr.Name)
	if h2 := f.deployment(pr.Name).Spec.Template.Annotations[annotationGatewayHash]; h2 == h1 {
		t.Error("a Secret change did not change the pod-template hash")
	}
}

func TestPaymentRouteMockFacilitatorNeedsTheFlag(t *testing.T) {
	mockRoute := func() *integrationsv1alpha1.PaymentRoute {
		pr := httpRoute("demo")
		pr.Spec.Facilitator = integrationsv1alpha1.Facilitator{Mock: &integrationsv1alpha1.MockFacilitator{}}
		return pr
	}

	f := newRouteFixture(t, Options{}, nil)
	f.Create(mockRoute())
	f.reconcile("demo")
	got := f.Get("demo")
	c := controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonMockRefused)
	if !strings.Contains(c.Message, "--allow-mock-facilitator") {
		t.Errorf("message does not say how to allow it: %s", c.Message)
	}
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReady, metav1.ConditionFalse, integrationsv1alpha1.ReasonMockRefused)
	controllertest.WantKstatus(t, got, kstatus.FailedStatus)
	if f.exists(&appsv1.Deployment{}, "demo") {
		t.Error("a refused mock route got a gateway")
	}
	if !f.events.Has(integrationsv1alpha1.ReasonMockRefused) {
		t.Errorf("events %v", f.events.All())
	}
	if n := testutil.ToFloat64(f.r.metrics.routes.Gauge(kit.StateStalled)); n != 1 {
		t.Errorf("stalled routes metric = %v", n)
	}

	allowed := newRouteFixture(t, Options{AllowMockFacilitator: true}, nil)
	allowed.Create(mockRoute())
	allowed.reconcile("demo")
	makeAvailable(t, allowed.c, allowed.deployment("demo"))
	allowed.reconcile("demo")
	got = allowed.Get("demo")
	controllertest.AssertReady(t, got, integrationsv1alpha1.ReasonReconciled)
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionMockFacilitator, metav1.ConditionTrue, integrationsv1alpha1.ReasonMockAllowed)
	if got.Status.MockSettled == nil || got.Status.MockSettled.Count != 0 {
		t.Errorf("mockSettled %+v", got.Status.MockSettled)
	}
	warnings := 0
	for _, e := range allowed.events.All() {
		if strings.HasPrefix(e, "Warning "+integrationsv1alpha1.ReasonMockAllowed) {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("want one mock warning event, got %d: %v", warnings, allowed.events.All())
	}

	// The manager restarted without the flag: the running mock gateway must go, or it would keep
	// serving content for payments that move no funds.
	allowed.r.AllowMockFacilitator = false
	allowed.reconcile("demo")
	controllertest.WantCondition(t, allowed.Get("demo"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonMockRefused)
	if allowed.exists(&appsv1.Deployment{}, "demo") {
		t.Error("the mock gateway kept running after the mock facilitator was refused")
	}
}

func TestPaymentRouteMissingSecretOrKeyStalls(t *testing.T) {
	f := newRouteFixture(t, Options{}, nil)
	pr := loadRouteSample(t, "okx")
	f.Create(pr)
	f.reconcile(pr.Name)
	c := controllertest.WantCondition(t, f.Get(pr.Name), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonSecretNotFound)
	if !strings.Contains(c.Message, `"okx-x402-credentials"`) {
		t.Errorf("message does not name the Secret: %s", c.Message)
	}

	// The Secret exists but lacks the passphrase.
	f.secret("okx-x402-credentials", map[string]string{"apiKey": "okx-api-key", "secretKey": testOKXSecretKey})
	f.reconcile(pr.Name)
	got := f.Get(pr.Name)
	c = controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonSecretKeyMissing)
	if !strings.Contains(c.Message, `"passphrase"`) || strings.Contains(c.Message, `"secretKey"`) {
		t.Errorf("message should name exactly the missing key: %s", c.Message)
	}
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReady, metav1.ConditionFalse, integrationsv1alpha1.ReasonSecretKeyMissing)
	if f.exists(&appsv1.Deployment{}, pr.Name) {
		t.Error("a gateway was deployed without its credentials")
	}
	controllertest.AssertNoLeak(t, got, f.events.All(), testOKXSecretKey, "okx-api-key", f.db.URL)

	// Completing the Secret clears Stalled.
	f.okxSecret()
	f.reconcile(pr.Name)
	got = f.Get(pr.Name)
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReconciling, metav1.ConditionTrue, integrationsv1alpha1.ReasonDeploymentPending)
	if routeConditionOrNil(got, integrationsv1alpha1.ConditionStalled) != nil {
		t.Error("Stalled remains after the Secret was fixed")
	}
}

func TestPaymentRouteTotalsExcludeMockAndCountPending(t *testing.T) {
	f := newRouteFixture(t, Options{AllowMockFacilitator: true}, nil)
	f.Create(httpRoute("shop"))
	f.reconcile("shop")
	l, err := ledger.New(f.db.Pool(t), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	route := f.ns + "/shop"
	var last string
	for _, a := range []string{"10000", "2500000"} {
		if last, err = pay(f.ctx, l, route, a, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pay(f.ctx, l, route, "7", true); err != nil {
		t.Fatal(err)
	}
	if _, err := pay(f.ctx, l, f.ns+"/other", "99", false); err != nil {
		t.Fatal(err)
	}
	// One payment whose settle outcome is unknown.
	c, err := l.Claim(f.ctx, ledger.Intent{Payer: "0x2222222222222222222222222222222222222222", Nonce: "0x" + strings.Repeat("ab", 32),
		Route: route, Endpoint: "/paid", Amount: "5", Network: integrationsv1alpha1.DefaultNetwork})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.MarkSettling(f.ctx, c.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkPending(f.ctx, c.Ticket, "", "timeout"); err != nil {
		t.Fatal(err)
	}

	// The first status write was just now: totals alone wait for the write interval.
	rv := f.Get("shop").ResourceVersion
	if res := f.reconcile("shop"); res.RequeueAfter <= 0 || res.RequeueAfter > f.r.TotalsWriteInterval {
		t.Errorf("a deferred totals write asks for a requeue in %s", res.RequeueAfter)
	}
	if f.Get("shop").ResourceVersion != rv {
		t.Error("totals were written before the write interval passed")
	}
	if n := testutil.ToFloat64(f.r.metrics.deferredWrites); n != 1 {
		t.Errorf("coalesced writes metric = %v", n)
	}
	f.step(f.r.TotalsWriteInterval)
	f.reconcile("shop")
	got := f.Get("shop").Status
	if s := got.Settled; s.Count != 2 || s.Amount != "2510000" || s.Total != "2.51" || s.LastTxHash != last || s.LastSettledTime == nil {
		t.Errorf("settled %+v", s)
	}
	if got.MockSettled == nil || got.MockSettled.Count != 1 || got.MockSettled.Amount != "7" || got.MockSettled.Total != "0.000007" {
		t.Errorf("mockSettled %+v", got.MockSettled)
	}
	if got.Pending.Count != 1 {
		t.Errorf("pending %+v", got.Pending)
	}
	// Totals unchanged: no write.
	rv = f.Get("shop").ResourceVersion
	f.reconcile("shop")
	if f.Get("shop").ResourceVersion != rv {
		t.Error("unchanged totals were written again")
	}
}

func TestPaymentRouteBadDatabaseURLStallsWithoutTheURL(t *testing.T) {
	f := newRouteFixture(t, Options{}, nil)
	bad := "postgres://user:hunter2-SECRET@host:notaport/db"
	f.secret("insforge-db", map[string]string{"uri": bad})
	f.Create(httpRoute("shop"))
	f.reconcile("shop")
	got := f.Get("shop")
	c := controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonInvalidSpec)
	if !strings.Contains(c.Message, `"insforge-db"`) {
		t.Errorf("message %s", c.Message)
	}
	controllertest.AssertNoLeak(t, got, f.events.All(), "hunter2-SECRET", bad)
}

func routeConditionOrNil(pr *integrationsv1alpha1.PaymentRoute, typ string) *metav1.Condition {
	for i := range pr.Status.Conditions {
		if pr.Status.Conditions[i].Type == typ {
			return &pr.Status.Conditions[i]
		}
	}
	return nil
}

func TestPaymentRouteUnreachableLedgerIsRetriedBeforeAnyGateway(t *testing.T) {
	f := newRouteFixture(t, Options{}, nil)
	f.secret("insforge-db", map[string]string{"uri": "postgres://gw:pw-SECRET-77@127.0.0.1:1/app?connect_timeout=2"})
	f.Create(httpRoute("shop"))
	if _, err := f.r.Reconcile(f.ctx, reqFor(f.ns, "shop")); err == nil {
		t.Fatal("an unreachable ledger database is not retried")
	}
	got := f.Get("shop")
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionLedgerReady, metav1.ConditionFalse, integrationsv1alpha1.ReasonDatabaseError)
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReconciling, metav1.ConditionTrue, integrationsv1alpha1.ReasonDatabaseError)
	if routeConditionOrNil(got, integrationsv1alpha1.ConditionStalled) != nil {
		t.Error("an unreachable database stalled the route")
	}
	if f.exists(&appsv1.Deployment{}, "shop") {
		t.Error("the gateway was deployed before its ledger schema")
	}
	if !f.events.Has("LedgerError") {
		t.Errorf("no LedgerError event: %v", f.events.All())
	}
	controllertest.AssertNoLeak(t, got, f.events.All(), "pw-SECRET-77")
}

// A route that sets no replicas leaves the count to whoever scales the gateway (a
// HorizontalPodAutoscaler writes the scale subresource): no reconcile takes it back, and the
// status reports it. A route that sets replicas owns the count and takes a manual scale back.
func TestPaymentRouteLeavesUnsetReplicasToTheAutoscaler(t *testing.T) {
	f := newRouteFixture(t, Options{}, xlayerUSDG)
	f.secret("x402-relayer", map[string]string{"privateKey": testRelayerKey})
	pr := loadRouteSample(t, "onchain") // sets no replicas
	f.Create(pr)
	f.reconcile(pr.Name)
	scale := func(n int32) {
		t.Helper()
		sc := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: n}}
		if err := f.c.SubResource("scale").Update(f.ctx, f.deployment(pr.Name), client.WithSubResourceBody(sc)); err != nil {
			t.Fatal(err)
		}
	}
	replicas := func() int32 { return *f.deployment(pr.Name).Spec.Replicas }
	if n := replicas(); n != 1 {
		t.Fatalf("a new Deployment has %d replicas, want 1", n)
	}

	scale(3)
	makeAvailable(t, f.c, f.deployment(pr.Name))
	f.reconcile(pr.Name)
	got := f.Get(pr.Name)
	controllertest.AssertReady(t, got, integrationsv1alpha1.ReasonReconciled)
	if n, g := replicas(), got.Status.Gateway; n != 3 || g.Replicas != 3 || g.ReadyReplicas != 3 {
		t.Errorf("after the autoscaler scaled to 3: Deployment %d, status.gateway %+v", n, g)
	}
	// A spec change applies the Deployment again; the count stays the autoscaler's.
	f.Update(pr.Name, func(p *integrationsv1alpha1.PaymentRoute) { p.Spec.Routes[0].Price = "0.02" })
	f.reconcile(pr.Name)
	if n := replicas(); n != 3 {
		t.Errorf("a spec change reset the autoscaler's 3 replicas to %d", n)
	}

	// Once the route sets a count, it owns it.
	f.Update(pr.Name, func(p *integrationsv1alpha1.PaymentRoute) { p.Spec.Gateway.Replicas = ptr.To[int32](2) })
	f.reconcile(pr.Name)
	if n := replicas(); n != 2 {
		t.Errorf("replicas %d after the route set 2", n)
	}
	scale(5)
	f.reconcile(pr.Name)
	if n := replicas(); n != 2 {
		t.Errorf("replicas %d after a manual scale to 5, want the route's 2", n)
	}
}

func TestPaymentRouteReportsUnresolvedPayments(t *testing.T) {
	f := newRouteFixture(t, Options{}, nil)
	f.Create(httpRoute("shop"))
	f.reconcile("shop")
	got := f.Get("shop")
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionSettlementsResolved, metav1.ConditionTrue, integrationsv1alpha1.ReasonAllResolved)
	readyBefore := controllertest.Condition(t, got, integrationsv1alpha1.ConditionReady)

	pool := f.db.Pool(t)
	l, err := ledger.New(pool, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	route := f.ns + "/shop"
	// A settle whose outcome the resolver has not found for two hours, and a recent one.
	for i, age := range []string{"2 hours", "5 minutes"} {
		c, err := l.Claim(f.ctx, ledger.Intent{Payer: "0x2222222222222222222222222222222222222222", Nonce: "0x" + strings.Repeat(fmt.Sprintf("%02x", i+1), 32),
			Route: route, Endpoint: "/paid", Amount: "5", Network: integrationsv1alpha1.DefaultNetwork})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.MarkSettling(f.ctx, c.Ticket); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(f.ctx, `UPDATE x402_payments SET status = 'pending', created_at = now() - $2::interval WHERE id = $1`, c.Ticket.ID, age); err != nil {
			t.Fatal(err)
		}
	}
	f.reconcile("shop")
	got = f.Get("shop")
	c := controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionSettlementsResolved, metav1.ConditionFalse, integrationsv1alpha1.ReasonUnresolved)
	if want := "1 payments have had an unknown settlement outcome for more than 1h; see docs/gateway.md#unresolved-payments"; c.Message != want {
		t.Errorf("message %q, want %q", c.Message, want)
	}
	if got.Status.Pending.Count != 2 {
		t.Errorf("pending %+v", got.Status.Pending)
	}
	// Ready speaks about the gateway, not about one payment in doubt.
	if r := controllertest.Condition(t, got, integrationsv1alpha1.ConditionReady); r.Status != readyBefore.Status || r.Reason != readyBefore.Reason {
		t.Errorf("Ready changed: %+v, was %+v", r, readyBefore)
	}
	if !f.events.Has(integrationsv1alpha1.ReasonUnresolved) {
		t.Errorf("no %s event: %v", integrationsv1alpha1.ReasonUnresolved, f.events.All())
	}

	// Someone resolves it: the condition clears.
	if _, err := pool.Exec(f.ctx, `UPDATE x402_payments SET status = 'failed' WHERE created_at < now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	f.reconcile("shop")
	controllertest.WantCondition(t, f.Get("shop"), integrationsv1alpha1.ConditionSettlementsResolved, metav1.ConditionTrue, integrationsv1alpha1.ReasonAllResolved)
}

// Every Secret a route names, whether the operator reads it (the ledger database) or only hands
// it to the gateway (OKX credentials, the relayer key, facilitator headers), must opt in: naming
// an unlabelled Secret stalls the route and no gateway gets it.
func TestPaymentRouteSecretsMustOptIn(t *testing.T) {
	withHeaders := func() *integrationsv1alpha1.PaymentRoute {
		pr := httpRoute("shop")
		pr.Spec.Facilitator.HTTP.HeadersSecretRef = &integrationsv1alpha1.LocalSecretReference{Name: "facilitator-headers"}
		return pr
	}
	cases := []struct {
		name, unlabelled string
		route            func(t *testing.T) *integrationsv1alpha1.PaymentRoute
	}{
		{"ledger database", "insforge-db", func(*testing.T) *integrationsv1alpha1.PaymentRoute { return httpRoute("shop") }},
		{"facilitator headers", "facilitator-headers", func(*testing.T) *integrationsv1alpha1.PaymentRoute { return withHeaders() }},
		{"okx credentials", "okx-x402-credentials", func(t *testing.T) *integrationsv1alpha1.PaymentRoute { return loadRouteSample(t, "okx") }},
		{"relayer key", "x402-relayer", func(t *testing.T) *integrationsv1alpha1.PaymentRoute { return loadRouteSample(t, "onchain") }},
	}
	secrets := map[string]map[string]string{
		"insforge-db":          nil, // the fixture's database URL
		"facilitator-headers":  {"Authorization": "Bearer hdr-" + testOKXSecretKey},
		"okx-x402-credentials": {"apiKey": "okx-api-key", "secretKey": testOKXSecretKey, "passphrase": testOKXPassphrase},
		"x402-relayer":         {"privateKey": testRelayerKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newRouteFixture(t, Options{}, xlayerUSDG)
			for name, data := range secrets {
				if data == nil {
					data = map[string]string{"uri": f.db.URL}
				}
				if name == tc.unlabelled {
					controllertest.PutUnlabelledSecret(t, f.c, f.ns, name, data)
				} else {
					f.secret(name, data)
				}
			}
			pr := tc.route(t)
			f.Create(pr)
			f.reconcile(pr.Name)
			got := f.Get(pr.Name)
			c := controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonSecretNotOptedIn)
			if !strings.Contains(c.Message, `"`+tc.unlabelled+`"`) || !strings.Contains(c.Message, integrationsv1alpha1.LabelSecretAccess+"=true") {
				t.Errorf("message should name the Secret and the label: %s", c.Message)
			}
			if f.exists(&appsv1.Deployment{}, pr.Name) {
				t.Error("a gateway was deployed with a Secret that does not opt in")
			}
			controllertest.AssertNoLeak(t, got, f.events.All(), testOKXSecretKey, testOKXPassphrase, testRelayerKey, f.db.URL)

			// Opting in clears Stalled.
			f.secret(tc.unlabelled, secrets[tc.unlabelled])
			if secrets[tc.unlabelled] == nil {
				f.secret(tc.unlabelled, map[string]string{"uri": f.db.URL})
			}
			f.reconcile(pr.Name)
			if c := routeConditionOrNil(f.Get(pr.Name), integrationsv1alpha1.ConditionStalled); c != nil {
				t.Errorf("still stalled after the Secret opted in: %+v", c)
			}
			if !f.exists(&appsv1.Deployment{}, pr.Name) {
				t.Error("no gateway after the Secret opted in")
			}
		})
	}
}

// The ledger connection: no value reaches status, events or the reconcile's error, whatever its
// shape (the shapes people put into the wrong Secret).
func TestPaymentRouteConnectionValuesNeverLeak(t *testing.T) {
	values := map[string]string{
		"api key":          "sk_live_51HxMARKERapikey0123456789",
		"json key file":    `{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvMARKER\n-----END PRIVATE KEY-----\n"}`,
		"user:pass":        "admin:hunter2MARKERpass",
		"url, bad escape":  "postgres://app:pw%ZZMARKER@127.0.0.1:1/db",
		"url, unreachable": "postgres://app:pwMARKER@127.0.0.1:1/db?connect_timeout=2",
		"keyword dsn":      "host=127.0.0.1 port=1 user=app password=kvMARKER dbname=db connect_timeout=2",
		"two lines":        "postgres://app@127.0.0.1:1/db\npassword=MARKER",
	}
	for name, value := range values {
		t.Run(name, func(t *testing.T) {
			f := newRouteFixture(t, Options{}, nil)
			f.secret("insforge-db", map[string]string{"uri": value})
			f.Create(httpRoute("shop"))
			_, err := f.r.Reconcile(f.ctx, reqFor(f.ns, "shop"))
			got := f.Get("shop")
			if c := routeConditionOrNil(got, integrationsv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse {
				t.Fatalf("Ready with a ledger connection that cannot work: %+v", got.Status.Conditions)
			}
			notes := f.events.All()
			if err != nil {
				notes = append(notes, err.Error())
			}
			controllertest.AssertNoLeak(t, got, notes, "MARKER", value)
		})
	}
}

// database.gatewayConnectionSecretRef: the gateway pods get that URL and never the operator's;
// the operator gives the role the ledger's privileges (and again after they drift), and stalls
// while the role does not exist or the URL cannot be parsed.
func TestPaymentRouteGatewayConnectsWithItsOwnRole(t *testing.T) {
	f := newRouteFixture(t, Options{}, nil)
	role := "gwr_" + f.db.Name
	u, err := url.Parse(f.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "gw-SECRET-password")
	f.secret("insforge-db-gateway", map[string]string{"uri": u.String()})
	pr := httpRoute("shop")
	pr.Spec.Database.GatewayConnectionSecretRef = &integrationsv1alpha1.SecretKeySelector{Name: "insforge-db-gateway"}
	// A headers Secret too: a need with a prefix and no keys, after the gateway's connection.
	f.secret("facilitator-headers", map[string]string{"Authorization": "Bearer t"})
	pr.Spec.Facilitator.HTTP.HeadersSecretRef = &integrationsv1alpha1.LocalSecretReference{Name: "facilitator-headers"}
	f.Create(pr)

	f.reconcile("shop")
	c := controllertest.WantCondition(t, f.Get("shop"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, reasonGatewayRoleMissing)
	if !strings.Contains(c.Message, role) {
		t.Errorf("message does not name the role: %s", c.Message)
	}
	if f.exists(&appsv1.Deployment{}, "shop") {
		t.Error("a gateway was deployed before its role could use the ledger")
	}

	// An editor naming a role API clients act as (InsForge's authenticated is NOLOGIN) gets nothing.
	api := role + "_api"
	f.db.Exec(t, "CREATE ROLE "+api+" NOLOGIN")
	t.Cleanup(func() { f.db.Exec(t, "DROP ROLE "+api) })
	u.User = url.User(api)
	f.secret("insforge-db-gateway", map[string]string{"uri": u.String()})
	f.reconcile("shop")
	controllertest.WantCondition(t, f.Get("shop"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, reasonGatewayRoleRefused)
	if f.exists(&appsv1.Deployment{}, "shop") || f.events.Has("GatewayAccessGranted") {
		t.Fatal("a refused role got a gateway or the ledger's privileges")
	}

	u.User = url.UserPassword(role, "gw-SECRET-password")
	f.secret("insforge-db-gateway", map[string]string{"uri": u.String()})
	f.db.Exec(t, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() { f.db.Exec(t, "DROP OWNED BY "+role+"; DROP ROLE "+role) })
	f.reconcile("shop")
	if !f.events.Has("GatewayAccessGranted") {
		t.Fatalf("no grant event: %v", f.events.All())
	}
	env := f.deployment("shop").Spec.Template.Spec.Containers[0].Env
	var dbEnv []string
	for _, e := range env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "insforge-db" {
			t.Errorf("the operator's connection Secret reaches the gateway as %s", e.Name)
		}
		if e.Name == gwconfig.EnvDatabaseURL {
			dbEnv = append(dbEnv, e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key)
		}
	}
	if !reflect.DeepEqual(dbEnv, []string{"insforge-db-gateway/uri"}) {
		t.Errorf("%s comes from %v", gwconfig.EnvDatabaseURL, dbEnv)
	}
	var policies int
	f.db.Exec(t, "SELECT 1") // the database is reachable for the checks below
	pool := f.db.Pool(t)
	if err := pool.QueryRow(f.ctx, `SELECT count(*) FROM pg_policy WHERE polname = $1`, "gateway_"+role).Scan(&policies); err != nil || policies != 3 {
		t.Fatalf("%d gateway policies, %v", policies, err)
	}

	// Drift: a revoked privilege comes back once the check is due again, not on every reconcile.
	f.db.Exec(t, "REVOKE INSERT ON x402_payments FROM "+role)
	granted := func() int {
		n := 0
		for _, e := range f.events.All() {
			if strings.Contains(e, "GatewayAccessGranted") {
				n++
			}
		}
		return n
	}
	f.reconcile("shop")
	if granted() != 1 {
		t.Errorf("the privileges were checked again before the interval: %d grants", granted())
	}
	f.step(f.r.Resync)
	f.reconcile("shop")
	if granted() != 2 {
		t.Errorf("a revoked privilege was not granted again: %d grants", granted())
	}
	controllertest.AssertNoLeak(t, f.Get("shop"), f.events.All(), "gw-SECRET-password", f.db.URL)

	// A gateway URL pgx cannot parse stalls without being quoted.
	f.secret("insforge-db-gateway", map[string]string{"uri": "postgres://gw:pw-SECRET@host:notaport/db"})
	f.reconcile("shop")
	got := f.Get("shop")
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonInvalidSpec)
	controllertest.AssertNoLeak(t, got, f.events.All(), "pw-SECRET", "notaport")
}

// The operator-level allow-lists: an image override or a URL the manager does not allow stalls
// the route before any Secret is read or any node dialled; allowed ones go through.
func TestPaymentRouteAllowLists(t *testing.T) {
	egress, err := allowlist.ParseOrigins([]string{"https://facilitator.example", "http://chain.example:8545"})
	if err != nil {
		t.Fatal(err)
	}
	f := newRouteFixture(t, Options{GatewayImages: allowlist.Images{"ghcr.io/acme/"}, Egress: egress}, nil)

	pr := httpRoute("shop")
	pr.Spec.Gateway.Image = "docker.io/attacker/gateway:1"
	pr.Spec.Facilitator.HTTP.URL = "https://facilitator.example"
	f.Create(pr)
	f.reconcile("shop")
	c := controllertest.WantCondition(t, f.Get("shop"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, reasonImageNotAllowed)
	if !strings.Contains(c.Message, "docker.io/attacker/gateway:1") || !strings.Contains(c.Message, "--gateway-image-allow") {
		t.Errorf("message: %s", c.Message)
	}
	if f.exists(&appsv1.Deployment{}, "shop") {
		t.Fatal("a gateway runs an image the manager does not allow")
	}

	// Allowed image, but the facilitator moves to an origin that is not allowed (the cloud
	// metadata address, say): refused before the chain node is dialled.
	f.Update("shop", func(pr *integrationsv1alpha1.PaymentRoute) {
		pr.Spec.Gateway.Image = "ghcr.io/acme/gateway:2"
		pr.Spec.Facilitator.HTTP.URL = "http://169.254.169.254/latest"
	})
	f.reconcile("shop")
	c = controllertest.WantCondition(t, f.Get("shop"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, reasonURLNotAllowed)
	if !strings.Contains(c.Message, "spec.facilitator.http.url") {
		t.Errorf("message: %s", c.Message)
	}
	f.Update("shop", func(pr *integrationsv1alpha1.PaymentRoute) {
		pr.Spec.Facilitator.HTTP.URL = "https://facilitator.example/x402"
		pr.Spec.Facilitator.HTTP.RPCURL = "http://10.0.0.1:8545"
	})
	f.reconcile("shop")
	controllertest.WantCondition(t, f.Get("shop"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, reasonURLNotAllowed)
	if n := f.dials.Load(); n != 0 {
		t.Fatalf("the operator dialled %d times a node it does not allow", n)
	}

	f.Update("shop", func(pr *integrationsv1alpha1.PaymentRoute) {
		pr.Spec.Facilitator.HTTP.RPCURL = "http://chain.example:8545"
	})
	f.reconcile("shop")
	if c := routeConditionOrNil(f.Get("shop"), integrationsv1alpha1.ConditionStalled); c != nil {
		t.Fatalf("allowed image and URLs still stalled: %+v", c)
	}
	if img := f.deployment("shop").Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/acme/gateway:2" {
		t.Errorf("gateway image %s", img)
	}
}

// A route cannot mount a Secret the operator wrote for an AuthIntegration (its JWT secret, which
// can mint admin tokens) and send it as facilitator headers.
func TestPaymentRouteCannotReferenceTheOperatorsOwnSecrets(t *testing.T) {
	f := newRouteFixture(t, Options{}, nil)
	jwt := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "app-jwt", Labels: map[string]string{
		integrationsv1alpha1.LabelSecretAccess: kit.SecretAccessOwned, kit.LabelManagedBy: kit.ManagerName,
	}}, StringData: map[string]string{"JWT_SECRET": "jwt-SECRET-" + strings.Repeat("k", 40)}}
	if err := f.c.Create(f.ctx, jwt); err != nil {
		t.Fatal(err)
	}
	pr := httpRoute("shop")
	pr.Spec.Facilitator.HTTP.HeadersSecretRef = &integrationsv1alpha1.LocalSecretReference{Name: "app-jwt"}
	f.Create(pr)
	f.reconcile("shop")
	got := f.Get("shop")
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonSecretNotOptedIn)
	if f.exists(&appsv1.Deployment{}, "shop") {
		t.Fatal("a gateway mounts the operator's JWT Secret")
	}
	controllertest.AssertNoLeak(t, got, f.events.All(), "jwt-SECRET-")
}
