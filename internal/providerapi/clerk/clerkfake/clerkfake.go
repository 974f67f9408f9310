// Package clerkfake is an in-process stand-in for Clerk's Backend API JWT-template endpoints, for
// tests. It checks what Clerk checks (the bearer secret key, required fields on create and
// update, the lifetime and clock-skew bounds, a signing algorithm and key whenever
// custom_signing_key is true, unique names, no reserved claims), never returns a signing key,
// and moves updated_at forward on every write. Tests can edit a template as the dashboard would,
// inject 429s and other failures, count requests, and mint the token Clerk would issue for a
// template.
package clerkfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/testutil/insforgejwt"
)

// Path is the collection path; a template is Path + "/" + id.
const Path = "/v1/jwt_templates"

// Bounds Clerk enforces.
const (
	MinLifetime         = 30
	MaxLifetime         = 315360000
	MaxAllowedClockSkew = 300
	defaultLifetime     = 60
	defaultSkew         = 5
	defaultListLimit    = 10
	maxListLimit        = 500
)

// reserved are the claims Clerk sets itself.
var reserved = []string{"azp", "exp", "iat", "iss", "jti", "nbf", "sub"}

// algorithms are the accepted signing_algorithm values.
var algorithms = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}

// Config configures the fake.
type Config struct {
	// SecretKey is the only bearer accepted.
	SecretKey string
	// Issuer is the iss of minted tokens (Clerk: the Frontend API URL).
	Issuer string
	// AuthorizedParty is the azp of minted tokens (the app's origin).
	AuthorizedParty string
	// Now is the server clock; nil means time.Now.
	Now func() time.Time
	// BareList answers lists with a bare array even when paginated=true (the shape Clerk's spec
	// gives; its Go SDK expects {data,total_count}).
	BareList bool
	// EchoSecrets makes error messages quote the bearer and submitted signing key, which Clerk
	// does not do: it lets a test prove the client redacts them anyway.
	EchoSecrets bool
}

// Template is a stored template, as a test sees it (with its signing key).
type Template struct {
	ID               string
	Name             string
	Claims           map[string]any
	Lifetime         int64
	AllowedClockSkew int64
	CustomSigningKey bool
	SigningAlgorithm string
	SigningKey       []byte
	CreatedAt        int64
	UpdatedAt        int64
}

// Server is the fake Clerk BAPI.
type Server struct {
	*httptest.Server
	cfg Config

	mu        sync.Mutex
	templates map[string]*Template // by id
	order     []string             // ids in creation order
	seq       int
	lastWrite int64
	counts    map[string]int // "METHOD /path"
	failures  []failure
	emails    map[string]string
	header    http.Header // of the last request
}

type failure struct {
	status     int
	retryAfter time.Duration
}

// New starts the fake and stops it when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "https://clerk.fake.invalid"
	}
	if cfg.AuthorizedParty == "" {
		cfg.AuthorizedParty = "http://localhost:3000"
	}
	s := &Server{cfg: cfg, templates: map[string]*Template{}, counts: map[string]int{}, emails: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// RateLimitNext answers the next n requests 429 with Retry-After (whole seconds, rounded up).
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{status: http.StatusTooManyRequests, retryAfter: retryAfter})
	}
}

// FailNext answers the next n requests with status (for example 402) and a Clerk error body.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{status: status})
	}
}

// Count returns how many requests arrived for method and path (no query).
func (s *Server) Count(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method+" "+path]
}

// Writes returns how many POST, PATCH and DELETE requests arrived.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.counts {
		if !strings.HasPrefix(k, http.MethodGet+" ") {
			n += v
		}
	}
	return n
}

// LastHeader returns the headers of the last request.
func (s *Server) LastHeader() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.header.Clone()
}

// Template returns a copy of the template named name.
func (s *Server) Template(name string) (Template, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.byName(name)
	if t == nil {
		return Template{}, false
	}
	return copyTemplate(t), true
}

// SigningKey returns the signing key of the template named name (nil if none).
func (s *Server) SigningKey(name string) []byte {
	t, _ := s.Template(name)
	return t.SigningKey
}

// EditOutOfBand changes a template as a dashboard edit would: mutate gets a copy to change, and
// updated_at moves forward. It panics if there is no such template.
func (s *Server) EditOutOfBand(name string, mutate func(*Template)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.byName(name)
	if t == nil {
		panic("clerkfake: no template " + name)
	}
	c := copyTemplate(t)
	mutate(&c)
	c.ID, c.CreatedAt, c.UpdatedAt = t.ID, t.CreatedAt, s.tick()
	*t = c
}

// Create stores a template directly, as if a user had made it in the dashboard.
func (s *Server) Create(tmpl Template) Template {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	c := copyTemplate(&tmpl)
	c.ID = fmt.Sprintf("jtmp_%06d", s.seq)
	c.CreatedAt = s.tick()
	c.UpdatedAt = c.CreatedAt
	s.templates[c.ID] = &c
	s.order = append(s.order, c.ID)
	return copyTemplate(&c)
}

// SetUserEmail sets the primary email address {{user.primary_email_address}} resolves to.
func (s *Server) SetUserEmail(userID, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emails[userID] = email
}

// MintTemplateToken issues the token Clerk would for userID and the template named name, which
// must use a custom HS256 key: the template's claims (shortcodes resolved) plus Clerk's default
// claims azp, exp, iat, iss, jti, nbf and sub, which a template cannot override.
func (s *Server) MintTemplateToken(name, userID string) (string, error) {
	s.mu.Lock()
	t := s.byName(name)
	var c Template
	if t != nil {
		c = copyTemplate(t)
	}
	email, hasEmail := s.emails[userID]
	s.mu.Unlock()
	switch {
	case t == nil:
		return "", fmt.Errorf("no template %q", name)
	case !c.CustomSigningKey || c.SigningAlgorithm != "HS256":
		return "", fmt.Errorf("template %q is not signed with a custom HS256 key", name)
	}
	claims := map[string]any{}
	for k, v := range c.Claims {
		if v == "{{user.primary_email_address}}" {
			if !hasEmail {
				v = nil
			} else {
				v = email
			}
		}
		claims[k] = v
	}
	now := s.cfg.Now().Unix()
	jti := make([]byte, 10)
	_, _ = rand.Read(jti)
	claims["azp"] = s.cfg.AuthorizedParty
	claims["exp"] = now + c.Lifetime
	claims["iat"] = now
	claims["iss"] = s.cfg.Issuer
	claims["jti"] = hex.EncodeToString(jti)
	claims["nbf"] = now - c.AllowedClockSkew
	claims["sub"] = userID
	return insforgejwt.Sign(c.SigningKey, claims)
}

// tick returns a write time in ms, strictly after the previous one. Callers hold mu.
func (s *Server) tick() int64 {
	now := s.cfg.Now().UnixMilli()
	if now <= s.lastWrite {
		now = s.lastWrite + 1
	}
	s.lastWrite = now
	return now
}

func (s *Server) byName(name string) *Template {
	for _, id := range s.order {
		if t := s.templates[id]; t != nil && t.Name == name {
			return t
		}
	}
	return nil
}

func copyTemplate(t *Template) Template {
	c := *t
	c.SigningKey = slices.Clone(t.SigningKey)
	if t.Claims != nil {
		raw, _ := json.Marshal(t.Claims)
		c.Claims = nil
		_ = json.Unmarshal(raw, &c.Claims)
	}
	return c
}

// clerkError is one entry of Clerk's error body.
type clerkError struct {
	Message     string `json:"message"`
	LongMessage string `json:"long_message"`
	Code        string `json:"code"`
}

func writeErrors(w http.ResponseWriter, status int, errs ...clerkError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": errs, "clerk_trace_id": "trace_fake"})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[r.Method+" "+r.URL.Path]++
	s.header = r.Header.Clone()
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		if f.status == http.StatusTooManyRequests {
			secs := int64((f.retryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			writeErrors(w, f.status, clerkError{"Too many requests", "Too many requests, retry later", "too_many_requests"})
			return
		}
		writeErrors(w, f.status, clerkError{http.StatusText(f.status), "Injected failure", "injected"})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.cfg.SecretKey || s.cfg.SecretKey == "" {
		long := "Unable to authenticate the request, you need to supply an active API key"
		if s.cfg.EchoSecrets {
			long += ": got " + r.Header.Get("Authorization")
		}
		writeErrors(w, http.StatusUnauthorized, clerkError{"Invalid authentication", long, "authentication_invalid"})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, Path)
	switch {
	case !ok:
		notFound(w)
	case rest == "" || rest == "/":
		switch r.Method {
		case http.MethodGet:
			s.list(w, r)
		case http.MethodPost:
			s.write(w, r, nil)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	default:
		t := s.templates[strings.TrimPrefix(rest, "/")]
		if t == nil {
			notFound(w)
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, view(t))
		case http.MethodPatch:
			s.write(w, r, t)
		case http.MethodDelete:
			delete(s.templates, t.ID)
			s.order = slices.DeleteFunc(s.order, func(id string) bool { return id == t.ID })
			writeJSON(w, map[string]any{"object": "jwt_template", "id": t.ID, "deleted": true})
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}
}

func notFound(w http.ResponseWriter) {
	writeErrors(w, http.StatusNotFound, clerkError{"not found", "Resource not found", "resource_not_found"})
}

// view is the JWTTemplate object Clerk returns: no signing key.
func view(t *Template) map[string]any {
	c := copyTemplate(t)
	return map[string]any{
		"object": "jwt_template", "id": c.ID, "name": c.Name, "claims": c.Claims,
		"lifetime": c.Lifetime, "allowed_clock_skew": c.AllowedClockSkew,
		"custom_signing_key": c.CustomSigningKey, "signing_algorithm": c.SigningAlgorithm,
		"created_at": c.CreatedAt, "updated_at": c.UpdatedAt,
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset := defaultListLimit, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			writeErrors(w, http.StatusUnprocessableEntity, clerkError{"is invalid", "limit must be between 1 and 500", "form_param_value_invalid"})
			return
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeErrors(w, http.StatusUnprocessableEntity, clerkError{"is invalid", "offset must be 0 or more", "form_param_value_invalid"})
			return
		}
		offset = n
	}
	all := make([]map[string]any, 0, len(s.order))
	for _, id := range s.order {
		all = append(all, view(s.templates[id]))
	}
	page := all[min(offset, len(all)):min(offset+limit, len(all))]
	if q.Get("paginated") == "true" && !s.cfg.BareList {
		writeJSON(w, map[string]any{"data": page, "total_count": len(all)})
		return
	}
	writeJSON(w, page)
}

// write handles create (cur nil) and update: the same body, name and claims required on both.
func (s *Server) write(w http.ResponseWriter, r *http.Request, cur *Template) {
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeErrors(w, http.StatusBadRequest, clerkError{"malformed request", "The request body is not valid JSON", "malformed_request"})
		return
	}
	var submittedKey string
	if raw, ok := body["signing_key"]; ok {
		_ = json.Unmarshal(raw, &submittedKey)
	}
	fail := func(status int, e clerkError) {
		if s.cfg.EchoSecrets && submittedKey != "" {
			e.LongMessage += " (signing_key " + submittedKey + ")"
		}
		writeErrors(w, status, e)
	}
	invalid := func(param, long string) {
		fail(http.StatusUnprocessableEntity, clerkError{param + " is invalid", long, "form_param_value_invalid"})
	}
	known := []string{"name", "claims", "lifetime", "allowed_clock_skew", "custom_signing_key", "signing_algorithm", "signing_key"}
	for k := range body {
		if !slices.Contains(known, k) {
			fail(http.StatusUnprocessableEntity, clerkError{k + " is unknown", "Unknown parameter " + k, "form_param_unknown"})
			return
		}
	}
	var next Template
	if cur != nil {
		next = copyTemplate(cur)
	} else {
		next = Template{Lifetime: defaultLifetime, AllowedClockSkew: defaultSkew}
	}
	if raw, ok := body["name"]; !ok || json.Unmarshal(raw, &next.Name) != nil || next.Name == "" {
		fail(http.StatusUnprocessableEntity, clerkError{"name is missing", "name is required", "form_param_missing"})
		return
	}
	raw, ok := body["claims"]
	next.Claims = nil
	if !ok || json.Unmarshal(raw, &next.Claims) != nil || next.Claims == nil {
		fail(http.StatusUnprocessableEntity, clerkError{"claims is missing", "claims is required and must be an object", "form_param_missing"})
		return
	}
	for _, c := range reserved {
		if _, ok := next.Claims[c]; ok {
			invalid("claims", "claims must not contain the reserved claim "+c)
			return
		}
	}
	if !optInt(body, "lifetime", &next.Lifetime) || next.Lifetime < MinLifetime || next.Lifetime > MaxLifetime {
		invalid("lifetime", "lifetime must be between 30 and 315360000")
		return
	}
	if !optInt(body, "allowed_clock_skew", &next.AllowedClockSkew) || next.AllowedClockSkew < 0 || next.AllowedClockSkew > MaxAllowedClockSkew {
		invalid("allowed_clock_skew", "allowed_clock_skew must be between 0 and 300")
		return
	}
	custom := false
	if raw, ok := body["custom_signing_key"]; ok && json.Unmarshal(raw, &custom) != nil {
		invalid("custom_signing_key", "custom_signing_key must be a boolean")
		return
	}
	next.CustomSigningKey = custom
	next.SigningAlgorithm, next.SigningKey = "", nil
	if custom {
		var alg string
		if raw, ok := body["signing_algorithm"]; !ok || json.Unmarshal(raw, &alg) != nil || alg == "" {
			fail(http.StatusUnprocessableEntity, clerkError{"signing_algorithm is missing", "signing_algorithm is required when custom_signing_key is true", "form_param_missing"})
			return
		}
		if !slices.Contains(algorithms, alg) {
			invalid("signing_algorithm", "signing_algorithm "+alg+" is not supported")
			return
		}
		if submittedKey == "" {
			fail(http.StatusUnprocessableEntity, clerkError{"signing_key is missing", "signing_key is required when custom_signing_key is true", "form_param_missing"})
			return
		}
		next.SigningAlgorithm, next.SigningKey = alg, []byte(submittedKey)
	}
	for _, id := range s.order {
		if t := s.templates[id]; t.Name == next.Name && (cur == nil || t.ID != cur.ID) {
			fail(http.StatusUnprocessableEntity, clerkError{"name is taken", "A JWT template named " + next.Name + " already exists", "form_identifier_exists"})
			return
		}
	}
	next.UpdatedAt = s.tick()
	if cur == nil {
		s.seq++
		next.ID = fmt.Sprintf("jtmp_%06d", s.seq)
		next.CreatedAt = next.UpdatedAt
		s.templates[next.ID] = &next
		s.order = append(s.order, next.ID)
	} else {
		*cur = next
	}
	writeJSON(w, view(&next))
}

// optInt decodes an optional, nullable integer field into dst (absent or null: dst unchanged).
func optInt(body map[string]json.RawMessage, name string, dst *int64) bool {
	raw, ok := body[name]
	if !ok || string(raw) == "null" {
		return true
	}
	return json.Unmarshal(raw, dst) == nil
}
