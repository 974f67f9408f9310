package paymentroute

import (
	"context"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/evmtest"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// onchainRoute settles on the simulated chain's token with the given EIP-712 name.
func onchainRoute(name string, tok *evmtest.Token, eip712Name string) *integrationsv1alpha1.PaymentRoute {
	pr := httpRoute(name)
	pr.Spec.Network = evmtest.Network
	pr.Spec.Asset = integrationsv1alpha1.Asset{
		Address: tok.Address.Hex(), Decimals: 6, Symbol: "TST",
		EIP712: integrationsv1alpha1.EIP712Domain{Name: eip712Name, Version: tok.Version},
	}
	pr.Spec.Facilitator = integrationsv1alpha1.Facilitator{Onchain: &integrationsv1alpha1.OnchainFacilitator{
		RPCURL:              "http://chain.test:8545",
		RelayerKeySecretRef: integrationsv1alpha1.SecretKeySelector{Name: "x402-relayer"},
	}}
	return pr
}

func TestPaymentRouteDomainMismatchAgainstTheToken(t *testing.T) {
	chain := evmtest.New(t)
	tok := chain.DeployToken(t, "Other Dollar", "1")
	var dialed []string
	dial := func(_ context.Context, url string) (ethereum.ContractCaller, func(), error) {
		dialed = append(dialed, url)
		return chain.Client, func() {}, nil
	}
	f := newRouteFixture(t, Options{}, dial)
	f.secret("x402-relayer", map[string]string{"privateKey": testRelayerKey})
	f.Create(onchainRoute("reports", tok, "Global Dollar"))
	f.reconcile("reports")

	got := f.Get("reports")
	c := controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonDomainMismatch)
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReady, metav1.ConditionFalse, integrationsv1alpha1.ReasonDomainMismatch)
	configured := eip3009.Domain{Name: "Global Dollar", Version: "1", ChainID: chain.ChainID, VerifyingContract: tok.Address}.Separator()
	actual := eip3009.Domain{Name: "Other Dollar", Version: "1", ChainID: chain.ChainID, VerifyingContract: tok.Address}.Separator()
	for _, want := range []string{configured.Hex(), actual.Hex(), `name() is "Other Dollar"`, `"Global Dollar"`} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message lacks %s: %s", want, c.Message)
		}
	}
	if !f.events.Has(integrationsv1alpha1.ReasonDomainMismatch) {
		t.Errorf("no mismatch event: %v", f.events.All())
	}
	if f.exists(&appsv1.Deployment{}, "reports") {
		t.Error("a gateway was deployed for a token domain that rejects every payment")
	}

	// The answer is cached: another reconcile does not call the node.
	f.reconcile("reports")
	if len(dialed) != 1 || dialed[0] != "http://chain.test:8545" {
		t.Errorf("dialed %v, want one call to the route's RPC URL", dialed)
	}

	// With the token's real name the domain matches and the gateway is deployed.
	f.Update("reports", func(p *integrationsv1alpha1.PaymentRoute) { p.Spec.Asset.EIP712.Name = "Other Dollar" })
	f.reconcile("reports")
	if len(dialed) != 2 {
		t.Errorf("a new domain was not checked: dialed %d times", len(dialed))
	}
	makeAvailable(t, f.c, f.deployment("reports"))
	f.reconcile("reports")
	got = f.Get("reports")
	controllertest.AssertReady(t, got, integrationsv1alpha1.ReasonReconciled)
	if msg := controllertest.Condition(t, got, integrationsv1alpha1.ConditionReady).Message; !strings.Contains(msg, "domain verified") {
		t.Errorf("Ready message %q", msg)
	}
	controllertest.AssertNoLeak(t, got, f.events.All(), testRelayerKey, strings.TrimPrefix(testRelayerKey, "0x"))
}

func TestPaymentRouteUnreachableNodeKeepsOnchainRoutesUnready(t *testing.T) {
	f := newRouteFixture(t, Options{}, nil) // the default test dialer fails
	f.secret("x402-relayer", map[string]string{"privateKey": testRelayerKey})
	chain := evmtest.New(t)
	f.Create(onchainRoute("reports", chain.DeployToken(t, "Global Dollar", "1"), "Global Dollar"))
	if _, err := f.r.Reconcile(f.ctx, reqFor(f.ns, "reports")); err == nil {
		t.Fatal("an unreachable node is not retried")
	}
	got := f.Get("reports")
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReconciling, metav1.ConditionTrue, integrationsv1alpha1.ReasonRPCUnavailable)
	if routeConditionOrNil(got, integrationsv1alpha1.ConditionStalled) != nil {
		t.Error("a transient RPC failure stalled the route")
	}
}

func TestPaymentRouteOKXDomainCheckIsOptionalButEnforced(t *testing.T) {
	// The node serves a token whose domain is named "Global Dollar" at chain 196.
	f := newRouteFixture(t, Options{}, xlayerUSDG)
	f.okxSecret()
	pr := loadRouteSample(t, "okx")
	pr.Spec.Facilitator.OKX.RPCURL = "https://rpc.example"
	pr.Spec.Asset.EIP712.Name = "USDG"
	f.Create(pr)
	f.reconcile(pr.Name)
	c := controllertest.WantCondition(t, f.Get(pr.Name), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonDomainMismatch)
	if !strings.Contains(c.Message, `name "USDG"`) {
		t.Errorf("message %s", c.Message)
	}

	// Without a reachable node an okx route still runs (OKX settles, not this node), with a warning.
	down := newRouteFixture(t, Options{}, nil)
	down.okxSecret()
	pr = loadRouteSample(t, "okx")
	pr.Spec.Facilitator.OKX.RPCURL = "https://rpc.example"
	down.Create(pr)
	down.reconcile(pr.Name)
	makeAvailable(t, down.c, down.deployment(pr.Name))
	res := down.reconcile(pr.Name)
	got := down.Get(pr.Name)
	controllertest.AssertReady(t, got, integrationsv1alpha1.ReasonReconciled)
	if msg := controllertest.Condition(t, got, integrationsv1alpha1.ConditionReady).Message; !strings.Contains(msg, "could not be checked") {
		t.Errorf("Ready message lacks the warning: %s", msg)
	}
	// No later than rpcRetry: the route's resync slot may come first (kit.UntilSlot).
	if res.RequeueAfter <= 0 || res.RequeueAfter > rpcRetry {
		t.Errorf("an unchecked domain is retried after %s, want within %s", res.RequeueAfter, rpcRetry)
	}
}
