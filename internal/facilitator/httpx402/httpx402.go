// Package httpx402 is a client of any facilitator that implements the standard x402 HTTP API
// (POST {url}/verify, POST {url}/settle, GET {url}/supported), with optional static
// authentication headers (for example from a Kubernetes Secret).
package httpx402

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/httpcall"
	"github.com/insforge/integrations-operator/internal/x402"
)

// Defaults.
const (
	DefaultTimeout      = httpcall.DefaultTimeout
	DefaultMaxAttempts  = httpcall.DefaultMaxAttempts
	DefaultRetryBackoff = httpcall.DefaultRetryBackoff
	MaxResponseBytes    = httpcall.MaxResponseBytes
)

// Config configures a Client.
type Config struct {
	// URL is the facilitator base URL; paths /verify, /settle and /supported are appended.
	URL string
	// Headers are added to every request (API keys). Their values are never logged.
	Headers map[string]string
	// HTTPClient sends requests; nil means a client with DefaultTimeout.
	HTTPClient *http.Client
	// MaxAttempts bounds attempts of verify and supported (no side effects); settle is never
	// repeated. 0 means DefaultMaxAttempts.
	MaxAttempts int
	// RetryBackoff is the pause before the second attempt, doubled after each further one.
	RetryBackoff time.Duration
}

// String describes the configuration with header values redacted.
func (c Config) String() string {
	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	return fmt.Sprintf("httpx402.Config{URL: %s, Headers: %v (values redacted)}", c.URL, names)
}

// GoString keeps %#v from printing header values.
func (c Config) GoString() string { return c.String() }

// Client is a standard x402 facilitator client. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http httpcall.Caller
}

var _ facilitator.Facilitator = (*Client)(nil)

// New returns a client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("httpx402: facilitator URL %q must be an absolute http(s) URL", cfg.URL)
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	headers := cfg.Headers
	return &Client{cfg: cfg, http: httpcall.Caller{
		Name: "httpx402", BaseURL: cfg.URL, Client: cfg.HTTPClient,
		MaxAttempts: cfg.MaxAttempts, RetryBackoff: cfg.RetryBackoff,
		Authorize: func(req *http.Request, _ string, _ []byte) {
			for k, v := range headers {
				req.Header.Set(k, v)
			}
		},
	}}, nil
}

// String describes the client without secrets.
func (c *Client) String() string { return "x402 facilitator " + c.cfg.URL }

// HTTPError is a non-success HTTP answer that carries no usable x402 response.
type HTTPError struct {
	Status int
	Body   string // first bytes of the body, for diagnosis
}

// Error implements error.
func (e *HTTPError) Error() string { return fmt.Sprintf("httpx402: HTTP %d: %s", e.Status, e.Body) }

func snippet(b []byte) string {
	const n = 200
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

func requestBody(payment x402.PaymentPayload, req x402.PaymentRequirements) ([]byte, error) {
	version := payment.X402Version
	if version == 0 {
		version = x402.Version2
	}
	return json.Marshal(x402.FacilitatorRequest{X402Version: version, PaymentPayload: payment, PaymentRequirements: req})
}

// DecodeVerifyResponse decodes a /verify body; isValid is required.
func DecodeVerifyResponse(body []byte) (x402.VerifyResponse, error) {
	var v x402.VerifyResponse
	if err := x402.DecodeObject(body, "verify response", &v, "isValid"); err != nil {
		return x402.VerifyResponse{}, err
	}
	return v, nil
}

// DecodeSettleResponse decodes a /settle body; success, transaction and network are required.
func DecodeSettleResponse(body []byte) (x402.SettleResponse, error) {
	var s x402.SettleResponse
	if err := x402.DecodeObject(body, "settle response", &s, "success", "transaction", "network"); err != nil {
		return x402.SettleResponse{}, err
	}
	return s, nil
}

// DecodeSupportedResponse decodes a /supported body; kinds is required.
func DecodeSupportedResponse(body []byte) (x402.SupportedResponse, error) {
	var s x402.SupportedResponse
	if err := x402.DecodeObject(body, "supported response", &s, "kinds"); err != nil {
		return x402.SupportedResponse{}, err
	}
	return s, nil
}

// Verify implements facilitator.Facilitator. A non-200 answer that still carries a verify
// response (isValid false with a reason) is a verdict, as in the reference client.
func (c *Client) Verify(ctx context.Context, payment x402.PaymentPayload, req x402.PaymentRequirements) (facilitator.VerifyResult, error) {
	body, err := requestBody(payment, req)
	if err != nil {
		return facilitator.VerifyResult{}, fmt.Errorf("httpx402 verify: %w", err)
	}
	resp, err := c.http.DoIdempotent(ctx, http.MethodPost, "/verify", body)
	if err != nil {
		return facilitator.VerifyResult{}, err
	}
	v, decErr := DecodeVerifyResponse(resp.Body)
	switch {
	case resp.Status == http.StatusOK && decErr != nil:
		return facilitator.VerifyResult{}, fmt.Errorf("httpx402 verify: malformed response: %w", decErr)
	case resp.Status != http.StatusOK && (decErr != nil || v.IsValid):
		return facilitator.VerifyResult{}, fmt.Errorf("httpx402 verify: %w", &HTTPError{Status: resp.Status, Body: snippet(resp.Body)})
	}
	return facilitator.VerifyResultOf(v), nil
}

// Settle implements facilitator.Facilitator. It makes exactly one request.
func (c *Client) Settle(ctx context.Context, payment x402.PaymentPayload, req x402.PaymentRequirements) (facilitator.SettleResult, error) {
	body, err := requestBody(payment, req)
	if err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("httpx402 settle: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("httpx402 settle: %w", err)
	}
	resp, err := c.http.Do(ctx, http.MethodPost, "/settle", body)
	if err != nil {
		return httpcall.SettleFailure("httpx402", req.Network, err)
	}
	return settleOutcome(resp, req.Network)
}

// settleOutcome maps one settle exchange to a result; only definite answers are Settled or Failed.
func settleOutcome(resp httpcall.Response, network string) (facilitator.SettleResult, error) {
	s, decErr := DecodeSettleResponse(resp.Body)
	switch {
	case resp.Status >= 500:
		hash := ""
		if decErr == nil {
			hash = s.Transaction
		}
		return facilitator.Unknown(hash, network, "", "facilitator answered HTTP %d", resp.Status), nil
	case resp.Status == http.StatusOK && decErr != nil:
		return facilitator.Unknown("", network, "", "malformed settle response: %v", decErr), nil
	case resp.Status != http.StatusOK && (decErr != nil || s.Success):
		// A refusal without a settle response: the request was not acted on.
		return facilitator.SettleResult{}, fmt.Errorf("httpx402 settle refused: %w", &HTTPError{Status: resp.Status, Body: snippet(resp.Body)})
	}
	if s.Network != "" {
		network = s.Network
	}
	switch {
	case s.Success && s.Transaction != "":
		return facilitator.SettleResult{State: facilitator.StateSettled, TxHash: s.Transaction, Network: network, Payer: s.Payer}, nil
	case s.Success:
		return facilitator.Unknown("", network, s.Payer, "success without a transaction hash"), nil
	case s.ErrorReason == string(x402.ReasonSettlementPending):
		return facilitator.Unknown(s.Transaction, network, s.Payer, "facilitator reports the settlement pending"), nil
	default:
		reason := x402.Reason(s.ErrorReason)
		if reason == "" {
			reason = x402.ReasonUnexpectedSettleError
		}
		return facilitator.SettleResult{State: facilitator.StateFailed, TxHash: s.Transaction, Network: network, Payer: s.Payer, Reason: reason, Message: s.ErrorMessage}, nil
	}
}

// SettleStatus implements facilitator.Facilitator. The standard API has no status endpoint, so
// it always returns an error wrapping facilitator.ErrStatusUnsupported; resolve unknown
// outcomes on chain (onchain.Facilitator.SettleStatus).
func (c *Client) SettleStatus(context.Context, facilitator.SettleRef) (facilitator.SettleResult, error) {
	return facilitator.SettleResult{}, fmt.Errorf("httpx402: %w", facilitator.ErrStatusUnsupported)
}

// Supported implements facilitator.Facilitator.
func (c *Client) Supported(ctx context.Context) (x402.SupportedResponse, error) {
	resp, err := c.http.DoIdempotent(ctx, http.MethodGet, "/supported", nil)
	if err != nil {
		return x402.SupportedResponse{}, err
	}
	if resp.Status != http.StatusOK {
		return x402.SupportedResponse{}, fmt.Errorf("httpx402 supported: %w", &HTTPError{Status: resp.Status, Body: snippet(resp.Body)})
	}
	s, err := DecodeSupportedResponse(resp.Body)
	if err != nil {
		return x402.SupportedResponse{}, fmt.Errorf("httpx402 supported: %w", err)
	}
	return s, nil
}
