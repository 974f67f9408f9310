package tokenexchange

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

// RFC 8693 identifiers.
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
)

// MaxBodyBytes caps a request body: a form with one token of MaxTokenBytes and change.
const MaxBodyBytes = 64 << 10

// retryAfterSeconds is what a 503 asks clients to wait: a signing key or a JWKS comes back in
// seconds (the key file is polled every 2 s, a JWKS refetched every minimum interval).
const retryAfterSeconds = "5"

var subjectTokenTypes = []string{TokenTypeJWT, TokenTypeAccessToken, TokenTypeIDToken}

// Response is the JSON of a successful exchange (RFC 8693 §2.2.1).
type Response struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
}

// ErrorResponse is the JSON of a refusal (RFC 6749 §5.2).
type ErrorResponse struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

type handler struct {
	e         *Exchanger
	origins   []string
	anyOrigin bool
	maxAge    string
	allowHdrs string
}

// Handler serves PathToken and PathExchange with the configured CORS policy.
func (e *Exchanger) Handler() http.Handler {
	c := e.cfg.CORS
	return &handler{
		e: e, origins: c.AllowedOrigins, anyOrigin: slices.Contains(c.AllowedOrigins, "*"),
		maxAge:    strconv.Itoa(int(c.MaxAge.Seconds())),
		allowHdrs: "Authorization, Content-Type",
	}
}

// endpoint is which of the two paths a request came to: they answer token errors differently.
type endpoint int

const (
	tokenEndpoint    endpoint = iota // RFC 8693: 400 invalid_grant
	exchangeEndpoint                 // bearer: 401 invalid_token (RFC 6750 §3.1)
)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	// RFC 6749 §5.1: token responses must not be cached. Vary on every answer, so that a cache
	// never hands one origin's CORS answer to another.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Pragma", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Add("Vary", "Origin")
	var (
		methods []string
		ep      endpoint
	)
	switch r.URL.Path {
	case config.PathToken:
		methods, ep = []string{http.MethodPost}, tokenEndpoint
	case config.PathExchange:
		methods, ep = []string{http.MethodGet, http.MethodPost}, exchangeEndpoint
	default:
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "not_found"})
		return
	}
	origin := r.Header.Get("Origin")
	allowed := origin != "" && h.originAllowed(origin)
	if r.Method == http.MethodOptions {
		h.preflight(w, r, origin, allowed, methods)
		return
	}
	if allowed {
		hdr.Set("Access-Control-Allow-Origin", h.allowOrigin(origin))
	}
	if !slices.Contains(methods, r.Method) {
		hdr.Set("Allow", strings.Join(append(methods, http.MethodOptions), ", "))
		writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{Error: "invalid_request", ErrorDescription: "method not allowed"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	var (
		token string
		err   error
	)
	if ep == tokenEndpoint {
		token, err = tokenRequest(r)
	} else {
		token, err = bearer(r)
	}
	if err != nil {
		h.refuse(w, ep, err)
		return
	}
	res, err := h.e.Exchange(r.Context(), token)
	if err != nil {
		h.refuse(w, ep, err)
		return
	}
	writeJSON(w, http.StatusOK, Response{
		AccessToken: res.AccessToken, IssuedTokenType: TokenTypeJWT, TokenType: "Bearer", ExpiresIn: res.ExpiresIn,
	})
}

func (h *handler) originAllowed(origin string) bool {
	return h.anyOrigin || slices.Contains(h.origins, origin)
}

func (h *handler) allowOrigin(origin string) string {
	if h.anyOrigin {
		return "*"
	}
	return origin
}

// preflight answers a CORS preflight: with the CORS headers for an allowed origin asking for an
// allowed method, 403 without them otherwise. No credentials are ever allowed: the token is in
// the request, never in a cookie.
func (h *handler) preflight(w http.ResponseWriter, r *http.Request, origin string, allowed bool, methods []string) {
	hdr := w.Header()
	hdr.Set("Allow", strings.Join(append(methods, http.MethodOptions), ", "))
	if origin == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !allowed || !slices.Contains(methods, r.Header.Get("Access-Control-Request-Method")) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	hdr.Set("Access-Control-Allow-Origin", h.allowOrigin(origin))
	hdr.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	hdr.Set("Access-Control-Allow-Headers", h.allowHdrs)
	hdr.Set("Access-Control-Max-Age", h.maxAge)
	w.WriteHeader(http.StatusNoContent)
}

// tokenRequest reads an RFC 8693 form from the body (parameters in the query are ignored: RFC
// 6749 §3.2 puts them in the body).
func tokenRequest(r *http.Request) (string, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", fail(ReasonInvalidRequest)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return "", fail(ReasonBodyTooLarge)
		}
		return "", fail(ReasonInvalidRequest)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", fail(ReasonInvalidRequest)
	}
	for _, v := range form {
		if len(v) > 1 { // RFC 6749 §3.2: parameters must not repeat
			return "", fail(ReasonInvalidRequest)
		}
	}
	switch form.Get("grant_type") {
	case GrantTypeTokenExchange:
	case "":
		return "", fail(ReasonInvalidRequest)
	default:
		return "", fail(ReasonUnsupportedGrantType)
	}
	token := form.Get("subject_token")
	if token == "" {
		return "", fail(ReasonMissingToken)
	}
	if len(token) > MaxTokenBytes {
		return "", fail(ReasonTokenTooLarge)
	}
	if !slices.Contains(subjectTokenTypes, form.Get("subject_token_type")) {
		return "", fail(ReasonUnsupportedTokenType)
	}
	// Delegation (an actor) is not supported, and only a JWT can be issued.
	if form.Has("actor_token") || form.Has("actor_token_type") {
		return "", fail(ReasonInvalidRequest)
	}
	if rt := form.Get("requested_token_type"); rt != "" && rt != TokenTypeJWT && rt != TokenTypeAccessToken {
		return "", fail(ReasonInvalidRequest)
	}
	return token, nil
}

// bearer reads `Authorization: Bearer <token>` (RFC 6750 §2.1).
func bearer(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return "", fail(ReasonMissingToken)
	}
	if len(vals) > 1 {
		return "", fail(ReasonInvalidRequest)
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fail(ReasonInvalidRequest)
	}
	token = strings.TrimSpace(token)
	switch {
	case token == "":
		return "", fail(ReasonMissingToken)
	case len(token) > MaxTokenBytes:
		return "", fail(ReasonTokenTooLarge)
	}
	return token, nil
}

// refuse writes an RFC 6749 error. The description is the reason's fixed text.
func (h *handler) refuse(w http.ResponseWriter, ep endpoint, err error) {
	var xe *Error
	if !errors.As(err, &xe) {
		xe = &Error{Reason: ReasonInvalidRequest}
	}
	if !xe.Reason.fromExchange() {
		h.e.metrics.rejected(xe.Reason)
	}
	status, code := http.StatusBadRequest, "invalid_request"
	switch r := xe.Reason; {
	case r.Unavailable():
		status, code = http.StatusServiceUnavailable, "temporarily_unavailable"
		w.Header().Set("Retry-After", retryAfterSeconds)
	case r == ReasonBodyTooLarge:
		status = http.StatusRequestEntityTooLarge
	case r == ReasonUnsupportedGrantType:
		code = "unsupported_grant_type"
	case r == ReasonMissingToken && ep == exchangeEndpoint:
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer`)
	case r == ReasonInvalidRequest, r == ReasonUnsupportedTokenType, r == ReasonMissingToken, r == ReasonTokenTooLarge:
	case ep == exchangeEndpoint:
		status, code = http.StatusUnauthorized, "invalid_token"
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	default:
		code = "invalid_grant"
	}
	writeJSON(w, status, ErrorResponse{Error: code, ErrorDescription: xe.Error()})
}

// fromExchange: reasons Exchanger.Exchange produces (and counts); the others are the handler's.
func (r Reason) fromExchange() bool {
	switch r {
	case ReasonInvalidRequest, ReasonBodyTooLarge, ReasonUnsupportedGrantType, ReasonUnsupportedTokenType:
		return false
	case ReasonMissingToken, ReasonTokenTooLarge:
		return false // the handler checks these before calling Exchange
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
