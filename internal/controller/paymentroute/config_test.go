package paymentroute

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	gwconfig "github.com/insforge/integrations-operator/internal/gateway/config"
)

// testOKXEnv is a gateway environment with the secrets an okx route needs.
func testOKXEnv() gwconfig.Env {
	return gwconfig.Env{gwconfig.EnvDatabaseURL: "postgres://gw:pw@db:5432/app", gwconfig.EnvOKXAPIKey: "k", gwconfig.EnvOKXSecretKey: "s", gwconfig.EnvOKXPassphrase: "p"}
}

func paymentRoute() *integrationsv1alpha1.PaymentRoute {
	sync := false
	return &integrationsv1alpha1.PaymentRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "weather"},
		Spec: integrationsv1alpha1.PaymentRouteSpec{
			Upstream: integrationsv1alpha1.Upstream{Service: &integrationsv1alpha1.UpstreamService{Name: "weather", Port: 8080}},
			Routes: []integrationsv1alpha1.PricedRoute{
				{Path: "/weather", Price: "0.01", Description: "Weather", MimeType: "application/json"},
				{Path: "/stream/*", Method: "GET", Price: "2", Settle: integrationsv1alpha1.SettleBeforeUpstream},
			},
			PayTo: "0x1111111111111111111111111111111111111111",
			Facilitator: integrationsv1alpha1.Facilitator{OKX: &integrationsv1alpha1.OKXFacilitator{
				CredentialsSecretRef: integrationsv1alpha1.LocalSecretReference{Name: "okx-creds"}, SyncSettle: &sync, RPCURL: "https://rpc.xlayer.tech",
			}},
			Database: integrationsv1alpha1.LedgerDatabase{DatabaseConnection: integrationsv1alpha1.DatabaseConnection{
				ConnectionSecretRef: integrationsv1alpha1.SecretKeySelector{Name: "db"},
			}},
			Gateway: integrationsv1alpha1.Gateway{UpstreamTimeout: &metav1.Duration{Duration: 5 * time.Second}, UnpricedPaths: integrationsv1alpha1.UnpricedReject},
		},
	}
}

func TestGatewayConfigRoundTripsThroughLoad(t *testing.T) {
	c, err := gatewayConfig(paymentRoute())
	if err != nil {
		t.Fatal(err)
	}
	if c.Route != "shop/weather" || c.Upstream != "http://weather.shop.svc:8080" || c.Network != integrationsv1alpha1.DefaultNetwork ||
		c.Asset.Address != integrationsv1alpha1.DefaultAssetAddress || c.Asset.Decimals != 6 || c.Asset.EIP712Name != "Global Dollar" ||
		c.MaxTimeoutSeconds != integrationsv1alpha1.DefaultMaxTimeoutSecs || c.Ledger.Table != "x402_payments" {
		t.Errorf("rendered = %+v", c)
	}
	if c.Facilitator.Kind != gwconfig.KindOKX || !c.Facilitator.OKX.AsyncSettle || c.Facilitator.OKX.RPCURL != "https://rpc.xlayer.tech" {
		t.Errorf("facilitator = %+v", c.Facilitator)
	}
	if c.Routes[0].Amount != "10000" || c.Routes[1].Amount != "2000000" || c.Routes[1].Settle != gwconfig.SettleBeforeUpstream {
		t.Errorf("routes = %+v", c.Routes)
	}
	if c.Gateway.UpstreamTimeout.Duration != 5*time.Second || c.Gateway.UnpricedPaths != gwconfig.UnpricedReject || c.Gateway.TrustsForwarded() {
		t.Errorf("gateway = %+v", c.Gateway)
	}
	trusted := paymentRoute()
	on := true
	trusted.Spec.Gateway.TrustForwarded = &on
	if tc, err := gatewayConfig(trusted); err != nil || !tc.Gateway.TrustsForwarded() {
		t.Errorf("spec.gateway.trustForwarded true renders %+v, %v", tc.Gateway, err)
	}
	raw, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := gwconfig.Parse(raw, testOKXEnv())
	if err != nil {
		t.Fatalf("the rendered file does not load: %v\n%s", err, raw)
	}
	loaded.Secrets = gwconfig.Secrets{}
	a, _ := json.Marshal(loaded)
	b, _ := json.Marshal(c)
	if string(a) != string(b) {
		t.Errorf("round trip differs:\n%s\n%s", a, b)
	}
}

func TestGatewayConfigRejectsBadSpec(t *testing.T) {
	r := paymentRoute()
	r.Spec.Routes[0].Price = "0.0000001" // more decimals than USDG has
	if _, err := gatewayConfig(r); err == nil || !strings.Contains(err.Error(), "routes[0].price") {
		t.Errorf("err = %v", err)
	}
	r = paymentRoute()
	r.Spec.Facilitator = integrationsv1alpha1.Facilitator{}
	if _, err := gatewayConfig(r); err == nil {
		t.Error("a spec without facilitator rendered")
	}
}

func TestSecretEnvUsesTheDocumentedNames(t *testing.T) {
	env, from := secretEnv(paymentRoute())
	got := map[string]string{}
	for _, e := range env {
		got[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
	}
	want := map[string]string{gwconfig.EnvDatabaseURL: "db/uri", gwconfig.EnvOKXAPIKey: "okx-creds/apiKey", gwconfig.EnvOKXSecretKey: "okx-creds/secretKey", gwconfig.EnvOKXPassphrase: "okx-creds/passphrase"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(from) != 0 {
		t.Errorf("envFrom = %+v", from)
	}
	r := paymentRoute()
	r.Spec.Facilitator = integrationsv1alpha1.Facilitator{HTTP: &integrationsv1alpha1.HTTPFacilitator{URL: "https://f", HeadersSecretRef: &integrationsv1alpha1.LocalSecretReference{Name: "hdrs"}}}
	_, from = secretEnv(r)
	if len(from) != 1 || from[0].Prefix != gwconfig.EnvFacilitatorHeaderPrefix || from[0].SecretRef.Name != "hdrs" {
		t.Errorf("envFrom = %+v", from)
	}
}

func TestGatewayConfigMapsPathOptions(t *testing.T) {
	r := paymentRoute()
	r.Spec.Routes[0].CaseSensitive = true
	r.Spec.Routes[0].TrailingSlash = integrationsv1alpha1.TrailingSlashDistinct
	c, err := gatewayConfig(r)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Routes[0].CaseSensitive || c.Routes[0].TrailingSlash != gwconfig.TrailingSlashDistinct || c.Routes[1].CaseSensitive || c.Routes[1].TrailingSlash != "" {
		t.Errorf("routes = %+v", c.Routes)
	}
	r.Spec.Routes[0].Path = "/weather//now"
	if _, err := gatewayConfig(r); err == nil || !strings.Contains(err.Error(), `write "/weather/now"`) {
		t.Errorf("a non-canonical path rendered: %v", err)
	}
}

func TestHTTPFacilitatorNeedsAChainNode(t *testing.T) {
	// Without a node an unknown settlement outcome could never be resolved.
	r := paymentRoute()
	r.Spec.Facilitator = integrationsv1alpha1.Facilitator{HTTP: &integrationsv1alpha1.HTTPFacilitator{URL: "https://fac.example", RPCURL: "wss://rpc.example/ws"}}
	c, err := gatewayConfig(r)
	if err != nil || c.Facilitator.Kind != gwconfig.KindHTTP || c.Facilitator.HTTP.RPCURL != "wss://rpc.example/ws" {
		t.Errorf("rendered http facilitator = %+v, %v", c.Facilitator.HTTP, err)
	}
	r.Spec.Facilitator.HTTP.RPCURL = ""
	if _, err := gatewayConfig(r); err == nil || !strings.Contains(err.Error(), "rpcURL") {
		t.Errorf("rendered an http route without rpcURL: %v", err)
	}
}
