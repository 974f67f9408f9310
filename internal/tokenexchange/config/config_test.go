package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func validIssuer() Issuer {
	return Issuer{
		Provider: "auth0", Issuers: []string{"https://acme.us.auth0.com/"},
		JWKSURL: "https://acme.us.auth0.com/.well-known/jwks.json", Audiences: []string{"https://api.acme.dev"},
		Algorithms: []string{"RS256"}, EmailClaim: "email",
	}
}

func validConfig() Config { return Config{Issuers: []Issuer{validIssuer()}}.WithDefaults() }

func TestLoadAppliesDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), ConfigMapKey)
	raw := `{"issuers":[{"provider":"clerk","issuers":["https://clerk.acme.dev"],"jwksURL":"https://clerk.acme.dev/.well-known/jwks.json","algorithms":["RS256"]}],"token":{}}`
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || c.AdminListen != DefaultAdminListen || c.SigningKeyFile != DefaultSigningKeyFile ||
		c.Token.Lifetime.Duration != DefaultLifetime || c.Token.Audience != DefaultAudience ||
		c.Issuers[0].Leeway.Duration != DefaultLeeway || c.JWKS.MinRefreshInterval.Duration != DefaultJWKSMinRefreshInterval ||
		c.JWKS.RefreshInterval.Duration != DefaultJWKSRefreshInterval || c.JWKS.FetchTimeout.Duration != DefaultJWKSFetchTimeout ||
		c.ShutdownTimeout.Duration != DefaultShutdown || c.CORS.MaxAge.Duration != DefaultCORSMaxAge {
		t.Errorf("defaults not applied: %+v", c)
	}
	// What the controller renders round-trips.
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatalf("rendered file does not load: %v\n%s", err, b)
	}
	if back.Issuers[0].JWKSURL != c.Issuers[0].JWKSURL || back.JWKS != c.JWKS {
		t.Errorf("round trip changed the config: %+v", back)
	}
}

func TestWithDefaultsDoesNotModifyItsReceiver(t *testing.T) {
	c := Config{Issuers: []Issuer{validIssuer()}}
	_ = c.WithDefaults()
	if c.Issuers[0].Leeway.Duration != 0 || c.Listen != "" {
		t.Errorf("WithDefaults modified the original: %+v", c)
	}
}

func TestParseRefusesUnknownFieldsAndTrailingData(t *testing.T) {
	for _, raw := range []string{`{"issuers":[],"signingKey":"x"}`, `{"issuers":[]} {}`, `{"token":{"lifetime":300}}`} {
		if _, err := Parse([]byte(raw)); err == nil {
			t.Errorf("Parse(%s) succeeded", raw)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no issuers", func(c *Config) { c.Issuers = nil }, "issuers: at least one issuer"},
		{"empty iss list", func(c *Config) { c.Issuers[0].Issuers = nil }, "issuers[0].issuers: at least one"},
		{"empty iss", func(c *Config) { c.Issuers[0].Issuers = []string{""} }, "issuers[0].issuers[0]: must not be empty"},
		{"alg none", func(c *Config) { c.Issuers[0].Algorithms = []string{"none"} }, `"none" is never accepted`},
		{"alg HS256", func(c *Config) { c.Issuers[0].Algorithms = []string{"RS256", "HS256"} }, `issuers[0].algorithms[1]: "HS256" is refused`},
		{"alg hs512 lower case", func(c *Config) { c.Issuers[0].Algorithms = []string{"hs512"} }, "is refused"},
		{"alg unknown", func(c *Config) { c.Issuers[0].Algorithms = []string{"ES512"} }, "is not one of"},
		{"no algs", func(c *Config) { c.Issuers[0].Algorithms = nil }, "at least one algorithm"},
		{"lifetime too long", func(c *Config) { c.Token.Lifetime = D(2 * time.Hour) }, "token.lifetime: 2h0m0s exceeds"},
		{"lifetime negative", func(c *Config) { c.Token.Lifetime = D(-time.Second) }, "token.lifetime"},
		{"leeway too long", func(c *Config) { c.Issuers[0].Leeway = D(10 * time.Minute) }, "issuers[0].leeway"},
		{"jwks http", func(c *Config) { c.Issuers[0].JWKSURL = "http://acme.us.auth0.com/jwks" }, "must use https"},
		{"jwks http loopback", func(c *Config) { c.Issuers[0].JWKSURL = "http://127.0.0.1:8080/jwks" }, ""},
		{"jwks http in cluster", func(c *Config) { c.Issuers[0].JWKSURL = "http://auth.app.svc.cluster.local/api/auth/jwks" }, ""},
		{"jwks relative", func(c *Config) { c.Issuers[0].JWKSURL = "/jwks" }, "not an absolute https URL"},
		{"jwks ftp", func(c *Config) { c.Issuers[0].JWKSURL = "ftp://x/jwks" }, "not an absolute https URL"},
		{"jwks userinfo", func(c *Config) { c.Issuers[0].JWKSURL = "https://u:p@x/jwks" }, "user information"},
		{"bad provider", func(c *Config) { c.Issuers[0].Provider = "a b" }, "issuers[0].provider"},
		{"duplicate iss", func(c *Config) { c.Issuers = append(c.Issuers, c.Issuers[0]) }, "also accepted by issuers[0]"},
		{"empty audience", func(c *Config) { c.Issuers[0].Audiences = []string{""} }, "audiences[0]"},
		{"padded azp", func(c *Config) { c.Issuers[0].AuthorizedParties = []string{" https://a"} }, "white space"},
		{"origin with path", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://app.acme.dev/"} }, "cors.allowedOrigins[0]"},
		{"origin upper case", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://App.acme.dev"} }, "lower case"},
		{"origin star", func(c *Config) { c.CORS.AllowedOrigins = []string{"*"} }, ""},
		{"same listen", func(c *Config) { c.AdminListen = c.Listen }, "adminListen"},
		{"bad listen", func(c *Config) { c.Listen = "8080" }, "listen"},
		{"relative key file", func(c *Config) { c.SigningKeyFile = "key" }, "signingKeyFile"},
		{"min refresh too short", func(c *Config) { c.JWKS.MinRefreshInterval = D(time.Millisecond) }, "jwks.minRefreshInterval"},
		{"refresh below min", func(c *Config) { c.JWKS.RefreshInterval = D(time.Second) }, "jwks.refreshInterval"},
		{"fetch timeout", func(c *Config) { c.JWKS.FetchTimeout = D(time.Hour) }, "jwks.fetchTimeout"},
		{"shutdown", func(c *Config) { c.ShutdownTimeout = D(-1) }, "shutdownTimeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("invalid config accepted")
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig()
	c.Issuers[0].Algorithms = []string{"none"}
	c.Token.Lifetime = D(2 * time.Hour)
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "none") || !strings.Contains(err.Error(), "token.lifetime") {
		t.Fatalf("want both problems, got %v", err)
	}
}
