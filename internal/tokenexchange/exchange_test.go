package tokenexchange_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/testutil/insforgejwt"
	"github.com/insforge/integrations-operator/internal/testutil/oidcfake"
	"github.com/insforge/integrations-operator/internal/tokenexchange"
	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
	"github.com/insforge/integrations-operator/internal/tokenexchange/preset"
)

// payload decodes a JWT's claims without verifying them.
func payload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d segments", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkMinted verifies a minted token the way InsForge does and checks its claims.
func checkMinted(t *testing.T, r reply, key, sub, email string, lifetime time.Duration) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if r.ok.IssuedTokenType != tokenexchange.TokenTypeJWT || r.ok.TokenType != "Bearer" || r.ok.ExpiresIn <= 0 ||
		r.ok.ExpiresIn > int64(lifetime/time.Second) {
		t.Errorf("response %+v", r.ok)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	got, _, err := insforgejwt.Verify(r.ok.AccessToken, []byte(key), time.Now())
	if err != nil {
		t.Fatalf("InsForge would refuse the minted token: %v", err)
	}
	if got.Sub != sub || got.Role != "authenticated" || got.Email != email {
		t.Errorf("InsForge sees %+v; want sub %s, role authenticated, email %q", got, sub, email)
	}
	c := payload(t, r.ok.AccessToken)
	now := float64(time.Now().Unix())
	if c["role"] != "authenticated" || c["aud"] != config.DefaultAudience || c["iss"] != "insforge-exchange" {
		t.Errorf("minted claims %v", c)
	}
	iat, exp := c["iat"].(float64), c["exp"].(float64)
	if iat < now-5 || iat > now+1 || exp-iat != float64(r.ok.ExpiresIn) || exp > now+lifetime.Seconds()+1 {
		t.Errorf("iat %v exp %v expires_in %d now %v", iat, exp, r.ok.ExpiresIn, now)
	}
	if len(c) > 7 {
		t.Errorf("unexpected claims in %v", c)
	}
}

func TestEveryPresetExchangesForAnInsForgeToken(t *testing.T) {
	h := start(t, harnessOptions{})
	for _, p := range preset.Providers {
		t.Run(p, func(t *testing.T) {
			sub := "user_" + p
			tok := h.token(p, sub)
			checkMinted(t, h.form(tok), testKey, sub, sub+"@acme.dev", config.DefaultLifetime)
			checkMinted(t, h.form(tok, "subject_token_type", tokenexchange.TokenTypeAccessToken), testKey, sub, sub+"@acme.dev", config.DefaultLifetime)
			checkMinted(t, h.form(tok, "subject_token_type", tokenexchange.TokenTypeIDToken), testKey, sub, sub+"@acme.dev", config.DefaultLifetime)
			checkMinted(t, h.bearer(http.MethodPost, tok), testKey, sub, sub+"@acme.dev", config.DefaultLifetime)
			checkMinted(t, h.bearer(http.MethodGet, tok), testKey, sub, sub+"@acme.dev", config.DefaultLifetime)
		})
	}
	// Each issuer's keys were fetched once, at start.
	for p, ten := range h.tenants {
		if n := ten.Fetches(); n != 1 {
			t.Errorf("%s: %d JWKS fetches; want 1", p, n)
		}
	}
	m := h.metrics()
	for _, want := range []string{
		`insforge_exchange_exchanges_total{outcome="ok",provider="workos"} 5`,
		`insforge_exchange_jwks_fetches_total{provider="stytch",result="ok"} 1`,
		`insforge_exchange_signing_key_info{fingerprint="` + tokenexchange.Fingerprint([]byte(testKey)) + `"} 1`,
		`insforge_exchange_signing_key_loaded 1`,
		`insforge_exchange_duration_seconds_count{provider="betterAuth"} 5`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, testKey) {
		t.Error("metrics contain the signing key")
	}
}

// Better Auth's jwt() plugin may be configured for ES256, RS256 or PS256 instead of EdDSA.
func TestBetterAuthAlgorithms(t *testing.T) {
	h := start(t, harnessOptions{providers: []string{preset.BetterAuth}})
	ten := h.tenants[preset.BetterAuth]
	for _, alg := range []string{oidcfake.ES256, oidcfake.RS256, oidcfake.PS256} {
		ten.AddKey(alg)
	}
	mint := func(alg string) string {
		return ten.Mint(ten.Claims("u-"+alg, oidcfake.Set("aud", "https://app.acme.dev")), oidcfake.MintOptions{Alg: alg})
	}
	// The new kids are unknown until the set is refetched, at most one minimum interval after
	// the start-up fetch.
	deadline := time.Now().Add(5 * time.Second)
	for r := h.bearer(http.MethodPost, mint(oidcfake.ES256)); r.status != http.StatusOK; r = h.bearer(http.MethodPost, mint(oidcfake.ES256)) {
		if r.status != http.StatusUnauthorized || time.Now().After(deadline) {
			t.Fatalf("ES256 token: %d %s", r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, alg := range []string{oidcfake.ES256, oidcfake.RS256, oidcfake.PS256, oidcfake.EdDSA} {
		checkMinted(t, h.bearer(http.MethodPost, mint(alg)), testKey, "u-"+alg, "", config.DefaultLifetime)
	}
}

// refusal is what an attack must get: its status, RFC 6749 error code and reason.
type refusal struct {
	status int
	code   string
	reason tokenexchange.Reason
}

var (
	grantRefused = func(r tokenexchange.Reason) refusal { return refusal{http.StatusBadRequest, "invalid_grant", r} }
	badRequest   = func(r tokenexchange.Reason) refusal { return refusal{http.StatusBadRequest, "invalid_request", r} }
)

func TestAttacksAreRefused(t *testing.T) {
	h := start(t, harnessOptions{})
	clerk, auth0, ba := h.tenants[preset.Clerk], h.tenants[preset.Auth0], h.tenants[preset.BetterAuth]
	rsaKey := clerk.Key(oidcfake.RS256)
	auth0Claims := func(mods ...func(map[string]any)) map[string]any {
		return auth0.Claims("auth0|42", append([]func(map[string]any){oidcfake.Set("aud", "https://api.acme.dev")}, mods...)...)
	}
	strangerKey, err := oidcfake.NewKey(oidcfake.ES256) // published nowhere
	if err != nil {
		t.Fatal(err)
	}
	tampered := func() string {
		parts := strings.Split(h.token(preset.Clerk, "user_1"), ".")
		c := clerk.Claims("user_admin")
		b, _ := json.Marshal(c)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	}()
	withCrit := clerk.Mint(clerk.Claims("user_1"), oidcfake.MintOptions{Header: map[string]any{"crit": []string{"exp"}, "exp": 1}})
	now := time.Now()

	cases := []struct {
		name  string
		token string
		want  refusal
	}{
		{"alg none", oidcfake.AlgNone(clerk.Claims("user_1")), grantRefused(tokenexchange.ReasonAlgNotAllowed)},
		{"alg none, Better Auth", oidcfake.AlgNone(ba.Claims("u", oidcfake.Set("aud", "https://app.acme.dev"))), grantRefused(tokenexchange.ReasonAlgNotAllowed)},
		{"HS256 with the public key PEM", oidcfake.HS256(clerk.Claims("user_1"), rsaKey.PublicPEM(), rsaKey.KID), grantRefused(tokenexchange.ReasonAlgNotAllowed)},
		{"HS256 with the public JWK", oidcfake.HS256(clerk.Claims("user_1"), rsaKey.JWKJSON(), rsaKey.KID), grantRefused(tokenexchange.ReasonAlgNotAllowed)},
		{"HS256 with the public key, no kid", oidcfake.HS256(clerk.Claims("user_1"), rsaKey.PublicPEM(), ""), grantRefused(tokenexchange.ReasonAlgNotAllowed)},
		{"HS256 with the Ed25519 key", oidcfake.HS256(ba.Claims("u", oidcfake.Set("aud", "https://app.acme.dev")), []byte(ba.Key(oidcfake.EdDSA).Public.(ed25519.PublicKey)), ""), grantRefused(tokenexchange.ReasonAlgNotAllowed)},
		{"ES256 where only RS256 is allowed", clerk.Mint(clerk.Claims("user_1"), oidcfake.MintOptions{Alg: oidcfake.ES256}), grantRefused(tokenexchange.ReasonAlgNotAllowed)},
		{"unknown kid", clerk.Mint(clerk.Claims("user_1"), oidcfake.MintOptions{KID: "made-up"}), grantRefused(tokenexchange.ReasonUnknownKID)},
		{"no kid, several keys", clerk.Mint(clerk.Claims("user_1"), oidcfake.MintOptions{NoKID: true}), grantRefused(tokenexchange.ReasonKIDRequired)},
		{"kid of a key of another type", ba.Mint(ba.Claims("u", oidcfake.Set("aud", "https://app.acme.dev")), oidcfake.MintOptions{Key: strangerKey, KID: ba.Key(oidcfake.EdDSA).KID}), grantRefused(tokenexchange.ReasonKeyMismatch)},
		{"unpublished key", clerk.Mint(clerk.Claims("user_1"), oidcfake.MintOptions{Key: strangerKey}), grantRefused(tokenexchange.ReasonAlgNotAllowed)},
		{"tampered claims", tampered, grantRefused(tokenexchange.ReasonBadSignature)},
		{"crit header", withCrit, grantRefused(tokenexchange.ReasonMalformed)},
		{"expired", h.token(preset.Clerk, "user_1", oidcfake.Expired(time.Minute)), grantRefused(tokenexchange.ReasonExpired)},
		{"expired within the leeway", h.token(preset.Clerk, "user_1", oidcfake.Set("exp", now.Add(-10*time.Second).Unix())), grantRefused(tokenexchange.ReasonExpired)},
		{"no exp", h.token(preset.Clerk, "user_1", oidcfake.Set("exp", nil)), grantRefused(tokenexchange.ReasonMissingExp)},
		{"exp not a number", h.token(preset.Clerk, "user_1", oidcfake.Set("exp", "tomorrow")), grantRefused(tokenexchange.ReasonMalformed)},
		{"nbf in the future", h.token(preset.Clerk, "user_1", oidcfake.Set("nbf", now.Add(5*time.Minute).Unix())), grantRefused(tokenexchange.ReasonNotYetValid)},
		{"iat in the future", h.token(preset.Clerk, "user_1", oidcfake.Set("iat", now.Add(5*time.Minute).Unix())), grantRefused(tokenexchange.ReasonIssuedInFuture)},
		{"wrong iss", h.token(preset.Clerk, "user_1", oidcfake.Set("iss", "https://evil.example")), grantRefused(tokenexchange.ReasonUnknownIssuer)},
		{"no iss", h.token(preset.Clerk, "user_1", oidcfake.Set("iss", nil)), grantRefused(tokenexchange.ReasonUnknownIssuer)},
		{"iss of a trailing-slash variant", h.token(preset.Auth0, "auth0|1", oidcfake.Set("iss", "https://acme.us.auth0.com")), grantRefused(tokenexchange.ReasonUnknownIssuer)},
		// Tenant A's key, tenant B's iss: B's keys are the only ones tried.
		{"issuer confusion, A's kid", auth0.Mint(auth0Claims(), oidcfake.MintOptions{Key: rsaKey}), grantRefused(tokenexchange.ReasonUnknownKID)},
		{"issuer confusion, B's kid", auth0.Mint(auth0Claims(), oidcfake.MintOptions{Key: rsaKey, KID: auth0.Key(oidcfake.RS256).KID}), grantRefused(tokenexchange.ReasonBadSignature)},
		{"wrong aud", auth0.Mint(auth0Claims(oidcfake.Set("aud", "https://other.api")), oidcfake.MintOptions{}), grantRefused(tokenexchange.ReasonAudience)},
		{"no aud", auth0.Mint(auth0Claims(oidcfake.Set("aud", nil)), oidcfake.MintOptions{}), grantRefused(tokenexchange.ReasonAudience)},
		{"aud of another tenant", ba.Mint(ba.Claims("u", oidcfake.Set("aud", "https://api.acme.dev")), oidcfake.MintOptions{Alg: oidcfake.EdDSA}), grantRefused(tokenexchange.ReasonAudience)},
		{"azp not allowed", h.token(preset.Clerk, "user_1", oidcfake.Set("azp", "https://evil.example")), grantRefused(tokenexchange.ReasonAuthorizedParty)},
		{"azp not a string", h.token(preset.Clerk, "user_1", oidcfake.Set("azp", 7)), grantRefused(tokenexchange.ReasonAuthorizedParty)},
		{"no sub", h.token(preset.Clerk, "user_1", oidcfake.Set("sub", nil)), grantRefused(tokenexchange.ReasonBadSubject)},
		{"empty sub", h.token(preset.Clerk, "user_1", oidcfake.Set("sub", "")), grantRefused(tokenexchange.ReasonBadSubject)},
		{"sub not a string", h.token(preset.Clerk, "user_1", oidcfake.Set("sub", 42)), grantRefused(tokenexchange.ReasonBadSubject)},
		{"sub with a control character", h.token(preset.Clerk, "user_1", oidcfake.Set("sub", "user\n1")), grantRefused(tokenexchange.ReasonBadSubject)},
		{"sub of 256 bytes", h.token(preset.Clerk, "user_1", oidcfake.Set("sub", strings.Repeat("u", 256))), grantRefused(tokenexchange.ReasonBadSubject)},
		{"not a JWT", "not-a-jwt", grantRefused(tokenexchange.ReasonMalformed)},
		{"JWE-shaped", "a.b.c.d.e", grantRefused(tokenexchange.ReasonMalformed)},
		{"huge token", h.token(preset.Clerk, "user_1", oidcfake.Set("pad", strings.Repeat("x", 20<<10))), badRequest(tokenexchange.ReasonTokenTooLarge)},
	}
	var seen []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen = append(seen, tc.token)
			r := h.form(tc.token)
			if r.status != tc.want.status || r.err.Error != tc.want.code || r.err.ErrorDescription != (&tokenexchange.Error{Reason: tc.want.reason}).Error() {
				t.Errorf("/token: %d %s; want %d %s (%s)", r.status, r.body, tc.want.status, tc.want.code, tc.want.reason)
			}
			noToken(t, r.body, tc.token)
			// The bearer endpoint refuses the same with 401 invalid_token (400 for a request error).
			r = h.bearer(http.MethodPost, tc.token)
			status, code := http.StatusUnauthorized, "invalid_token"
			if tc.want.code != "invalid_grant" {
				status, code = tc.want.status, tc.want.code
			}
			if r.status != status || r.err.Error != code {
				t.Errorf("/exchange: %d %s; want %d %s", r.status, r.body, status, code)
			}
			if status == http.StatusUnauthorized && !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("/exchange: WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
			noToken(t, r.body, tc.token)
		})
	}

	t.Run("exp far in the future is capped at the lifetime", func(t *testing.T) {
		tok := h.token(preset.Clerk, "user_1", oidcfake.Set("exp", time.Now().Add(10*365*24*time.Hour).Unix()))
		r := h.form(tok)
		checkMinted(t, r, testKey, "user_1", "user_1@acme.dev", config.DefaultLifetime)
		if r.ok.ExpiresIn != int64(config.DefaultLifetime/time.Second) {
			t.Errorf("expires_in = %d", r.ok.ExpiresIn)
		}
	})
	t.Run("a short-lived token mints a token that expires with it", func(t *testing.T) {
		tok := h.token(preset.Clerk, "user_1", oidcfake.Set("exp", time.Now().Add(40*time.Second).Unix()))
		r := h.form(tok)
		if r.status != http.StatusOK || r.ok.ExpiresIn > 40 || r.ok.ExpiresIn < 35 {
			t.Errorf("%d %+v", r.status, r.ok)
		}
	})
	t.Run("role project_admin in the provider token mints role authenticated", func(t *testing.T) {
		for _, p := range preset.Providers {
			tok := h.token(p, "user_1", oidcfake.Set("role", "project_admin"), oidcfake.Set("https://insforge.dev/role", "project_admin"))
			r := h.form(tok)
			checkMinted(t, r, testKey, "user_1", "user_1@acme.dev", config.DefaultLifetime)
			if c := payload(t, r.ok.AccessToken); c["role"] != "authenticated" || c["https://insforge.dev/role"] != nil {
				t.Errorf("%s: minted %v", p, c)
			}
		}
	})
	t.Run("azp allowed or absent", func(t *testing.T) {
		checkMinted(t, h.form(h.token(preset.Clerk, "user_1", oidcfake.Set("azp", "https://app.acme.dev"))), testKey, "user_1", "user_1@acme.dev", config.DefaultLifetime)
		checkMinted(t, h.form(h.token(preset.Clerk, "user_1")), testKey, "user_1", "user_1@acme.dev", config.DefaultLifetime)
	})
	t.Run("an email that is not a string is dropped", func(t *testing.T) {
		r := h.form(h.token(preset.Clerk, "user_1", oidcfake.Set("email", map[string]any{"a": 1})))
		checkMinted(t, r, testKey, "user_1", "", config.DefaultLifetime)
	})
	t.Run("request shape", func(t *testing.T) {
		good := h.token(preset.Clerk, "user_1")
		seen = append(seen, good)
		for _, tc := range []struct {
			name string
			r    reply
			want refusal
		}{
			{"wrong grant_type", h.form(good, "grant_type", "client_credentials"), refusal{400, "unsupported_grant_type", tokenexchange.ReasonUnsupportedGrantType}},
			{"no grant_type", h.form(good, "grant_type", ""), badRequest(tokenexchange.ReasonInvalidRequest)},
			{"saml2 subject_token_type", h.form(good, "subject_token_type", "urn:ietf:params:oauth:token-type:saml2"), badRequest(tokenexchange.ReasonUnsupportedTokenType)},
			{"no subject_token_type", h.form(good, "subject_token_type", ""), badRequest(tokenexchange.ReasonUnsupportedTokenType)},
			{"no subject_token", h.form("", "x", "y"), badRequest(tokenexchange.ReasonMissingToken)},
			{"actor token", h.form(good, "actor_token", good, "actor_token_type", tokenexchange.TokenTypeJWT), badRequest(tokenexchange.ReasonInvalidRequest)},
			{"requested saml", h.form(good, "requested_token_type", "urn:ietf:params:oauth:token-type:saml2"), badRequest(tokenexchange.ReasonInvalidRequest)},
			{"repeated parameter", h.raw(http.MethodPost, config.PathToken, "application/x-www-form-urlencoded",
				"grant_type="+tokenexchange.GrantTypeTokenExchange+"&subject_token_type="+tokenexchange.TokenTypeJWT+"&subject_token="+good+"&subject_token=x"), badRequest(tokenexchange.ReasonInvalidRequest)},
			{"JSON body", h.raw(http.MethodPost, config.PathToken, "application/json", `{"subject_token":"`+good+`"}`), badRequest(tokenexchange.ReasonInvalidRequest)},
			{"oversize body", h.raw(http.MethodPost, config.PathToken, "application/x-www-form-urlencoded",
				"grant_type="+tokenexchange.GrantTypeTokenExchange+"&pad="+strings.Repeat("x", 100<<10)), refusal{413, "invalid_request", tokenexchange.ReasonBodyTooLarge}},
			{"huge bearer header", h.bearer(http.MethodPost, good+strings.Repeat("x", 20<<10)), badRequest(tokenexchange.ReasonTokenTooLarge)},
			{"not a bearer", h.rawAuth("Basic " + good), badRequest(tokenexchange.ReasonInvalidRequest)},
		} {
			if tc.r.status != tc.want.status || tc.r.err.Error != tc.want.code || tc.r.err.ErrorDescription != (&tokenexchange.Error{Reason: tc.want.reason}).Error() {
				t.Errorf("%s: %d %s; want %d %s (%s)", tc.name, tc.r.status, tc.r.body, tc.want.status, tc.want.code, tc.want.reason)
			}
			noToken(t, tc.r.body, good)
		}
		if r := h.rawAuth(""); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("no Authorization: %d %v", r.status, r.header)
		}
		// Headers beyond the server's limit never reach the handler.
		if r := h.bearer(http.MethodPost, strings.Repeat("x", 40<<10)); r.status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("40 KiB header: %d", r.status)
		}
		for _, m := range []struct{ method, path string }{{"GET", config.PathToken}, {"PUT", config.PathToken}, {"DELETE", config.PathExchange}, {"PATCH", config.PathExchange}} {
			r := h.raw(m.method, m.path, "", "")
			if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") == "" {
				t.Errorf("%s %s: %d, Allow %q", m.method, m.path, r.status, r.header.Get("Allow"))
			}
		}
		if r := h.raw(http.MethodPost, "/other", "", ""); r.status != http.StatusNotFound {
			t.Errorf("unknown path: %d", r.status)
		}
	})
	t.Run("CORS", func(t *testing.T) {
		pre := func(origin, method string) reply {
			req, _ := http.NewRequest(http.MethodOptions, h.url+config.PathExchange, nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", method)
			req.Header.Set("Access-Control-Request-Headers", "authorization")
			return h.do(req)
		}
		r := pre("https://app.acme.dev", "POST")
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "https://app.acme.dev" ||
			r.header.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type" || r.header.Get("Access-Control-Allow-Credentials") != "" ||
			!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") || r.header.Get("Access-Control-Max-Age") != "600" {
			t.Errorf("allowed preflight: %d %v", r.status, r.header)
		}
		for _, bad := range []reply{pre("https://evil.example", "POST"), pre("https://app.acme.dev.evil.example", "POST"), pre("null", "POST"), pre("https://app.acme.dev", "DELETE")} {
			if bad.header.Get("Access-Control-Allow-Origin") != "" || bad.status != http.StatusForbidden {
				t.Errorf("refused preflight: %d %v", bad.status, bad.header)
			}
		}
		tok := h.token(preset.Clerk, "user_1")
		seen = append(seen, tok)
		for origin, want := range map[string]string{"https://app.acme.dev": "https://app.acme.dev", "https://evil.example": ""} {
			req, _ := http.NewRequest(http.MethodPost, h.url+config.PathExchange, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Origin", origin)
			r := h.do(req)
			if r.header.Get("Access-Control-Allow-Origin") != want || !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Origin") {
				t.Errorf("POST from %s: ACAO %q, Vary %q", origin, r.header.Get("Access-Control-Allow-Origin"), r.header.Values("Vary"))
			}
		}
	})

	// Nothing of any token reached the logs (debug level included).
	logs := h.logs.String()
	if !strings.Contains(logs, "exchange refused") {
		t.Fatalf("the refusals were not logged at all:\n%s", logs)
	}
	for _, tok := range seen {
		noToken(t, logs, tok)
	}
	m := h.metrics()
	for _, want := range []string{
		`insforge_exchange_exchanges_total{outcome="alg_not_allowed",provider="clerk"}`,
		`insforge_exchange_exchanges_total{outcome="unknown_issuer",provider="unknown"}`,
		`insforge_exchange_exchanges_total{outcome="body_too_large",provider="unknown"} 1`,
		`insforge_exchange_exchanges_total{outcome="audience_mismatch",provider="auth0"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// noToken fails if text holds the token or its signature or payload segment.
func noToken(t *testing.T, text, token string) {
	t.Helper()
	if token == "" {
		return
	}
	if strings.Contains(text, token) {
		t.Fatalf("the token appears in %q", text)
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 16 && strings.Contains(text, seg) {
			t.Fatalf("a token segment appears in %q", text)
		}
	}
}

func (h *harness) raw(method, path, contentType, body string) reply {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return h.do(req)
}

func (h *harness) rawAuth(auth string) reply {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+config.PathExchange, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return h.do(req)
}

// A flood of made-up kids through the exchange costs the issuer at most one fetch per minimum
// interval.
func TestKIDFloodCostsOneFetchPerInterval(t *testing.T) {
	h := start(t, harnessOptions{providers: []string{preset.Clerk}})
	clerk := h.tenants[preset.Clerk]
	var (
		wg       sync.WaitGroup
		requests atomic.Int64
		n        atomic.Int64
	)
	for range 8 {
		wg.Go(func() {
			for time.Since(h.started) < 2500*time.Millisecond {
				tok := clerk.Mint(clerk.Claims("user_1"), oidcfake.MintOptions{KID: fmt.Sprintf("forged-%d", n.Add(1))})
				if r := h.form(tok); r.status != http.StatusBadRequest || r.err.Error != "invalid_grant" {
					t.Errorf("made-up kid: %d %s", r.status, r.body)
					return
				}
				requests.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(h.started)
	limit := 1 + int64(elapsed/h.cfg.JWKS.MinRefreshInterval.Duration)
	if got := clerk.Fetches(); got > limit {
		t.Fatalf("%d requests in %s made %d JWKS fetches; at most %d allowed", requests.Load(), elapsed, got, limit)
	}
	t.Logf("%d requests with made-up kids in %s: %d JWKS fetches (limit %d)", requests.Load(), elapsed.Round(time.Millisecond), clerk.Fetches(), limit)
	// The real key still works.
	checkMinted(t, h.form(h.token(preset.Clerk, "user_1")), testKey, "user_1", "user_1@acme.dev", config.DefaultLifetime)
}

// After the issuer rotates its key, tokens with the new kid are accepted once the set has been
// refetched (at most one minimum interval later), and tokens with the old kid still are.
func TestIssuerKeyRotationIsPickedUp(t *testing.T) {
	h := start(t, harnessOptions{providers: []string{preset.Kinde}})
	kinde := h.tenants[preset.Kinde]
	old := h.token(preset.Kinde, "kp_1")
	kinde.Rotate(oidcfake.RS256)
	fresh := h.token(preset.Kinde, "kp_2")
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := h.bearer(http.MethodPost, fresh)
		if r.status == http.StatusOK {
			checkMinted(t, r, testKey, "kp_2", "kp_2@acme.dev", config.DefaultLifetime)
			break
		}
		if r.err.ErrorDescription != (&tokenexchange.Error{Reason: tokenexchange.ReasonUnknownKID}).Error() || time.Now().After(deadline) {
			t.Fatalf("new kid: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkMinted(t, h.bearer(http.MethodPost, old), testKey, "kp_1", "kp_1@acme.dev", config.DefaultLifetime)
	if n := kinde.Fetches(); n > 3 {
		t.Errorf("%d JWKS fetches for one rotation", n)
	}
}

// A new signing key (a Secret update, ..data symlink swap) is used for the next minted token,
// without a restart.
func TestSigningKeyRotation(t *testing.T) {
	h := start(t, harnessOptions{providers: []string{preset.Stytch}})
	tok := h.token(preset.Stytch, "user-test-1")
	checkMinted(t, h.form(tok), testKey, "user-test-1", "user-test-1@acme.dev", config.DefaultLifetime)
	const newKey = "the-rotated-signing-key-also-32-bytes-or-more-0002"
	h.writeKey(newKey)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := h.form(tok)
		if _, _, err := insforgejwt.Verify(r.ok.AccessToken, []byte(newKey), time.Now()); err == nil {
			if _, _, err := insforgejwt.Verify(r.ok.AccessToken, []byte(testKey), time.Now()); err == nil {
				t.Fatal("the token verifies with the old key too")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new signing key was not used within 5s: %d %s", r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := h.metrics(); !strings.Contains(m, `fingerprint="`+tokenexchange.Fingerprint([]byte(newKey))+`"} 1`) ||
		strings.Contains(m, tokenexchange.Fingerprint([]byte(testKey))) {
		t.Errorf("signing key info not updated")
	}
	if logs := h.logs.String(); strings.Contains(logs, newKey) || strings.Contains(logs, testKey) {
		t.Error("a signing key was logged")
	}
}

// Without a signing key the exchange is not ready and answers 503; it recovers when the key
// appears and fails again when it goes.
func TestMissingSigningKey(t *testing.T) {
	h := start(t, harnessOptions{providers: []string{preset.WorkOS}, noKey: true})
	tok := h.token(preset.WorkOS, "user_1")
	for _, r := range []reply{h.form(tok), h.bearer(http.MethodGet, tok)} {
		if r.status != http.StatusServiceUnavailable || r.err.Error != "temporarily_unavailable" || r.header.Get("Retry-After") == "" {
			t.Errorf("no key: %d %s", r.status, r.body)
		}
	}
	if code, body := h.get(h.adminURL + config.PathReadyz); code != http.StatusServiceUnavailable || !strings.Contains(body, "signing key") {
		t.Errorf("readyz without a key: %d %s", code, body)
	}
	if code, _ := h.get(h.adminURL + config.PathHealthz); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
	h.writeKey(testKey)
	h.waitReady()
	checkMinted(t, h.form(tok), testKey, "user_1", "user_1@acme.dev", config.DefaultLifetime)

	// An emptied key file unloads the key: never sign with an empty key.
	h.writeKey("")
	deadline := time.Now().Add(5 * time.Second)
	for h.form(tok).status != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("an empty key file still mints")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := h.get(h.adminURL + config.PathReadyz); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with an empty key: %d", code)
	}
	must(t, os.Remove(h.keyPath))
	must(t, os.Symlink(filepath.Join(h.keyDir, "missing"), h.keyPath))
	time.Sleep(150 * time.Millisecond)
	if r := h.form(tok); r.status != http.StatusServiceUnavailable {
		t.Errorf("dangling key link: %d", r.status)
	}
	if !strings.Contains(h.metrics(), "insforge_exchange_signing_key_loaded 0") {
		t.Error("signing_key_loaded is not 0")
	}
}

// Until an issuer's keys have been fetched, the exchange is not ready, and that issuer's tokens
// get 503 (the exchange's state, not the token's fault).
func TestUnreachableIssuer(t *testing.T) {
	h := start(t, harnessOptions{providers: []string{preset.Auth0}, noKey: true, before: func(h *harness) {
		h.tenants[preset.Auth0].SetStatus(http.StatusBadGateway)
	}})
	h.writeKey(testKey)
	time.Sleep(time.Until(h.started.Add(1100 * time.Millisecond)))
	r := h.form(h.token(preset.Auth0, "auth0|1"))
	if r.status != http.StatusServiceUnavailable || r.err.ErrorDescription != (&tokenexchange.Error{Reason: tokenexchange.ReasonKeysUnavailable}).Error() {
		t.Errorf("unreachable issuer: %d %s", r.status, r.body)
	}
	if code, body := h.get(h.adminURL + config.PathReadyz); code != http.StatusServiceUnavailable || !strings.Contains(body, "auth0 keys") {
		t.Errorf("readyz: %d %s", code, body)
	}
	if !strings.Contains(h.metrics(), `insforge_exchange_jwks_fetches_total{provider="auth0",result="http_status"}`) {
		t.Error("failed fetch not counted")
	}
	h.tenants[preset.Auth0].SetStatus(0)
	h.waitReady() // Run retries every minimum interval until a fetch succeeds
}
