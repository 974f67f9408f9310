package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/insforge/integrations-operator/api/v1alpha1"
)

const secretDSN = "postgres://gw:s3cr3t-pw@db:5432/app"

func validFile() string {
	return `{
  "route": "shop/weather",
  "upstream": "http://weather.shop.svc:8080",
  "network": "eip155:196",
  "asset": {"address": "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8", "decimals": 6, "eip712Name": "Global Dollar", "eip712Version": "1"},
  "payTo": "0x1111111111111111111111111111111111111111",
  "maxTimeoutSeconds": 60,
  "routes": [{"path": "/weather", "price": "0.01"}, {"path": "/reports/*", "method": "POST", "price": "1.5", "settle": "beforeUpstream"}],
  "facilitator": {"kind": "okx", "okx": {"rpcURL": "https://rpc.xlayer.tech"}}
}`
}

func okxEnv() Env {
	return Env{EnvDatabaseURL: secretDSN, EnvOKXAPIKey: "key-123456", EnvOKXSecretKey: "topsecret", EnvOKXPassphrase: "pass-phrase"}
}

func TestLoadAppliesDefaultsAndComputesAmounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(validFile()), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, okxEnv())
	if err != nil {
		t.Fatal(err)
	}
	if c.Routes[0].Amount != "10000" || c.Routes[1].Amount != "1500000" {
		t.Errorf("amounts = %q, %q; want 10000, 1500000", c.Routes[0].Amount, c.Routes[1].Amount)
	}
	// Unset timing: GET and HEAD settle after the upstream, every other method before it.
	if c.Routes[0].SettleBefore("GET") || c.Routes[0].SettleBefore("HEAD") || !c.Routes[0].SettleBefore("POST") ||
		!c.Routes[0].SettleBefore("DELETE") || !c.Routes[1].SettleBefore("GET") {
		t.Errorf("settle timing: route 0 %q, route 1 %q", c.Routes[0].Settle, c.Routes[1].Settle)
	}
	if c.Listen != DefaultListen || c.AdminListen != DefaultAdminListen || c.Gateway.PayerHeader != DefaultPayerHeader ||
		c.Gateway.UnpricedPaths != UnpricedProxy || c.Gateway.MaxResponseBytes != DefaultMaxResponseBytes {
		t.Errorf("defaults not applied: %+v", c)
	}
	if g := c.Gateway; g.TrustsForwarded() || g.ReadTimeout.Duration != DefaultReadTimeout ||
		g.WriteIdleTimeout.Duration != DefaultWriteIdleTimeout || g.MaxConnections != DefaultMaxConnections {
		t.Errorf("transport defaults not applied (trustForwarded must default to false): %+v", g)
	}
	if c.Resolver.MinAge.Duration <= c.Gateway.SettleTimeout.Duration {
		t.Errorf("resolver minAge %s does not exceed settle timeout %s", c.Resolver.MinAge, c.Gateway.SettleTimeout)
	}
	if c.Secrets.OKXSecretKey != "topsecret" || c.Secrets.DatabaseURL != secretDSN {
		t.Errorf("secrets not read from env: %s", c.Secrets)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	c, err := Parse([]byte(validFile()), okxEnv())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{c.Secrets.String(), c.Secrets.GoString(), strings.Join([]string{jsonOf(t, c)}, "")} {
		for _, secret := range []string{"s3cr3t-pw", "topsecret", "pass-phrase", "key-123456"} {
			if strings.Contains(s, secret) {
				t.Errorf("secret %q printed in %s", secret, s)
			}
		}
	}
}

func jsonOf(t *testing.T, c Config) string {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestValidateNamesEveryProblem(t *testing.T) {
	file := `{"route": "Bad", "upstream": "ftp://x", "network": "eip155:0", "asset": {"address": "0x12", "decimals": 6},
	  "payTo": "0x0000000000000000000000000000000000000000", "maxTimeoutSeconds": 0,
	  "routes": [{"path": "weather", "price": "0.0000001"}, {"path": "/a", "price": "0", "replayWindow": "10m"}, {"path": "/a", "price": "1", "method": "GET"}, {"path": "/a", "price": "1", "method": "GET"},
	    {"path": "/b", "price": "1", "method": "POST", "replayWindow": "1m"}, {"path": "/c", "price": "1", "settle": "beforeUpstream", "replayWindow": "1m"}],
	  "facilitator": {"kind": "onchain", "onchain": {"rpcURL": "nope"}},
	  "gateway": {"unpricedPaths": "drop", "payerHeader": "bad header", "maxResponseBytes": 10,
	    "readTimeout": "5s", "writeIdleTimeout": "-1s", "maxConnections": 2000000}}`
	_, err := Parse([]byte(file), Env{EnvRelayerKey: "not-a-key-but-secret"})
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"route:", "upstream:", "network:", "asset.address:", "eip712Name", "payTo:", "maxTimeoutSeconds:",
		"routes[0].path:", "routes[0].price:", "routes[1].price: must be greater than zero", "routes[3]: path",
		"routes[1].replayWindow: 10m0s is outside", "routes[4].replayWindow: only GET and HEAD", "routes[5].replayWindow: needs a buffered route",
		"facilitator.onchain.rpcURL:", EnvRelayerKey + ": is not a hex", EnvDatabaseURL + ": is not set",
		"gateway.unpricedPaths:", "gateway.payerHeader:", "gateway.maxResponseBytes:",
		"gateway.readTimeout: 5s is below gateway.readHeaderTimeout", "gateway.writeIdleTimeout: must be positive",
		"gateway.maxConnections: 2000000 is outside",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "not-a-key-but-secret") {
		t.Errorf("error repeats the relayer key:\n%s", msg)
	}
}

func TestParseRejectsUnknownFieldsAndMissingSecrets(t *testing.T) {
	if _, err := Parse([]byte(`{"route": "a/b", "surprise": 1}`), okxEnv()); err == nil || !strings.Contains(err.Error(), "surprise") {
		t.Errorf("unknown field: err = %v", err)
	}
	env := okxEnv()
	delete(env, EnvOKXPassphrase)
	if _, err := Parse([]byte(validFile()), env); err == nil || !strings.Contains(err.Error(), EnvOKXPassphrase) {
		t.Errorf("missing passphrase: err = %v", err)
	}
	env = okxEnv()
	env[EnvDatabaseURL] = "mysql://u:hunter2@h/db"
	if _, err := Parse([]byte(validFile()), env); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad DSN: err = %v (must fail without echoing the URL)", err)
	}
}

func TestFacilitatorHeadersFromPrefixedEnv(t *testing.T) {
	file := strings.Replace(validFile(), `{"kind": "okx", "okx": {"rpcURL": "https://rpc.xlayer.tech"}}`,
		`{"kind": "http", "http": {"url": "https://fac.example/x402", "rpcURL": "https://rpc.xlayer.tech"}}`, 1)
	c, err := Parse([]byte(file), Env{EnvDatabaseURL: secretDSN, EnvFacilitatorHeaderPrefix + "Authorization": "Bearer t0k"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Secrets.FacilitatorHeader["Authorization"]; got != "Bearer t0k" {
		t.Errorf("header = %q", got)
	}
	if strings.Contains(c.Secrets.String(), "t0k") || !strings.Contains(c.Secrets.String(), "Authorization") {
		t.Errorf("Secrets.String = %s", c.Secrets)
	}
}

func paymentRoute() *v1alpha1.PaymentRoute {
	sync := false
	return &v1alpha1.PaymentRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "weather"},
		Spec: v1alpha1.PaymentRouteSpec{
			Upstream: v1alpha1.Upstream{Service: &v1alpha1.UpstreamService{Name: "weather", Port: 8080}},
			Routes: []v1alpha1.PricedRoute{
				{Path: "/weather", Price: "0.01", Description: "Weather", MimeType: "application/json"},
				{Path: "/stream/*", Method: "GET", Price: "2", Settle: v1alpha1.SettleBeforeUpstream},
			},
			PayTo: "0x1111111111111111111111111111111111111111",
			Facilitator: v1alpha1.Facilitator{OKX: &v1alpha1.OKXFacilitator{
				CredentialsSecretRef: v1alpha1.LocalSecretReference{Name: "okx-creds"}, SyncSettle: &sync, RPCURL: "https://rpc.xlayer.tech",
			}},
			Database: v1alpha1.LedgerDatabase{DatabaseConnection: v1alpha1.DatabaseConnection{
				ConnectionSecretRef: v1alpha1.SecretKeySelector{Name: "db"},
			}},
			Gateway: v1alpha1.Gateway{UpstreamTimeout: &metav1.Duration{Duration: 5 * time.Second}, UnpricedPaths: v1alpha1.UnpricedReject},
		},
	}
}

func TestFromPaymentRouteRoundTripsThroughLoad(t *testing.T) {
	c, err := FromPaymentRoute(paymentRoute())
	if err != nil {
		t.Fatal(err)
	}
	if c.Route != "shop/weather" || c.Upstream != "http://weather.shop.svc:8080" || c.Network != v1alpha1.DefaultNetwork ||
		c.Asset.Address != v1alpha1.DefaultAssetAddress || c.Asset.Decimals != 6 || c.Asset.EIP712Name != "Global Dollar" ||
		c.MaxTimeoutSeconds != v1alpha1.DefaultMaxTimeoutSecs || c.Ledger.Table != "x402_payments" {
		t.Errorf("rendered = %+v", c)
	}
	if c.Facilitator.Kind != KindOKX || !c.Facilitator.OKX.AsyncSettle || c.Facilitator.OKX.RPCURL != "https://rpc.xlayer.tech" {
		t.Errorf("facilitator = %+v", c.Facilitator)
	}
	if c.Routes[0].Amount != "10000" || c.Routes[1].Amount != "2000000" || c.Routes[1].Settle != SettleBeforeUpstream {
		t.Errorf("routes = %+v", c.Routes)
	}
	if c.Gateway.UpstreamTimeout.Duration != 5*time.Second || c.Gateway.UnpricedPaths != UnpricedReject || c.Gateway.TrustsForwarded() {
		t.Errorf("gateway = %+v", c.Gateway)
	}
	trusted := paymentRoute()
	on := true
	trusted.Spec.Gateway.TrustForwarded = &on
	if tc, err := FromPaymentRoute(trusted); err != nil || !tc.Gateway.TrustsForwarded() {
		t.Errorf("spec.gateway.trustForwarded true renders %+v, %v", tc.Gateway, err)
	}
	raw, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Parse(raw, okxEnv())
	if err != nil {
		t.Fatalf("the rendered file does not load: %v\n%s", err, raw)
	}
	loaded.Secrets = Secrets{}
	a, _ := json.Marshal(loaded)
	b, _ := json.Marshal(c)
	if string(a) != string(b) {
		t.Errorf("round trip differs:\n%s\n%s", a, b)
	}
}

func TestFromPaymentRouteRejectsBadSpec(t *testing.T) {
	r := paymentRoute()
	r.Spec.Routes[0].Price = "0.0000001" // more decimals than USDG has
	if _, err := FromPaymentRoute(r); err == nil || !strings.Contains(err.Error(), "routes[0].price") {
		t.Errorf("err = %v", err)
	}
	r = paymentRoute()
	r.Spec.Facilitator = v1alpha1.Facilitator{}
	if _, err := FromPaymentRoute(r); err == nil {
		t.Error("a spec without facilitator rendered")
	}
}

func TestSecretEnvUsesTheDocumentedNames(t *testing.T) {
	env, from := SecretEnv(paymentRoute())
	got := map[string]string{}
	for _, e := range env {
		got[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
	}
	want := map[string]string{EnvDatabaseURL: "db/uri", EnvOKXAPIKey: "okx-creds/apiKey", EnvOKXSecretKey: "okx-creds/secretKey", EnvOKXPassphrase: "okx-creds/passphrase"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(from) != 0 {
		t.Errorf("envFrom = %+v", from)
	}
	r := paymentRoute()
	r.Spec.Facilitator = v1alpha1.Facilitator{HTTP: &v1alpha1.HTTPFacilitator{URL: "https://f", HeadersSecretRef: &v1alpha1.LocalSecretReference{Name: "hdrs"}}}
	_, from = SecretEnv(r)
	if len(from) != 1 || from[0].Prefix != EnvFacilitatorHeaderPrefix || from[0].SecretRef.Name != "hdrs" {
		t.Errorf("envFrom = %+v", from)
	}
}

func TestValidateRefusesPathsThatCannotMatch(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/reports//live", `not canonical (requests are matched in canonical form): write "/reports/live"`},
		{"/a/./b", `write "/a/b"`},
		{"/a/../b/*", `write "/b/*"`},
		{"/a;v=1", `write "/a"`},
		{"/%7Euser", `write "/~user"`},
		{"/caf%c3%a9", `write "/caf%C3%A9"`},
		{"/..", "can never match a request: invalid path: a .. segment above the root"},
		{"/a%zz", "can never match a request: invalid path: a malformed percent-escape"},
		{"/a%00", "encoded NUL"},
		{"/a%2Fb", "encodes a slash or backslash"},
		{"/a%5Cb/*", "encodes a slash or backslash"},
	} {
		c, err := Parse([]byte(validFile()), okxEnv())
		if err != nil {
			t.Fatal(err)
		}
		c.Routes[0].Path = tc.path
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "routes[0].path: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("path %q: err = %v; want %q", tc.path, err, tc.want)
		}
	}
	for _, ok := range []string{"/caf%C3%A9/*", "/a:b@c", "/100%25", "/a/", "/.well-known/x"} {
		c, _ := Parse([]byte(validFile()), okxEnv())
		c.Routes[0].Path = ok
		if err := c.Validate(); err != nil {
			t.Errorf("canonical path %q refused: %v", ok, err)
		}
	}
}

func TestValidateRouteOptions(t *testing.T) {
	c, err := Parse([]byte(validFile()), okxEnv())
	if err != nil {
		t.Fatal(err)
	}
	c.Routes[0].TrailingSlash = "Sometimes"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `routes[0].trailingSlash: "Sometimes" is not Equivalent or Distinct`) {
		t.Errorf("err = %v", err)
	}
	// Routes that price the same requests once case and trailing slashes are folded are refused
	// (which price wins would be an accident); the options can tell them apart.
	base := func() Config {
		c, _ := Parse([]byte(validFile()), okxEnv())
		return c
	}
	for _, tc := range []struct {
		name    string
		a, b    Route
		refused bool
	}{
		{"case", Route{Path: "/a"}, Route{Path: "/A"}, true},
		{"trailing slash", Route{Path: "/a"}, Route{Path: "/a/"}, true},
		{"escape", Route{Path: "/a:b"}, Route{Path: "/a%3Ab"}, true},
		{"prefix case", Route{Path: "/r/*"}, Route{Path: "/R/*"}, true},
		{"one case-insensitive", Route{Path: "/a", CaseSensitive: true}, Route{Path: "/A"}, true},
		{"both case-sensitive", Route{Path: "/a", CaseSensitive: true}, Route{Path: "/A", CaseSensitive: true}, false},
		{"both distinct", Route{Path: "/a", TrailingSlash: TrailingSlashDistinct}, Route{Path: "/a/", TrailingSlash: TrailingSlashDistinct}, false},
		{"other methods", Route{Path: "/a", Method: "GET"}, Route{Path: "/A", Method: "POST"}, false},
		{"exact and prefix", Route{Path: "/a/"}, Route{Path: "/a/*"}, false},
	} {
		c := base()
		tc.a.Price, tc.b.Price, tc.a.Settle, tc.b.Settle = "1", "2", SettleAfterUpstream, SettleAfterUpstream
		c.Routes = []Route{tc.a, tc.b}
		err := c.Validate()
		if refused := err != nil && strings.Contains(err.Error(), "routes[1]: path") && strings.Contains(err.Error(), "prices the same requests as routes[0]"); refused != tc.refused {
			t.Errorf("%s: err = %v, want refused %v", tc.name, err, tc.refused)
		}
	}
}

func TestFromPaymentRouteMapsPathOptions(t *testing.T) {
	r := paymentRoute()
	r.Spec.Routes[0].CaseSensitive = true
	r.Spec.Routes[0].TrailingSlash = v1alpha1.TrailingSlashDistinct
	c, err := FromPaymentRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Routes[0].CaseSensitive || c.Routes[0].TrailingSlash != TrailingSlashDistinct || c.Routes[1].CaseSensitive || c.Routes[1].TrailingSlash != "" {
		t.Errorf("routes = %+v", c.Routes)
	}
	r.Spec.Routes[0].Path = "/weather//now"
	if _, err := FromPaymentRoute(r); err == nil || !strings.Contains(err.Error(), `write "/weather/now"`) {
		t.Errorf("a non-canonical path rendered: %v", err)
	}
}

func TestOKXAndHTTPFacilitatorsNeedAChainNode(t *testing.T) {
	// Without a node an unknown settlement outcome could never be resolved.
	okxFile := strings.Replace(validFile(), `"okx": {"rpcURL": "https://rpc.xlayer.tech"}`, `"okx": {}`, 1)
	if _, err := Parse([]byte(okxFile), okxEnv()); err == nil || !strings.Contains(err.Error(), "facilitator.okx.rpcURL") {
		t.Errorf("okx without rpcURL: %v", err)
	}
	httpFile := strings.Replace(validFile(), `{"kind": "okx", "okx": {"rpcURL": "https://rpc.xlayer.tech"}}`,
		`{"kind": "http", "http": {"url": "https://fac.example/x402"}}`, 1)
	if _, err := Parse([]byte(httpFile), okxEnv()); err == nil || !strings.Contains(err.Error(), "facilitator.http.rpcURL") {
		t.Errorf("http without rpcURL: %v", err)
	}
	r := paymentRoute()
	r.Spec.Facilitator = v1alpha1.Facilitator{HTTP: &v1alpha1.HTTPFacilitator{URL: "https://fac.example", RPCURL: "wss://rpc.example/ws"}}
	c, err := FromPaymentRoute(r)
	if err != nil || c.Facilitator.Kind != KindHTTP || c.Facilitator.HTTP.RPCURL != "wss://rpc.example/ws" {
		t.Errorf("rendered http facilitator = %+v, %v", c.Facilitator.HTTP, err)
	}
	r.Spec.Facilitator.HTTP.RPCURL = ""
	if _, err := FromPaymentRoute(r); err == nil || !strings.Contains(err.Error(), "rpcURL") {
		t.Errorf("rendered an http route without rpcURL: %v", err)
	}
}
