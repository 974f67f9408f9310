// Package httpx402 is a client of any facilitator that implements the standard x402 HTTP API
// (POST {url}/verify, POST {url}/settle, GET {url}/supported), with optional static
// authentication headers (for example from a Kubernetes Secret).
package httpx402

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/x402"
)

// Defaults.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxAttempts  = 3
	DefaultRetryBackoff = 250 * time.Millisecond
	MaxResponseBytes    = 1 << 20
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
type Client struct{ cfg Config }

var _ facilitator.Facilitator = (*Client)(nil)

// New returns a client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("httpx402: facilitator URL %q must be an absolute http(s) URL", cfg.URL)
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultTimeout}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	return &Client{cfg: cfg}, nil
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

type response struct {
	status int
	body   []byte
}

type transportError struct {
	err  error
	sent bool
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func (c *Client) do(ctx context.Context, method, path string, body []byte) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.URL+path, rd)
	if err != nil {
		return response{}, fmt.Errorf("httpx402: build request: %w", err)
	}
	for k, v := range c.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		var op *net.OpError
		sent := !(errors.As(err, &op) && op.Op == "dial")
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return response{}, &transportError{err: fmt.Errorf("httpx402: %s %s: %w", method, path, err), sent: sent}
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		return response{}, &transportError{err: fmt.Errorf("httpx402: read %s response: %w", path, err), sent: true}
	}
	return response{status: resp.StatusCode, body: data}, nil
}

func (c *Client) doIdempotent(ctx context.Context, method, path string, body []byte) (response, error) {
	backoff := c.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		resp, err := c.do(ctx, method, path, body)
		var te *transportError
		retry := (err != nil && errors.As(err, &te)) || (err == nil && (resp.status == http.StatusTooManyRequests || resp.status >= 500))
		if attempt >= c.cfg.MaxAttempts || !retry {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return resp, err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

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
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return x402.VerifyResponse{}, fmt.Errorf("verify response is not a JSON object: %w", err)
	}
	if _, ok := fields["isValid"]; !ok {
		return x402.VerifyResponse{}, errors.New("verify response lacks isValid")
	}
	var v x402.VerifyResponse
	if err := json.Unmarshal(body, &v); err != nil {
		return x402.VerifyResponse{}, fmt.Errorf("verify response: %w", err)
	}
	return v, nil
}

// DecodeSettleResponse decodes a /settle body; success, transaction and network are required.
func DecodeSettleResponse(body []byte) (x402.SettleResponse, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return x402.SettleResponse{}, fmt.Errorf("settle response is not a JSON object: %w", err)
	}
	for _, k := range []string{"success", "transaction", "network"} {
		if _, ok := fields[k]; !ok {
			return x402.SettleResponse{}, fmt.Errorf("settle response lacks %s", k)
		}
	}
	var s x402.SettleResponse
	if err := json.Unmarshal(body, &s); err != nil {
		return x402.SettleResponse{}, fmt.Errorf("settle response: %w", err)
	}
	return s, nil
}

// DecodeSupportedResponse decodes a /supported body; kinds is required.
func DecodeSupportedResponse(body []byte) (x402.SupportedResponse, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return x402.SupportedResponse{}, fmt.Errorf("supported response is not a JSON object: %w", err)
	}
	if _, ok := fields["kinds"]; !ok {
		return x402.SupportedResponse{}, errors.New("supported response lacks kinds")
	}
	var s x402.SupportedResponse
	if err := json.Unmarshal(body, &s); err != nil {
		return x402.SupportedResponse{}, fmt.Errorf("supported response: %w", err)
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
	resp, err := c.doIdempotent(ctx, http.MethodPost, "/verify", body)
	if err != nil {
		return facilitator.VerifyResult{}, err
	}
	v, decErr := DecodeVerifyResponse(resp.body)
	switch {
	case resp.status == http.StatusOK && decErr != nil:
		return facilitator.VerifyResult{}, fmt.Errorf("httpx402 verify: malformed response: %w", decErr)
	case resp.status != http.StatusOK && (decErr != nil || v.IsValid):
		return facilitator.VerifyResult{}, fmt.Errorf("httpx402 verify: %w", &HTTPError{Status: resp.status, Body: snippet(resp.body)})
	}
	res := facilitator.VerifyResult{Valid: v.IsValid, Payer: v.Payer, Message: v.InvalidMessage}
	if !v.IsValid {
		res.Reason = x402.Reason(v.InvalidReason)
		if res.Reason == "" {
			res.Reason = x402.ReasonUnexpectedVerifyError
		}
	}
	return res, nil
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
	resp, err := c.do(ctx, http.MethodPost, "/settle", body)
	if err != nil {
		var te *transportError
		if errors.As(err, &te) && !te.sent {
			return facilitator.SettleResult{}, fmt.Errorf("httpx402 settle not sent: %w", err)
		}
		return facilitator.Unknown("", req.Network, "", "settle response lost: %v", err), nil
	}
	return settleOutcome(resp, req.Network)
}

// settleOutcome maps one settle exchange to a result; only definite answers are Settled or Failed.
func settleOutcome(resp response, network string) (facilitator.SettleResult, error) {
	s, decErr := DecodeSettleResponse(resp.body)
	switch {
	case resp.status >= 500:
		hash := ""
		if decErr == nil {
			hash = s.Transaction
		}
		return facilitator.Unknown(hash, network, "", "facilitator answered HTTP %d", resp.status), nil
	case resp.status == http.StatusOK && decErr != nil:
		return facilitator.Unknown("", network, "", "malformed settle response: %v", decErr), nil
	case resp.status != http.StatusOK && (decErr != nil || s.Success):
		// A refusal without a settle response: the request was not acted on.
		return facilitator.SettleResult{}, fmt.Errorf("httpx402 settle refused: %w", &HTTPError{Status: resp.status, Body: snippet(resp.body)})
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
	resp, err := c.doIdempotent(ctx, http.MethodGet, "/supported", nil)
	if err != nil {
		return x402.SupportedResponse{}, err
	}
	if resp.status != http.StatusOK {
		return x402.SupportedResponse{}, fmt.Errorf("httpx402 supported: %w", &HTTPError{Status: resp.status, Body: snippet(resp.body)})
	}
	s, err := DecodeSupportedResponse(resp.body)
	if err != nil {
		return x402.SupportedResponse{}, fmt.Errorf("httpx402 supported: %w", err)
	}
	return s, nil
}
