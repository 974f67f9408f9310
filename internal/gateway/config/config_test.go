package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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

}

// Malformed secret values fail at load with the variable named and the value never repeated:
// a header value with a line break (header injection), a relayer key that is not hex, a
// database URL that is not one.
func TestBadSecretValuesAreNamedNotEchoed(t *testing.T) {
	httpFile := strings.Replace(validFile(), `{"kind": "okx", "okx": {"rpcURL": "https://rpc.xlayer.tech"}}`,
		`{"kind": "http", "http": {"url": "https://fac.example/x402", "rpcURL": "https://rpc.xlayer.tech"}}`, 1)
	onchainFile := strings.Replace(validFile(), `{"kind": "okx", "okx": {"rpcURL": "https://rpc.xlayer.tech"}}`,
		`{"kind": "onchain", "onchain": {"rpcURL": "https://rpc.xlayer.tech"}}`, 1)
	for _, tc := range []struct {
		name, file string
		env        Env
		want       string
	}{
		{"header with a line break", httpFile, Env{EnvDatabaseURL: secretDSN,
			EnvFacilitatorHeaderPrefix + "Authorization": "Bearer MARKER\r\nX-Injected: 1"}, EnvFacilitatorHeaderPrefix + "Authorization: the value is not a valid header value"},
		{"relayer key as a JSON key file", onchainFile, Env{EnvDatabaseURL: secretDSN,
			EnvRelayerKey: `{"private_key":"MARKER"}`}, EnvRelayerKey + ": is not a hex"},
		{"database URL as user:pass", validFile(), func() Env { e := okxEnv(); e[EnvDatabaseURL] = "admin:MARKER"; return e }(), EnvDatabaseURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file), tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "MARKER") {
				t.Errorf("err = %v; want it to name %q and not repeat the value", err, tc.want)
			}
		})
	}
}
