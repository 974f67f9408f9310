// Package auth0fake is an in-process stand-in for the parts of an Auth0 tenant the operator
// uses, for tests: the client-credentials token endpoint and the Management API's resource
// servers, Actions (build, deploy, secrets) and trigger bindings. It checks what Auth0 checks:
// client credentials and audience, a valid unexpired bearer holding the endpoint's scope, unique
// identifiers and names, signing_secret length and algorithm, an immutable identifier, deploy
// only once built, bindings only to deployed Actions, binding lists that replace the trigger's
// list and refer to things that exist. Secrets are never returned. Tests can count requests and
// token fetches, inject 429s, expire tokens, pre-bind a user's Action and mint the access token
// Auth0 would issue for an API.
package auth0fake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/testutil/insforgejwt"
)

// AllScopes returns the Management API scopes the fake knows.
func AllScopes() []string {
	return []string{
		"read:resource_servers", "create:resource_servers", "update:resource_servers", "delete:resource_servers",
		"read:actions", "create:actions", "update:actions", "delete:actions",
	}
}

// signingAlgs is Auth0's SigningAlgorithmEnum.
var signingAlgs = []string{"HS256", "RS256", "RS512", "PS256"}

// runtimes are the accepted Action runtimes.
var runtimes = []string{"node18", "node18-actions", "node22"}

// Config configures the fake.
type Config struct {
	// Domain is the tenant domain: the token audience is https://{Domain}/api/v2/.
	Domain                 string
	ClientID, ClientSecret string
	// Scopes are granted to issued tokens; nil grants AllScopes().
	Scopes []string
	// TokenLifetime is the tokens' expires_in (0: 24 h, Auth0's default).
	TokenLifetime time.Duration
	// BuildAfterGets is how many reads of an Action it takes to go pending → building → built
	// after a write (0: 2).
	BuildAfterGets int
	// ReturnSigningSecret includes signing_secret in resource-server answers, as some tenants
	// do (the Terraform provider reads it back); by default it is never returned.
	ReturnSigningSecret bool
	// Now is the server clock; nil means time.Now.
	Now func() time.Time
	// EchoSecrets makes error messages quote the bearer, client secret and submitted secrets,
	// which Auth0 does not do: it lets a test prove the client redacts them anyway.
	EchoSecrets bool
}

// ResourceServer is a stored API, as a test sees it.
type ResourceServer struct {
	ID, Identifier, Name string
	SigningAlg           string
	SigningSecret        string
	TokenLifetime        int
	AllowOfflineAccess   bool
	IsSystem             bool
}

// ActionView is a stored Action, as a test sees it.
type ActionView struct {
	ID, Name, Code, Runtime string
	Dependencies            []Dependency
	SecretNames             []string
	Status                  string
	AllChangesDeployed      bool
	DeployedVersion         string
	Triggers                []string
}

// Dependency is an Action dependency.
type Dependency struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	RegistryURL string `json:"registry_url,omitempty"`
}

// Binding is one binding of a trigger.
type Binding struct {
	ID, ActionID, ActionName, DisplayName string
}

type trigger struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

type actionSecret struct {
	Name      string
	Value     string
	UpdatedAt time.Time
}

type version struct {
	ID      string
	Number  int
	Code    string
	Secrets []actionSecret
}

type action struct {
	ID, Name           string
	Triggers           []trigger
	Code, Runtime      string
	Deps               []Dependency
	Secrets            []actionSecret
	Status             string
	gets               int
	failBuild          bool
	AllChangesDeployed bool
	Deployed           *version
	versions           int
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

type binding struct {
	ID, ActionID, DisplayName string
}

type token struct {
	expiry time.Time
	scopes []string
}

type failure struct {
	status int
	reset  time.Duration
}

// Server is the fake tenant.
type Server struct {
	*httptest.Server
	cfg Config

	mu           sync.Mutex
	seq          int
	tokens       map[string]token
	scopes       []string
	rs           map[string]*ResourceServer // by id
	actions      map[string]*action         // by id
	bindings     map[string][]binding       // by trigger
	counts       map[string]int
	tokenFetches int
	failures     []failure
	failWrites   []int
}

// New starts the fake and stops it when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = 24 * time.Hour
	}
	if cfg.BuildAfterGets == 0 {
		cfg.BuildAfterGets = 2
	}
	s := &Server{cfg: cfg, tokens: map[string]token{}, rs: map[string]*ResourceServer{}, actions: map[string]*action{},
		bindings: map[string][]binding{}, counts: map[string]int{}, scopes: cfg.Scopes}
	if s.scopes == nil {
		s.scopes = AllScopes()
	}
	// Every tenant has the Management API itself as a system API.
	sys := &ResourceServer{ID: s.id("rs"), Identifier: "https://" + cfg.Domain + "/api/v2/", Name: "Auth0 Management API",
		SigningAlg: "RS256", TokenLifetime: 86400, IsSystem: true}
	s.rs[sys.ID] = sys
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *Server) id(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s_%06d", prefix, s.seq)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// --- test controls ---

// SetScopes changes the scopes granted to tokens issued from now on.
func (s *Server) SetScopes(scopes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = slices.Clone(scopes)
}

// ExpireTokens revokes every token issued so far: the next call with one answers 401.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// TokenFetches returns how many tokens were issued.
func (s *Server) TokenFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenFetches
}

// RateLimitNext answers the next n requests (token endpoint included) 429, with X-RateLimit-Reset
// reset from now.
func (s *Server) RateLimitNext(n int, reset time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{status: http.StatusTooManyRequests, reset: reset})
	}
}

// FailNext answers the next n requests with status (with EchoSecrets, quoting the request's
// Authorization header and body).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{status: status})
	}
}

// FailNextWrite answers the next POST, PATCH or DELETE to the Management API with status, after
// the reads before it succeeded (with EchoSecrets, quoting the request's Authorization header
// and body).
func (s *Server) FailNextWrite(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWrites = append(s.failWrites, status)
}

// Count returns how many requests arrived for method and path (no query).
func (s *Server) Count(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method+" "+path]
}

// Writes returns how many POST, PATCH and DELETE requests reached the Management API.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.counts {
		if !strings.HasPrefix(k, http.MethodGet+" ") && !strings.HasSuffix(k, " /oauth/token") {
			n += v
		}
	}
	return n
}

// ResourceServer returns the API with identifier.
func (s *Server) ResourceServer(identifier string) (ResourceServer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rsByIdentifier(identifier); r != nil {
		return *r, true
	}
	return ResourceServer{}, false
}

// SigningSecret returns the signing secret of the API with identifier ("" if none).
func (s *Server) SigningSecret(identifier string) string {
	r, _ := s.ResourceServer(identifier)
	return r.SigningSecret
}

// EditResourceServer changes an API as a dashboard edit would.
func (s *Server) EditResourceServer(identifier string, mutate func(*ResourceServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rsByIdentifier(identifier)
	if r == nil {
		panic("auth0fake: no API " + identifier)
	}
	c := *r
	mutate(&c)
	c.ID, c.Identifier = r.ID, r.Identifier
	*r = c
}

// Action returns the Action named name.
func (s *Server) Action(name string) (ActionView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.actionByName(name)
	if a == nil {
		return ActionView{}, false
	}
	v := ActionView{ID: a.ID, Name: a.Name, Code: a.Code, Runtime: a.Runtime, Dependencies: slices.Clone(a.Deps),
		Status: a.Status, AllChangesDeployed: a.AllChangesDeployed}
	for _, sec := range a.Secrets {
		v.SecretNames = append(v.SecretNames, sec.Name)
	}
	for _, t := range a.Triggers {
		v.Triggers = append(v.Triggers, t.ID)
	}
	if a.Deployed != nil {
		v.DeployedVersion = a.Deployed.ID
	}
	return v, true
}

// ActionSecret returns the value of secret in the Action named name (its draft).
func (s *Server) ActionSecret(name, secret string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.actionByName(name); a != nil {
		for _, sec := range a.Secrets {
			if sec.Name == secret {
				return sec.Value
			}
		}
	}
	return ""
}

// DeployedSecret returns the value of secret in the deployed version of the Action named name:
// what runs at login.
func (s *Server) DeployedSecret(name, secret string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.actionByName(name); a != nil && a.Deployed != nil {
		for _, sec := range a.Deployed.Secrets {
			if sec.Name == secret {
				return sec.Value
			}
		}
	}
	return ""
}

// SetActionSecret changes a secret of an Action as a dashboard edit would, without deploying.
func (s *Server) SetActionSecret(name, secret, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.actionByName(name)
	if a == nil {
		panic("auth0fake: no Action " + name)
	}
	a.Secrets = slices.DeleteFunc(a.Secrets, func(x actionSecret) bool { return x.Name == secret })
	a.Secrets = append(a.Secrets, actionSecret{Name: secret, Value: value, UpdatedAt: s.cfg.Now()})
	s.changed(a)
}

// DeployOutOfBand builds and deploys an Action's draft as the dashboard would.
func (s *Server) DeployOutOfBand(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.actionByName(name)
	if a == nil {
		panic("auth0fake: no Action " + name)
	}
	a.Status = "built"
	s.deploy(a)
}

// FailBuild makes every later build of the Action named name fail.
func (s *Server) FailBuild(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.actionByName(name); a != nil {
		a.failBuild = true
	}
}

// Bindings returns a trigger's bindings in execution order.
func (s *Server) Bindings(trig string) []Binding {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Binding
	for _, b := range s.bindings[trig] {
		name := ""
		if a := s.actions[b.ActionID]; a != nil {
			name = a.Name
		}
		out = append(out, Binding{ID: b.ID, ActionID: b.ActionID, ActionName: name, DisplayName: b.DisplayName})
	}
	return out
}

// AddUserBinding makes a deployed Action named actionName for trigger (if there is none) and
// binds it last, as a tenant's own Action would be; it returns the binding id.
func (s *Server) AddUserBinding(trig, actionName, displayName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.actionByName(actionName)
	if a == nil {
		now := s.cfg.Now()
		a = &action{ID: s.id("act"), Name: actionName, Triggers: []trigger{{ID: trig, Version: "v3"}},
			Code: "exports.onExecutePostLogin = async () => {};", Runtime: "node22", Status: "built", CreatedAt: now, UpdatedAt: now}
		s.actions[a.ID] = a
		s.deploy(a)
	}
	b := binding{ID: s.id("bnd"), ActionID: a.ID, DisplayName: displayName}
	s.bindings[trig] = append(s.bindings[trig], b)
	return b.ID
}

// MintAccessToken issues the access token Auth0 would give an app that asked for audience
// identifier on behalf of user sub: HS256 with the API's signing secret.
func (s *Server) MintAccessToken(identifier, sub string) (string, error) {
	s.mu.Lock()
	r := s.rsByIdentifier(identifier)
	var c ResourceServer
	if r != nil {
		c = *r
	}
	s.mu.Unlock()
	if r == nil || c.SigningAlg != "HS256" || c.SigningSecret == "" {
		return "", fmt.Errorf("no HS256 API %q", identifier)
	}
	now := s.cfg.Now().Unix()
	iss := "https://" + s.cfg.Domain + "/"
	return insforgejwt.Sign([]byte(c.SigningSecret), map[string]any{
		"iss": iss, "sub": sub, "aud": []string{identifier, iss + "userinfo"},
		"iat": now, "exp": now + int64(c.TokenLifetime), "scope": "openid profile email",
		"azp": s.cfg.ClientID,
	})
}

// --- helpers, callers hold mu ---

func (s *Server) rsByIdentifier(identifier string) *ResourceServer {
	for _, r := range s.rs {
		if r.Identifier == identifier {
			return r
		}
	}
	return nil
}

func (s *Server) actionByName(name string) *action {
	for _, a := range s.actions {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// changed marks an Action written: a new build starts and the changes are not deployed.
func (s *Server) changed(a *action) {
	a.Status, a.gets, a.AllChangesDeployed = "pending", 0, false
	a.UpdatedAt = s.cfg.Now()
}

func (s *Server) deploy(a *action) *version {
	a.versions++
	v := &version{ID: s.id("ver"), Number: a.versions, Code: a.Code, Secrets: slices.Clone(a.Secrets)}
	a.Deployed, a.AllChangesDeployed = v, true
	return v
}

func (s *Server) bound(actionID string) bool {
	for _, bs := range s.bindings {
		for _, b := range bs {
			if b.ActionID == actionID {
				return true
			}
		}
	}
	return false
}

// --- HTTP ---

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError writes the Management API's error body.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	body := map[string]any{"statusCode": status, "error": http.StatusText(status), "message": msg}
	if code != "" {
		body["errorCode"] = code
	}
	writeJSON(w, status, body)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[r.Method+" "+r.URL.Path]++
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		if f.status == http.StatusTooManyRequests {
			w.Header().Set("X-RateLimit-Limit", "2")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(s.cfg.Now().Add(f.reset).Unix(), 10))
			apiError(w, f.status, "too_many_requests", "Global limit has been reached")
			return
		}
		s.injected(w, r, f.status)
		return
	}
	if len(s.failWrites) > 0 && r.Method != http.MethodGet && r.URL.Path != "/oauth/token" {
		status := s.failWrites[0]
		s.failWrites = s.failWrites[1:]
		s.injected(w, r, status)
		return
	}
	if r.URL.Path == "/oauth/token" && r.Method == http.MethodPost {
		s.issueToken(w, r)
		return
	}
	segs, ok := segments(r.URL.EscapedPath(), "/api/v2/")
	if !ok {
		apiError(w, http.StatusNotFound, "", "Not Found")
		return
	}
	scope := scopeFor(r.Method, segs)
	if !s.authorized(w, r, scope) {
		return
	}
	switch {
	case len(segs) >= 1 && segs[0] == "resource-servers":
		s.resourceServers(w, r, segs[1:])
	case len(segs) >= 2 && segs[0] == "actions" && segs[1] == "actions":
		s.actionRoutes(w, r, segs[2:])
	case len(segs) == 4 && segs[0] == "actions" && segs[1] == "triggers" && segs[3] == "bindings":
		s.bindingRoutes(w, r, segs[2])
	default:
		apiError(w, http.StatusNotFound, "", "Not Found")
	}
}

func (s *Server) injected(w http.ResponseWriter, r *http.Request, status int) {
	msg := "injected failure"
	if s.cfg.EchoSecrets {
		raw, _ := io.ReadAll(r.Body)
		msg += ": " + r.Header.Get("Authorization") + " " + string(raw)
	}
	apiError(w, status, "", msg)
}

// segments splits an escaped path after prefix into unescaped segments (an identifier may hold
// an escaped slash).
func segments(escaped, prefix string) ([]string, bool) {
	rest, ok := strings.CutPrefix(escaped, prefix)
	if !ok || rest == "" {
		return nil, false
	}
	var out []string
	for _, p := range strings.Split(rest, "/") {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		out = append(out, u)
	}
	return out, true
}

// scopeFor is the scope an endpoint needs (deploy needs create:actions, bindings update:actions).
func scopeFor(method string, segs []string) string {
	kind := "actions"
	if segs[0] == "resource-servers" {
		kind = "resource_servers"
	}
	switch {
	case method == http.MethodGet:
		return "read:" + kind
	case method == http.MethodPost:
		return "create:" + kind
	case method == http.MethodPatch:
		return "update:" + kind
	case method == http.MethodDelete:
		return "delete:" + kind
	}
	return "unknown"
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request, scope string) bool {
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok, known := s.tokens[bearer]
	echo := ""
	if s.cfg.EchoSecrets {
		echo = " (" + bearer + ")"
	}
	switch {
	case !ok || bearer == "":
		apiError(w, http.StatusUnauthorized, "", "Missing authentication")
		return false
	case !known:
		apiError(w, http.StatusUnauthorized, "", "Invalid token"+echo)
		return false
	case !s.cfg.Now().Before(tok.expiry):
		apiError(w, http.StatusUnauthorized, "", "Expired token received for JSON Web Token validation"+echo)
		return false
	case !slices.Contains(tok.scopes, scope):
		apiError(w, http.StatusForbidden, "insufficient_scope", "Insufficient scope, expected any of: "+scope)
		return false
	}
	return true
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) {
	var form url.Values
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		form = url.Values{}
		for k, v := range body {
			form.Set(k, v)
		}
	} else {
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "malformed body"})
			return
		}
		form = r.PostForm
	}
	echo := ""
	if s.cfg.EchoSecrets {
		echo = " (client_secret " + form.Get("client_secret") + ")"
	}
	switch {
	case form.Get("grant_type") != "client_credentials":
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "unauthorized_client", "error_description": "Grant type not allowed for the client."})
	case form.Get("client_id") != s.cfg.ClientID || form.Get("client_secret") != s.cfg.ClientSecret || s.cfg.ClientSecret == "":
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "access_denied", "error_description": "Unauthorized" + echo})
	case form.Get("audience") != "https://"+s.cfg.Domain+"/api/v2/":
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "access_denied", "error_description": "Service not enabled within domain: " + form.Get("audience")})
	default:
		s.tokenFetches++
		tok := "fake_at_" + randomHex(16)
		s.tokens[tok] = token{expiry: s.cfg.Now().Add(s.cfg.TokenLifetime), scopes: slices.Clone(s.scopes)}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer",
			"expires_in": int64(s.cfg.TokenLifetime / time.Second), "scope": strings.Join(s.scopes, " ")})
	}
}

// decode reads a JSON object body, refusing properties not in allowed, as Auth0's payload
// validation does.
func decode(w http.ResponseWriter, r *http.Request, allowed ...string) (map[string]json.RawMessage, bool) {
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body == nil {
		apiError(w, http.StatusBadRequest, "invalid_body", "Invalid request payload JSON format")
		return nil, false
	}
	for k := range body {
		if !slices.Contains(allowed, k) {
			apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: 'Additional properties not allowed: "+k+"'.")
			return nil, false
		}
	}
	return body, true
}

func field[T any](w http.ResponseWriter, body map[string]json.RawMessage, name string, dst *T) bool {
	raw, ok := body[name]
	if !ok {
		return true
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: invalid type for "+name)
		return false
	}
	return true
}

func (s *Server) rsView(r *ResourceServer) map[string]any {
	v := map[string]any{"id": r.ID, "identifier": r.Identifier, "name": r.Name, "signing_alg": r.SigningAlg,
		"token_lifetime": r.TokenLifetime, "allow_offline_access": r.AllowOfflineAccess, "is_system": r.IsSystem}
	if s.cfg.ReturnSigningSecret && r.SigningAlg == "HS256" {
		v["signing_secret"] = r.SigningSecret
	}
	return v
}

func (s *Server) resourceServers(w http.ResponseWriter, r *http.Request, rest []string) {
	if len(rest) == 0 || rest[0] == "" {
		switch r.Method {
		case http.MethodGet:
			ids := r.URL.Query()["identifiers"]
			out := []map[string]any{}
			for _, rs := range s.rs {
				if len(ids) == 0 || slices.Contains(ids, rs.Identifier) {
					out = append(out, s.rsView(rs))
				}
			}
			writeJSON(w, http.StatusOK, out)
		case http.MethodPost:
			s.createRS(w, r)
		default:
			apiError(w, http.StatusMethodNotAllowed, "", "Method Not Allowed")
		}
		return
	}
	if len(rest) != 1 {
		apiError(w, http.StatusNotFound, "", "Not Found")
		return
	}
	// Auth0 reads a resource server by id or by identifier.
	rs := s.rs[rest[0]]
	if rs == nil {
		rs = s.rsByIdentifier(rest[0])
	}
	if rs == nil {
		apiError(w, http.StatusNotFound, "inexistent_resource_server", "The resource server does not exist")
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.rsView(rs))
	case http.MethodPatch:
		s.patchRS(w, r, rs)
	case http.MethodDelete:
		if rs.IsSystem {
			apiError(w, http.StatusBadRequest, "", "You cannot delete a system resource server")
			return
		}
		delete(s.rs, rs.ID)
		w.WriteHeader(http.StatusNoContent)
	default:
		apiError(w, http.StatusMethodNotAllowed, "", "Method Not Allowed")
	}
}

var rsFields = []string{"name", "signing_alg", "signing_secret", "token_lifetime", "allow_offline_access"}

// rsValid applies body to next, checking what Auth0's schema checks.
func (s *Server) rsValid(w http.ResponseWriter, body map[string]json.RawMessage, next *ResourceServer) bool {
	if !field(w, body, "name", &next.Name) || !field(w, body, "signing_alg", &next.SigningAlg) ||
		!field(w, body, "token_lifetime", &next.TokenLifetime) || !field(w, body, "allow_offline_access", &next.AllowOfflineAccess) {
		return false
	}
	secret := next.SigningSecret
	if !field(w, body, "signing_secret", &secret) {
		return false
	}
	echo := ""
	if s.cfg.EchoSecrets {
		echo = " (" + secret + ")"
	}
	switch {
	case !slices.Contains(signingAlgs, next.SigningAlg):
		apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: 'No enum match for: "+next.SigningAlg+"' on property signing_alg."+echo)
		return false
	case len(secret) < 16 && (secret != "" || next.SigningAlg == "HS256" && body["signing_secret"] != nil):
		apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: 'String is too short (minimum 16)' on property signing_secret."+echo)
		return false
	case next.TokenLifetime < 0 || next.TokenLifetime > 2592000:
		apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: token_lifetime out of range"+echo)
		return false
	}
	next.SigningSecret = secret
	if next.SigningAlg == "HS256" && next.SigningSecret == "" {
		next.SigningSecret = randomHex(16) // Auth0 generates one
	}
	return true
}

func (s *Server) createRS(w http.ResponseWriter, r *http.Request) {
	body, ok := decode(w, r, append([]string{"identifier"}, rsFields...)...)
	if !ok {
		return
	}
	next := ResourceServer{SigningAlg: "RS256", TokenLifetime: 86400}
	if !field(w, body, "identifier", &next.Identifier) {
		return
	}
	if next.Identifier == "" {
		apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: 'Missing required property: identifier'.")
		return
	}
	if !s.rsValid(w, body, &next) {
		return
	}
	if s.rsByIdentifier(next.Identifier) != nil {
		apiError(w, http.StatusConflict, "resource_server_conflict", "A resource server with the same identifier already exists")
		return
	}
	if next.Name == "" {
		next.Name = next.Identifier
	}
	next.ID = s.id("rs")
	s.rs[next.ID] = &next
	writeJSON(w, http.StatusCreated, s.rsView(&next))
}

func (s *Server) patchRS(w http.ResponseWriter, r *http.Request, rs *ResourceServer) {
	if rs.IsSystem {
		apiError(w, http.StatusForbidden, "", "You cannot update a system resource server")
		return
	}
	body, ok := decode(w, r, rsFields...) // identifier is immutable: not allowed on PATCH
	if !ok {
		return
	}
	next := *rs
	if !s.rsValid(w, body, &next) {
		return
	}
	*rs = next
	writeJSON(w, http.StatusOK, s.rsView(rs))
}

func (s *Server) actionView(a *action) map[string]any {
	secrets := []map[string]any{}
	for _, sec := range a.Secrets {
		secrets = append(secrets, map[string]any{"name": sec.Name, "updated_at": sec.UpdatedAt.UTC().Format(time.RFC3339Nano)})
	}
	v := map[string]any{"id": a.ID, "name": a.Name, "supported_triggers": a.Triggers, "code": a.Code,
		"dependencies": a.Deps, "runtime": a.Runtime, "secrets": secrets, "status": a.Status,
		"all_changes_deployed": a.AllChangesDeployed,
		"created_at":           a.CreatedAt.UTC().Format(time.RFC3339Nano), "updated_at": a.UpdatedAt.UTC().Format(time.RFC3339Nano)}
	if a.Deployed != nil {
		v["deployed_version"] = map[string]any{"id": a.Deployed.ID, "number": a.Deployed.Number, "deployed": true, "status": "built"}
	}
	return v
}

func (s *Server) actionRoutes(w http.ResponseWriter, r *http.Request, rest []string) {
	if len(rest) == 0 || rest[0] == "" {
		switch r.Method {
		case http.MethodGet:
			q := r.URL.Query()
			out := []map[string]any{}
			for _, a := range s.actions {
				if n := q.Get("actionName"); n != "" && a.Name != n {
					continue
				}
				if t := q.Get("triggerId"); t != "" && !slices.ContainsFunc(a.Triggers, func(x trigger) bool { return x.ID == t }) {
					continue
				}
				out = append(out, s.actionView(a))
			}
			writeJSON(w, http.StatusOK, map[string]any{"actions": out, "total": len(out), "page": 0, "per_page": 50})
		case http.MethodPost:
			s.writeAction(w, r, nil)
		default:
			apiError(w, http.StatusMethodNotAllowed, "", "Method Not Allowed")
		}
		return
	}
	a := s.actions[rest[0]]
	if a == nil {
		apiError(w, http.StatusNotFound, "", "The action does not exist.")
		return
	}
	if len(rest) == 2 && rest[1] == "deploy" && r.Method == http.MethodPost {
		if a.Status != "built" {
			apiError(w, http.StatusBadRequest, "", "The action must be built before it can be deployed (status "+a.Status+")")
			return
		}
		v := s.deploy(a)
		writeJSON(w, http.StatusOK, map[string]any{"id": v.ID, "number": v.Number, "deployed": true, "status": "built", "code": v.Code, "action": map[string]any{"id": a.ID, "name": a.Name}})
		return
	}
	if len(rest) != 1 {
		apiError(w, http.StatusNotFound, "", "Not Found")
		return
	}
	switch r.Method {
	case http.MethodGet:
		// Each read moves a build along: pending → building → built (or failed).
		if a.Status != "built" && a.Status != "failed" {
			a.gets++
			switch {
			case a.gets >= s.cfg.BuildAfterGets && a.failBuild:
				a.Status = "failed"
			case a.gets >= s.cfg.BuildAfterGets:
				a.Status = "built"
			default:
				a.Status = "building"
			}
		}
		writeJSON(w, http.StatusOK, s.actionView(a))
	case http.MethodPatch:
		s.writeAction(w, r, a)
	case http.MethodDelete:
		if s.bound(a.ID) && r.URL.Query().Get("force") != "true" {
			apiError(w, http.StatusBadRequest, "", "The action is bound to a trigger; remove its bindings first or use force=true")
			return
		}
		for t, bs := range s.bindings {
			s.bindings[t] = slices.DeleteFunc(bs, func(b binding) bool { return b.ActionID == a.ID })
		}
		delete(s.actions, a.ID)
		w.WriteHeader(http.StatusNoContent)
	default:
		apiError(w, http.StatusMethodNotAllowed, "", "Method Not Allowed")
	}
}

// writeAction creates (cur nil) or updates an Action. secrets, when sent, replace the list.
func (s *Server) writeAction(w http.ResponseWriter, r *http.Request, cur *action) {
	allowed := []string{"name", "supported_triggers", "code", "dependencies", "runtime", "secrets"}
	if cur == nil {
		allowed = append(allowed, "deploy")
	}
	body, ok := decode(w, r, allowed...)
	if !ok {
		return
	}
	next := action{Runtime: "node22"}
	if cur != nil {
		next = *cur
	}
	var secrets []struct {
		Name  string  `json:"name"`
		Value *string `json:"value"`
	}
	if !field(w, body, "name", &next.Name) || !field(w, body, "supported_triggers", &next.Triggers) || !field(w, body, "code", &next.Code) ||
		!field(w, body, "dependencies", &next.Deps) || !field(w, body, "runtime", &next.Runtime) || !field(w, body, "secrets", &secrets) {
		return
	}
	echo := ""
	if s.cfg.EchoSecrets {
		for _, sec := range secrets {
			if sec.Value != nil {
				echo += " (" + *sec.Value + ")"
			}
		}
	}
	switch {
	case next.Name == "":
		apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: 'Missing required property: name'.")
		return
	case len(next.Triggers) != 1 || next.Triggers[0].ID == "" || next.Triggers[0].Version == "":
		apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: supported_triggers must hold exactly one trigger with id and version")
		return
	case cur != nil && body["supported_triggers"] != nil && !slices.Equal(next.Triggers, cur.Triggers):
		apiError(w, http.StatusBadRequest, "invalid_body", "The supported trigger of an action cannot be changed")
		return
	case !slices.Contains(runtimes, next.Runtime):
		apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: 'No enum match for: "+next.Runtime+"' on property runtime.")
		return
	}
	for _, d := range next.Deps {
		if d.Name == "" || d.Version == "" {
			apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: dependencies need name and version")
			return
		}
	}
	if _, sent := body["secrets"]; sent {
		var list []actionSecret
		for _, sec := range secrets {
			if sec.Name == "" || sec.Value == nil {
				apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: secrets need name and value"+echo)
				return
			}
			list = append(list, actionSecret{Name: sec.Name, Value: *sec.Value, UpdatedAt: s.cfg.Now()})
		}
		next.Secrets = list
	}
	if other := s.actionByName(next.Name); other != nil && (cur == nil || other.ID != cur.ID) {
		apiError(w, http.StatusConflict, "", "An action with the same name already exists."+echo)
		return
	}
	if cur == nil {
		next.ID = s.id("act")
		next.CreatedAt = s.cfg.Now()
		a := &next
		s.actions[a.ID] = a
		cur = a
	} else {
		*cur = next
	}
	s.changed(cur)
	writeJSON(w, http.StatusOK, s.actionView(cur))
}

func (s *Server) bindingView(trig string, b binding) map[string]any {
	a := s.actions[b.ActionID]
	return map[string]any{"id": b.ID, "trigger_id": trig, "display_name": b.DisplayName,
		"action": map[string]any{"id": a.ID, "name": a.Name, "supported_triggers": a.Triggers}}
}

func (s *Server) bindingRoutes(w http.ResponseWriter, r *http.Request, trig string) {
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		page, _ := strconv.Atoi(q.Get("page"))
		per, _ := strconv.Atoi(q.Get("per_page"))
		if per <= 0 {
			per = 50
		}
		all := s.bindings[trig]
		lo, hi := min(page*per, len(all)), min((page+1)*per, len(all))
		out := []map[string]any{}
		for _, b := range all[lo:hi] {
			out = append(out, s.bindingView(trig, b))
		}
		writeJSON(w, http.StatusOK, map[string]any{"bindings": out, "total": len(all), "page": page, "per_page": per})
	case http.MethodPatch:
		s.patchBindings(w, r, trig)
	default:
		apiError(w, http.StatusMethodNotAllowed, "", "Method Not Allowed")
	}
}

// patchBindings replaces the trigger's bindings with the list sent, in its order.
func (s *Server) patchBindings(w http.ResponseWriter, r *http.Request, trig string) {
	body, ok := decode(w, r, "bindings")
	if !ok {
		return
	}
	var list []struct {
		Ref struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"ref"`
		DisplayName string `json:"display_name"`
	}
	if !field(w, body, "bindings", &list) {
		return
	}
	var next []binding
	for _, item := range list {
		var b binding
		switch item.Ref.Type {
		case "binding_id":
			i := slices.IndexFunc(s.bindings[trig], func(x binding) bool { return x.ID == item.Ref.Value })
			if i < 0 {
				apiError(w, http.StatusNotFound, "", "Binding "+item.Ref.Value+" not found")
				return
			}
			b = s.bindings[trig][i]
		case "action_id", "action_name":
			var a *action
			if item.Ref.Type == "action_id" {
				a = s.actions[item.Ref.Value]
			} else {
				a = s.actionByName(item.Ref.Value)
			}
			if a == nil {
				apiError(w, http.StatusNotFound, "", "Action "+item.Ref.Value+" not found")
				return
			}
			if a.Deployed == nil {
				apiError(w, http.StatusBadRequest, "", "Action "+a.Name+" has no deployed version and cannot be bound")
				return
			}
			if !slices.ContainsFunc(a.Triggers, func(t trigger) bool { return t.ID == trig }) {
				apiError(w, http.StatusBadRequest, "", "Action "+a.Name+" does not support trigger "+trig)
				return
			}
			b = binding{ID: s.id("bnd"), ActionID: a.ID}
		default:
			apiError(w, http.StatusBadRequest, "invalid_body", "Payload validation error: unknown ref type "+item.Ref.Type)
			return
		}
		if item.DisplayName != "" {
			b.DisplayName = item.DisplayName
		}
		if slices.ContainsFunc(next, func(x binding) bool { return x.ActionID == b.ActionID }) {
			apiError(w, http.StatusBadRequest, "", "An action can be bound to a trigger only once")
			return
		}
		next = append(next, b)
	}
	s.bindings[trig] = next
	out := []map[string]any{}
	for _, b := range next {
		out = append(out, s.bindingView(trig, b))
	}
	writeJSON(w, http.StatusOK, map[string]any{"bindings": out})
}
