package tokenexchange_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/testutil/oidcfake"
	"github.com/insforge/integrations-operator/internal/tokenexchange"
	"github.com/insforge/integrations-operator/internal/tokenexchange/app"
	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
	"github.com/insforge/integrations-operator/internal/tokenexchange/preset"
)

// The fields of the six presets, pointing at hosts the fake issuer serves (over TLS, with the
// real provider URL shapes).
var fields = preset.Fields{
	ClerkFrontendAPI: "clerk.acme.dev",
	Auth0Domain:      "acme.us.auth0.com", Auth0Audience: "https://api.acme.dev",
	WorkOSClientID:    "client_01ACME",
	KindeDomain:       "acme.kinde.com",
	StytchProjectID:   "project-test-0acme",
	BetterAuthBaseURL: "https://app.acme.dev",
}

// tenantOptions are the fake tenants matching fields: host, iss and JWKS path of each provider.
var tenantOptions = map[string]struct {
	host string
	opts oidcfake.TenantOptions
	// aud is what the provider puts in aud (nil: no aud).
	aud any
	alg string
}{
	preset.Clerk: {"clerk.acme.dev", oidcfake.TenantOptions{}, nil, oidcfake.RS256},
	preset.Auth0: {"acme.us.auth0.com", oidcfake.TenantOptions{Issuer: "https://acme.us.auth0.com/"},
		[]string{"https://api.acme.dev", "https://acme.us.auth0.com/userinfo"}, oidcfake.RS256},
	preset.WorkOS: {"api.workos.com", oidcfake.TenantOptions{
		Issuer: "https://api.workos.com/user_management/client_01ACME", JWKSPaths: []string{"/sso/jwks/client_01ACME"},
	}, nil, oidcfake.RS256},
	preset.Kinde: {"acme.kinde.com", oidcfake.TenantOptions{JWKSPaths: []string{"/.well-known/jwks"}}, []string{}, oidcfake.RS256},
	preset.Stytch: {"test.stytch.com", oidcfake.TenantOptions{
		Issuer: "stytch.com/project-test-0acme", JWKSPaths: []string{"/v1/sessions/jwks/project-test-0acme"},
	}, []string{"project-test-0acme"}, oidcfake.RS256},
	preset.BetterAuth: {"app.acme.dev", oidcfake.TenantOptions{JWKSPaths: []string{"/api/auth/jwks"}, Algs: []string{oidcfake.EdDSA}},
		"https://app.acme.dev", oidcfake.EdDSA},
}

// harness is an exchange process (app.Run, real listeners) in front of a fake issuer.
type harness struct {
	t        *testing.T
	fake     *oidcfake.Server
	tenants  map[string]*oidcfake.Tenant
	cfg      config.Config
	keyDir   string // Kubernetes-style Secret volume
	keyPath  string
	url      string
	adminURL string
	logs     *syncBuffer
	client   *http.Client
	started  time.Time
}

type harnessOptions struct {
	providers []string // default: all six
	noKey     bool     // start without a signing key file
	mod       func(*config.Config)
	before    func(*harness) // runs once the tenants exist, before the exchange starts
}

const testKey = "a-signing-key-of-at-least-thirty-two-bytes-0001"

func start(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, fake: oidcfake.New(t, oidcfake.Options{TLS: true}), tenants: map[string]*oidcfake.Tenant{},
		logs: &syncBuffer{}, client: &http.Client{Timeout: 30 * time.Second}}
	if o.providers == nil {
		o.providers = preset.Providers
	}
	for _, p := range o.providers {
		to := tenantOptions[p]
		h.tenants[p] = h.fake.Tenant(to.host, to.opts)
		is, err := preset.For(p, fields)
		if err != nil {
			t.Fatal(err)
		}
		if p == preset.Clerk {
			is.AuthorizedParties = []string{"https://app.acme.dev"}
		}
		h.cfg.Issuers = append(h.cfg.Issuers, is)
	}
	h.keyDir = t.TempDir()
	h.keyPath = filepath.Join(h.keyDir, config.SigningKeyName)
	if !o.noKey {
		h.writeKey(testKey)
	}
	h.cfg.Listen, h.cfg.AdminListen, h.cfg.SigningKeyFile = "127.0.0.1:0", "127.0.0.1:0", h.keyPath
	h.cfg.JWKS.MinRefreshInterval = config.D(time.Second)
	h.cfg.JWKS.RefreshInterval = config.D(time.Hour)
	h.cfg.CORS.AllowedOrigins = []string{"https://app.acme.dev"}
	h.cfg.Token.Issuer = "insforge-exchange"
	if o.mod != nil {
		o.mod(&h.cfg)
	}
	h.cfg = h.cfg.WithDefaults()
	if err := h.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.before != nil {
		o.before(h)
	}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	h.started = time.Now()
	go func() {
		done <- app.Run(ctx, h.cfg, log, app.Options{
			HTTPClient: h.fake.Client(), KeyPollInterval: 50 * time.Millisecond,
			Listening: func(d, a net.Addr) { addrs <- [2]net.Addr{d, a} },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("exchange: %v", err)
		}
	})
	select {
	case a := <-addrs:
		h.url, h.adminURL = "http://"+a[0].String(), "http://"+a[1].String()
	case err := <-done:
		t.Fatalf("exchange did not start: %v\n%s", err, h.logs)
	}
	if !o.noKey {
		h.waitReady()
	}
	return h
}

func (h *harness) waitReady() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := h.get(h.adminURL + config.PathReadyz)
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("exchange not ready in 10s: %d %s\n%s", code, body, h.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeKey replaces the key the way the kubelet updates a Secret volume: a new timestamped
// directory, then an atomic rename of the ..data symlink; SIGNING_KEY links through ..data.
func (h *harness) writeKey(key string) {
	h.t.Helper()
	dir := fmt.Sprintf("..%d", time.Now().UnixNano())
	must(h.t, os.Mkdir(filepath.Join(h.keyDir, dir), 0o755))
	must(h.t, os.WriteFile(filepath.Join(h.keyDir, dir, config.SigningKeyName), []byte(key), 0o600))
	tmp := filepath.Join(h.keyDir, "..data_tmp")
	must(h.t, os.Symlink(dir, tmp))
	must(h.t, os.Rename(tmp, filepath.Join(h.keyDir, "..data")))
	if _, err := os.Lstat(h.keyPath); err != nil {
		must(h.t, os.Symlink(filepath.Join("..data", config.SigningKeyName), h.keyPath))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// token mints a valid token of provider's tenant for sub, with mods applied to its claims.
func (h *harness) token(provider, sub string, mods ...func(map[string]any)) string {
	ten := h.tenants[provider]
	to := tenantOptions[provider]
	base := []func(map[string]any){oidcfake.Set("email", sub+"@acme.dev")}
	if to.aud != nil {
		base = append(base, oidcfake.Set("aud", to.aud))
	}
	return ten.Mint(ten.Claims(sub, append(base, mods...)...), oidcfake.MintOptions{Alg: to.alg})
}

type reply struct {
	status int
	header http.Header
	body   string
	ok     tokenexchange.Response
	err    tokenexchange.ErrorResponse
}

func (h *harness) do(req *http.Request) reply {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.StatusCode == http.StatusOK {
		_ = json.Unmarshal(b, &r.ok)
	} else {
		_ = json.Unmarshal(b, &r.err)
	}
	return r
}

// form posts an RFC 8693 request with the standard parameters, overridden by kv pairs.
func (h *harness) form(token string, kv ...string) reply {
	h.t.Helper()
	v := url.Values{
		"grant_type": {tokenexchange.GrantTypeTokenExchange}, "subject_token": {token},
		"subject_token_type": {tokenexchange.TokenTypeJWT},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	req, _ := http.NewRequest(http.MethodPost, h.url+config.PathToken, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return h.do(req)
}

func (h *harness) bearer(method, token string) reply {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+config.PathExchange, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return h.do(req)
}

func (h *harness) get(u string) (int, string) {
	resp, err := h.client.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *harness) metrics() string {
	_, body := h.get(h.adminURL + config.PathMetrics)
	return body
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
