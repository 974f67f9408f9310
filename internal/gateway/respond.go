package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/insforge/integrations-operator/internal/x402"
)

// exposedHeaders are readable by browser clients on priced paths.
var exposedHeaders = strings.Join([]string{
	x402.HeaderPaymentRequired, x402.HeaderPaymentResponse, x402.HeaderXPaymentResponse, "Retry-After",
}, ", ")

// allowedHeaders may be sent by browser clients on priced paths.
var allowedHeaders = strings.Join([]string{
	x402.HeaderPaymentSignature, x402.HeaderXPayment, "Content-Type", "Authorization", "Accept",
}, ", ")

// errorBody is the JSON body of every non-upstream answer. On 402 and 400 it is the v2
// challenge (x402Version, error, resource, accepts) plus reason and message.
type errorBody struct {
	X402Version int                        `json:"x402Version"`
	Error       string                     `json:"error"`
	Reason      string                     `json:"reason,omitempty"`
	Resource    *x402.ResourceInfo         `json:"resource,omitempty"`
	Accepts     []x402.PaymentRequirements `json:"accepts,omitempty"`
	Transaction string                     `json:"transaction,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	raw, _ := json.Marshal(body) // plain structs of strings: cannot fail
	writeRawJSON(w, status, raw)
}

// writeRawJSON writes raw, encoded JSON, and a newline.
func writeRawJSON(w http.ResponseWriter, status int, raw []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(raw)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(raw[:len(raw):len(raw)], '\n'))
}

func writeError(w http.ResponseWriter, status int, reason, msg string) {
	writeJSON(w, status, errorBody{X402Version: x402.Version2, Error: msg, Reason: reason})
}

func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(max(1, d.Round(time.Second)/time.Second))))
}

// cors marks a priced-path answer readable by browsers.
func (h *Handler) cors(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", h.cfg.Gateway.CORSAllowOrigin)
	hd.Set("Access-Control-Expose-Headers", exposedHeaders)
	if h.cfg.Gateway.CORSAllowOrigin != "*" {
		hd.Add("Vary", "Origin")
	}
}

// preflight answers a CORS preflight for a priced path.
func (h *Handler) preflight(w http.ResponseWriter, method string) {
	h.cors(w)
	hd := w.Header()
	hd.Set("Access-Control-Allow-Methods", method+", OPTIONS")
	hd.Set("Access-Control-Allow-Headers", allowedHeaders)
	hd.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// resourceInfo describes the resource a request asks for, as the client reached it.
func (h *Handler) resourceInfo(r *http.Request, rt *route) *x402.ResourceInfo {
	return &x402.ResourceInfo{URL: h.resourceURL(r), Description: rt.cfg.Description, MimeType: rt.cfg.MimeType}
}

// resourceURL rebuilds the URL the client used; behind a proxy that means X-Forwarded-Proto,
// -Host and -Prefix (when trusted).
func (h *Handler) resourceURL(r *http.Request) string {
	scheme, host, prefix := "http", r.Host, ""
	if r.TLS != nil {
		scheme = "https"
	}
	if h.cfg.Gateway.TrustsForwarded() {
		if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if fh := firstValue(r.Header.Get("X-Forwarded-Host")); fh != "" && safeToken(fh, false) {
			host = fh
		}
		if fp := firstValue(r.Header.Get("X-Forwarded-Prefix")); strings.HasPrefix(fp, "/") && safeToken(fp, true) {
			prefix = strings.TrimSuffix(fp, "/")
		}
	}
	if !safeToken(host, false) {
		host = "invalid-host"
	}
	return scheme + "://" + host + prefix + r.URL.EscapedPath()
}

// firstValue is the first element of a comma-separated header (proxies append).
func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// safeToken accepts printable ASCII without spaces, quotes or angle brackets; slashes only
// when allowed (prefixes, not hosts).
func safeToken(s string, slash bool) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || (c == '/' && !slash) {
			return false
		}
	}
	return true
}

// challenge answers status (402, or 400 for a malformed payment) with a fresh v2 challenge in
// PAYMENT-REQUIRED and the JSON body.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, rt *route, status int, reason x402.Reason, msg string) {
	plain := status == http.StatusPaymentRequired && reason == "" && msg == msgPaymentRequired
	res := h.resourceInfo(r, rt)
	if plain {
		if c, ok := rt.challenges.Load(res.URL); ok {
			c := c.(*encodedChallenge)
			w.Header().Set(x402.HeaderPaymentRequired, c.header)
			writeRawJSON(w, status, c.body)
			return
		}
	}
	var c encodedChallenge
	pr := x402.PaymentRequired{X402Version: x402.Version2, Error: msg, Resource: res, Accepts: rt.offer}
	if enc, err := x402.EncodePaymentRequired(pr); err == nil {
		c.header = enc
		w.Header().Set(x402.HeaderPaymentRequired, enc)
	}
	c.body, _ = json.Marshal(errorBody{X402Version: x402.Version2, Error: msg, Reason: string(reason), Resource: res, Accepts: rt.offer})
	if plain && c.header != "" && rt.cachedChallenges.Add(1) <= maxCachedChallenges {
		rt.challenges.Store(res.URL, &c)
	}
	writeRawJSON(w, status, c.body)
}

// msgPaymentRequired is the message of the challenge to a request without a payment.
const msgPaymentRequired = "Payment required"

// encodedChallenge is the challenge to a request without a payment, encoded. Within a route it
// differs between requests only in the resource URL, so it is encoded once per URL: JSON and
// base64 were about two thirds of the gateway's CPU per challenge. A route keeps at most
// maxCachedChallenges of them (a client sending many Host headers cannot grow the gateway's
// memory); the rest are encoded for each request.
type encodedChallenge struct {
	header string
	body   []byte
}

const maxCachedChallenges = 256

// receipt returns the PAYMENT-RESPONSE (or, for v1 payments, X-PAYMENT-RESPONSE) header.
func receipt(version int, sr x402.SettleResponse) http.Header {
	if version == x402.Version1 {
		enc, err := x402.EncodeXPaymentResponse(x402.SettleResponseV1{
			Success: sr.Success, ErrorReason: sr.ErrorReason, Payer: sr.Payer, Transaction: sr.Transaction, Network: sr.Network,
		})
		if err != nil {
			return nil
		}
		return http.Header{x402.HeaderXPaymentResponse: {enc}}
	}
	enc, err := x402.EncodePaymentResponse(sr)
	if err != nil {
		return nil
	}
	return http.Header{x402.HeaderPaymentResponse: {enc}}
}

func setHeaders(w http.ResponseWriter, extra http.Header) {
	for k, v := range extra {
		w.Header()[k] = v
	}
}
