package paymentroute

import (
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/tokendomain"
)

// TestDecide walks decide's checks in order: each case is the facts one reconcile gathered and
// what must be done about them.
func TestDecide(t *testing.T) {
	withFacilitator := func(f integrationsv1alpha1.Facilitator) *integrationsv1alpha1.PaymentRoute {
		pr := httpRoute("shop")
		pr.Namespace = "ns"
		pr.Spec.Facilitator = f
		return pr
	}
	okx := withFacilitator(integrationsv1alpha1.Facilitator{OKX: &integrationsv1alpha1.OKXFacilitator{
		CredentialsSecretRef: integrationsv1alpha1.LocalSecretReference{Name: "okx"}, RPCURL: "http://node.example"}})
	onchain := withFacilitator(integrationsv1alpha1.Facilitator{Onchain: &integrationsv1alpha1.OnchainFacilitator{
		RPCURL: "http://node.example", RelayerKeySecretRef: integrationsv1alpha1.SecretKeySelector{Name: "relayer"}}})
	plain := httpRoute("shop")
	plain.Namespace = "ns"
	mock := withFacilitator(integrationsv1alpha1.Facilitator{Mock: &integrationsv1alpha1.MockFacilitator{}})
	factsOf := func(pr *integrationsv1alpha1.PaymentRoute, change func(*facts)) facts {
		var f facts
		f.facilitator, _ = facilitatorOf(pr.Spec.Facilitator)
		f.config, f.configErr = gatewayConfig(pr)
		if f.configErr != nil {
			t.Fatal(f.configErr)
		}
		f.secrets = routeSecrets{dsn: "postgres://db/app", versions: map[string]string{"insforge-db": "1"}}
		f.checked = f.facilitator.rpcURL != ""
		f.domain = tokendomain.Result{OK: f.checked}
		if change != nil {
			change(&f)
		}
		return f
	}
	opts := Options{GatewayImage: testGatewayImage}
	unreachable := errors.New("dial tcp: connection refused")

	for _, tc := range []struct {
		name  string
		route *integrationsv1alpha1.PaymentRoute
		facts facts
		opts  Options
		// want: the stall reason or transient reason ("" for none), and whether it runs.
		stall, transient string
		run, stop        bool
		apiErr           bool
		retry            time.Duration
		check            func(t *testing.T, p plan)
	}{
		{name: "http route runs", route: plain, facts: factsOf(plain, nil), opts: opts, run: true,
			check: func(t *testing.T, p plan) {
				if p.dsn != "postgres://db/app" || p.config.Route != "ns/shop" || p.objects == nil {
					t.Errorf("plan = %+v", p)
				}
			}},
		{name: "mock refused stops the gateway", route: mock, facts: factsOf(mock, nil), opts: opts,
			stall: integrationsv1alpha1.ReasonMockRefused, stop: true},
		{name: "mock allowed runs", route: mock, facts: factsOf(mock, nil), opts: Options{GatewayImage: testGatewayImage, AllowMockFacilitator: true},
			run: true, check: func(t *testing.T, p plan) {
				if !p.mockAllowed {
					t.Error("mockAllowed not set")
				}
			}},
		{name: "spec that does not render", route: okx, facts: factsOf(okx, func(f *facts) { f.configErr = errors.New("routes[0].price: bad") }),
			opts: opts, stall: integrationsv1alpha1.ReasonInvalidSpec},
		{name: "missing Secret", route: okx, facts: factsOf(okx, func(f *facts) {
			f.secretsErr = kit.Stall(integrationsv1alpha1.ReasonSecretNotFound, "Secret %q not found", "okx")
		}), opts: opts, stall: integrationsv1alpha1.ReasonSecretNotFound},
		{name: "API error reading Secrets", route: okx, facts: factsOf(okx, func(f *facts) {
			f.secretsErr = apierrors.NewTimeoutError("slow", 1)
		}), opts: opts, apiErr: true},
		{name: "other error reading Secrets", route: okx, facts: factsOf(okx, func(f *facts) {
			f.secretsErr = errors.New("cache not synced")
		}), opts: opts, transient: integrationsv1alpha1.ReasonProgressing},
		{name: "domain mismatch", route: okx, facts: factsOf(okx, func(f *facts) {
			f.domain = tokendomain.Result{Mismatch: "token 0x…: name differs"}
		}), opts: opts, stall: integrationsv1alpha1.ReasonDomainMismatch},
		{name: "onchain node unreachable blocks", route: onchain, facts: factsOf(onchain, func(f *facts) {
			f.domain = tokendomain.Result{Err: unreachable}
		}), opts: opts, transient: integrationsv1alpha1.ReasonRPCUnavailable, retry: rpcRetry},
		{name: "okx node unreachable warns and runs", route: okx, facts: factsOf(okx, func(f *facts) {
			f.domain = tokendomain.Result{Err: unreachable}
		}), opts: opts, run: true, retry: rpcRetry, check: func(t *testing.T, p plan) {
			if p.domainWarning == "" || p.domainChecked {
				t.Errorf("warning %q, checked %v", p.domainWarning, p.domainChecked)
			}
		}},
		{name: "domain verified", route: okx, facts: factsOf(okx, nil), opts: opts, run: true, check: func(t *testing.T, p plan) {
			if !p.domainChecked || p.domainWarning != "" {
				t.Errorf("checked %v, warning %q", p.domainChecked, p.domainWarning)
			}
		}},
		{name: "no image", route: okx, facts: factsOf(okx, nil), opts: Options{}, stall: integrationsv1alpha1.ReasonInvalidSpec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := decide(tc.route, tc.facts, tc.opts)
			gotStall := ""
			if p.stall != nil {
				gotStall = p.stall.Reason
			}
			gotTransient := ""
			if p.transient != nil {
				gotTransient = p.transientReason
			}
			if gotStall != tc.stall || gotTransient != tc.transient || p.run != tc.run || p.stopGateway != tc.stop ||
				(p.apiErr != nil) != tc.apiErr || p.retryAfter != tc.retry {
				t.Fatalf("plan: stall %q transient %q run %v stop %v apiErr %v retry %s; want stall %q transient %q run %v stop %v apiErr %v retry %s",
					gotStall, gotTransient, p.run, p.stopGateway, p.apiErr, p.retryAfter, tc.stall, tc.transient, tc.run, tc.stop, tc.apiErr, tc.retry)
			}
			if p.run && (p.objects == nil || p.dsn == "") {
				t.Fatal("a plan that runs has no objects or no database")
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}
