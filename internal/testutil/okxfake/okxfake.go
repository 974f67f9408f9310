// Package okxfake is an in-process stand-in for OKX's x402 facilitator API for tests. It checks
// what OKX checks (the four OK-ACCESS-* headers, the HMAC-SHA256 signature over timestamp +
// METHOD + requestPath + body, a ±30 s timestamp window, the body shape) and delegates verify
// and settle to a real facilitator, normally the on-chain one on the simulated chain, so that an
// OKX-path test moves real (simulated) tokens. Faults can be injected per endpoint.
package okxfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/x402"
)

// Paths served (current API generation).
const (
	PathVerify       = "/api/v6/pay/x402/verify"
	PathSettle       = "/api/v6/pay/x402/settle"
	PathSettleStatus = "/api/v6/pay/x402/settle/status"
	PathSupported    = "/api/v6/pay/x402/supported"
)

// Window is the accepted clock difference of OK-ACCESS-TIMESTAMP.
const Window = 30 * time.Second

// Fault is an injected misbehaviour.
type Fault int

// Faults.
const (
	// FaultNone answers normally.
	FaultNone Fault = iota
	// FaultDropResponse processes the request (settle: moves the tokens), then closes the
	// connection without answering: the caller never learns the outcome.
	FaultDropResponse
	// FaultSettleTimeout processes a settle and answers status "timeout" with the tx hash, as
	// OKX does when a synchronous settle outlives its wait for the chain.
	FaultSettleTimeout
	// FaultServerError answers HTTP 500 (code 50026) without processing the request.
	FaultServerError
	// FaultServerErrorAfterProcessing processes the request, then answers HTTP 502.
	FaultServerErrorAfterProcessing
)

// Config configures the fake.
type Config struct {
	APIKey, SecretKey, Passphrase string
	// Backend does the real verify/settle work.
	Backend facilitator.Facilitator
	// Now is the server clock; nil means time.Now.
	Now func() time.Time
	// NumericCode sends "code": 0 instead of "code": "0" (OKX's SDK decodes numbers).
	NumericCode bool
}

// Request is a request the fake accepted for processing.
type Request struct {
	Method, Path string
	Timestamp    string // OK-ACCESS-TIMESTAMP
	Body         []byte
}

// Server is the fake OKX API.
type Server struct {
	*httptest.Server
	cfg Config

	mu       sync.Mutex
	faults   map[string][]Fault
	accepted []Request
	rejected map[string]int // OKX code → count
	settled  map[string]facilitator.SettleRef
}

// New starts the fake and stops it when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, faults: map[string][]Fault{}, rejected: map[string]int{}, settled: map[string]facilitator.SettleRef{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Inject queues faults for the next requests to path, one per request.
func (s *Server) Inject(path string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[path] = append(s.faults[path], faults...)
}

// Accepted returns the requests that passed authentication, in order.
func (s *Server) Accepted() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.accepted...)
}

// Count returns how many authenticated requests reached path.
func (s *Server) Count(path string) int {
	n := 0
	for _, r := range s.Accepted() {
		if r.Path == path {
			n++
		}
	}
	return n
}

// Rejections returns how many requests were refused with the OKX error code.
func (s *Server) Rejections(code string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected[code]
}

func (s *Server) nextFault(path string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[path]
	if len(q) == 0 {
		return FaultNone
	}
	s.faults[path] = q[1:]
	return q[0]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.fail(w, http.StatusBadRequest, "51000", "unreadable body")
		return
	}
	if code, msg := s.authenticate(r, body); code != "" {
		s.fail(w, http.StatusUnauthorized, code, msg)
		return
	}
	s.mu.Lock()
	s.accepted = append(s.accepted, Request{Method: r.Method, Path: r.URL.Path, Timestamp: r.Header.Get("OK-ACCESS-TIMESTAMP"), Body: body})
	s.mu.Unlock()

	fault := s.nextFault(r.URL.Path)
	if fault == FaultServerError {
		s.fail(w, http.StatusInternalServerError, "50026", "System error")
		return
	}
	var data any
	var status int
	switch {
	case r.Method == http.MethodPost && r.URL.Path == PathVerify:
		data, status = s.verify(r, body)
	case r.Method == http.MethodPost && r.URL.Path == PathSettle:
		data, status = s.settle(r, body, fault)
	case r.Method == http.MethodGet && r.URL.Path == PathSettleStatus:
		data, status = s.status(r)
	case r.Method == http.MethodGet && r.URL.Path == PathSupported:
		sup, err := s.cfg.Backend.Supported(r.Context())
		if err != nil {
			data, status = errorData("50026", err.Error()), http.StatusInternalServerError
		} else {
			data, status = sup, http.StatusOK
		}
	default:
		s.fail(w, http.StatusNotFound, "50000", "unknown endpoint")
		return
	}
	switch fault {
	case FaultDropResponse:
		hijackAndClose(w)
		return
	case FaultServerErrorAfterProcessing:
		s.fail(w, http.StatusBadGateway, "50026", "System error")
		return
	}
	if e, ok := data.(apiErr); ok {
		s.fail(w, status, e.code, e.msg)
		return
	}
	s.write(w, status, "0", "", data)
}

type apiErr struct{ code, msg string }

func errorData(code, msg string) apiErr { return apiErr{code, msg} }

// authenticate returns an OKX error code and message, or "" when the request is authentic.
func (s *Server) authenticate(r *http.Request, body []byte) (string, string) {
	key, sign, ts, pass := r.Header.Get("OK-ACCESS-KEY"), r.Header.Get("OK-ACCESS-SIGN"), r.Header.Get("OK-ACCESS-TIMESTAMP"), r.Header.Get("OK-ACCESS-PASSPHRASE")
	switch {
	case key == "":
		return "50103", "Request header OK-ACCESS-KEY cannot be empty"
	case pass == "":
		return "50104", "Request header OK-ACCESS-PASSPHRASE cannot be empty"
	case sign == "":
		return "50106", "Request header OK-ACCESS-SIGN cannot be empty"
	case ts == "":
		return "50107", "Request header OK-ACCESS-TIMESTAMP cannot be empty"
	case key != s.cfg.APIKey:
		return "50111", "Invalid OK-ACCESS-KEY"
	case pass != s.cfg.Passphrase:
		return "50105", "Request header OK-ACCESS-PASSPHRASE incorrect"
	}
	// ISO-8601 UTC with exactly three fractional digits and a Z.
	when, err := time.Parse("2006-01-02T15:04:05.000Z07:00", ts)
	if err != nil || len(ts) != len("2006-01-02T15:04:05.000Z") || !strings.HasSuffix(ts, "Z") {
		return "50112", "Invalid OK-ACCESS-TIMESTAMP"
	}
	if d := s.cfg.Now().Sub(when); d > Window || d < -Window {
		return "50112", "Timestamp request expired"
	}
	mac := hmac.New(sha256.New, []byte(s.cfg.SecretKey))
	mac.Write([]byte(ts + r.Method + r.URL.RequestURI() + string(body)))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sign)) {
		return "50113", "Invalid Sign"
	}
	return "", ""
}

// requestBody is the verify/settle body shape of the current API.
type requestBody struct {
	X402Version         int                      `json:"x402Version"`
	PaymentPayload      x402.PaymentPayload      `json:"paymentPayload"`
	PaymentRequirements x402.PaymentRequirements `json:"paymentRequirements"`
	SyncSettle          *bool                    `json:"syncSettle"`
}

func decodeBody(r *http.Request, body []byte) (requestBody, *apiErr) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return requestBody{}, &apiErr{"51000", "Content-Type must be application/json"}
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		return requestBody{}, &apiErr{"51000", "body is not a JSON object"}
	}
	for _, k := range []string{"x402Version", "paymentPayload", "paymentRequirements"} {
		if _, ok := keys[k]; !ok {
			return requestBody{}, &apiErr{"50014", "Parameter " + k + " cannot be empty"}
		}
	}
	var b requestBody
	if err := json.Unmarshal(body, &b); err != nil {
		return requestBody{}, &apiErr{"51000", "Parameter error: " + err.Error()}
	}
	if b.X402Version != 2 || b.PaymentPayload.X402Version != 2 {
		return requestBody{}, &apiErr{"51000", "x402Version must be 2"}
	}
	if !strings.HasPrefix(b.PaymentRequirements.Network, "eip155:") {
		return requestBody{}, &apiErr{"51000", "unsupported_chain"}
	}
	return b, nil
}

func (s *Server) verify(r *http.Request, body []byte) (any, int) {
	b, e := decodeBody(r, body)
	if e != nil {
		return *e, http.StatusBadRequest
	}
	v, err := s.cfg.Backend.Verify(r.Context(), b.PaymentPayload, b.PaymentRequirements)
	if err != nil {
		return errorData("50026", "System error"), http.StatusInternalServerError
	}
	return v.Response(), http.StatusOK
}

// settleData is OKX's settle data: the standard fields plus status.
func settleData(res facilitator.SettleResult, sync bool) x402.SettleResponse {
	d := res.Response()
	switch res.State {
	case facilitator.StateSettled:
		d.Status = "success"
		if !sync {
			d.Status = "pending"
		}
	case facilitator.StateUnknown:
		d.Success, d.ErrorReason, d.ErrorMessage, d.Status = true, "", "", "timeout"
	default:
		d.Status = "failed"
	}
	return d
}

func (s *Server) settle(r *http.Request, body []byte, fault Fault) (any, int) {
	b, e := decodeBody(r, body)
	if e != nil {
		return *e, http.StatusBadRequest
	}
	if b.SyncSettle == nil {
		return errorData("50014", "Parameter syncSettle cannot be empty"), http.StatusBadRequest
	}
	res, err := s.cfg.Backend.Settle(r.Context(), b.PaymentPayload, b.PaymentRequirements)
	if err != nil {
		return errorData("50026", "System error"), http.StatusInternalServerError
	}
	if res.TxHash != "" {
		ref, rerr := facilitator.RefFor(b.PaymentPayload, b.PaymentRequirements, res.TxHash)
		if rerr == nil {
			s.mu.Lock()
			s.settled[strings.ToLower(res.TxHash)] = ref
			s.mu.Unlock()
		}
	}
	d := settleData(res, *b.SyncSettle)
	if fault == FaultSettleTimeout && res.TxHash != "" {
		d.Success, d.Status = true, "timeout"
	}
	return d, http.StatusOK
}

func (s *Server) status(r *http.Request) (any, int) {
	hash := r.URL.Query().Get("txHash")
	if hash == "" {
		return errorData("50014", "Parameter txHash cannot be empty"), http.StatusBadRequest
	}
	s.mu.Lock()
	ref, ok := s.settled[strings.ToLower(hash)]
	s.mu.Unlock()
	if !ok {
		return x402.SettleResponse{Success: false, ErrorReason: "not_found", Transaction: hash, Status: "failed"}, http.StatusOK
	}
	res, err := s.cfg.Backend.SettleStatus(r.Context(), ref)
	if err != nil {
		return errorData("50026", "System error"), http.StatusInternalServerError
	}
	d := res.Response()
	switch res.State {
	case facilitator.StateSettled:
		d.Status = "success"
	case facilitator.StateUnknown:
		d.Status, d.ErrorReason = "pending", ""
	default:
		d.Status = "failed"
	}
	return d, http.StatusOK
}

func (s *Server) write(w http.ResponseWriter, status int, code, msg string, data any) {
	var c any = code
	if s.cfg.NumericCode {
		n := 0
		for _, ch := range code {
			n = n*10 + int(ch-'0')
		}
		c = n
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": c, "msg": msg, "data": data})
}

func (s *Server) fail(w http.ResponseWriter, status int, code, msg string) {
	s.mu.Lock()
	s.rejected[code]++
	s.mu.Unlock()
	s.write(w, status, code, msg, nil)
}

// hijackAndClose drops the connection without a response.
func hijackAndClose(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("okxfake: response writer cannot hijack")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		_ = conn.Close()
	}
}
