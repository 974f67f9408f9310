// Package okx is a client of OKX's x402 facilitator (Onchain OS payments API): verify, settle,
// settle status and supported, with OKX's HMAC request signing.
//
// It speaks the current API (/api/v6/pay/x402/*, x402Version 2, CAIP-2 networks) and, behind
// Config.Legacy, the older /api/v6/x402/* API (v1 bodies with chainIndex).
package okx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/httpcall"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/caip2"
)

// DefaultBaseURL is OKX's Web3 API host.
const DefaultBaseURL = "https://web3.okx.com"

// API paths.
const (
	PathPrefix       = "/api/v6/pay/x402"
	LegacyPathPrefix = "/api/v6/x402"
)

// Defaults.
const (
	DefaultTimeout      = httpcall.DefaultTimeout
	DefaultMaxAttempts  = httpcall.DefaultMaxAttempts
	DefaultRetryBackoff = httpcall.DefaultRetryBackoff
)

// Config configures a Client.
type Config struct {
	BaseURL     string // DefaultBaseURL when empty
	Credentials Credentials
	// HTTPClient sends requests; nil means a client with DefaultTimeout.
	HTTPClient *http.Client
	// Now returns the current time for request timestamps; nil means time.Now.
	Now func() time.Time
	// AsyncSettle sends syncSettle=false: OKX then answers after broadcast with status
	// "pending", which this client reports as an unknown outcome. The default (false) sends
	// syncSettle=true and waits for the chain.
	AsyncSettle bool
	// Legacy selects the /api/v6/x402 API with v1 bodies and chainIndex.
	Legacy bool
	// MaxAttempts bounds attempts of the calls that are safe to repeat (verify, supported,
	// settle status); settle is never repeated. 0 means DefaultMaxAttempts.
	MaxAttempts int
	// RetryBackoff is the pause before the second attempt, doubled after each further one.
	RetryBackoff time.Duration
}

// String describes the configuration with secrets redacted.
func (c Config) String() string {
	return fmt.Sprintf("okx.Config{BaseURL: %s, Credentials: %s, Legacy: %t}", c.BaseURL, c.Credentials, c.Legacy)
}

// GoString keeps %#v from printing the secrets.
func (c Config) GoString() string { return c.String() }

// Client is an OKX facilitator client. It is safe for concurrent use.
type Client struct {
	cfg    Config
	prefix string
	http   httpcall.Caller
}

var _ facilitator.Facilitator = (*Client)(nil)

// New returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.Credentials.APIKey == "" || cfg.Credentials.SecretKey == "" || cfg.Credentials.Passphrase == "" {
		return nil, errors.New("okx: API key, secret key and passphrase are required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if _, err := url.Parse(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("okx: base URL: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	prefix := PathPrefix
	if cfg.Legacy {
		prefix = LegacyPathPrefix
	}
	creds, now := cfg.Credentials, cfg.Now
	return &Client{cfg: cfg, prefix: prefix, http: httpcall.Caller{
		Name: "okx", BaseURL: cfg.BaseURL, Client: cfg.HTTPClient,
		MaxAttempts: cfg.MaxAttempts, RetryBackoff: cfg.RetryBackoff,
		// Each attempt signs the exact bytes it sends, with a fresh timestamp.
		Authorize: func(req *http.Request, requestPath string, body []byte) {
			ts := Timestamp(now())
			req.Header.Set(HeaderKey, creds.APIKey)
			req.Header.Set(HeaderPassphrase, creds.Passphrase)
			req.Header.Set(HeaderTimestamp, ts)
			req.Header.Set(HeaderSign, Signature(creds.SecretKey, ts, req.Method, requestPath, string(body)))
		},
	}}, nil
}

// String describes the client without secrets.
func (c *Client) String() string { return "okx facilitator " + c.cfg.BaseURL + c.prefix }

// APIError is an OKX error answer: a non-zero envelope code or an HTTP error status.
type APIError struct {
	HTTPStatus int
	Code       string
	Msg        string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("okx: HTTP %d, code %s: %s", e.HTTPStatus, e.Code, e.Msg)
}

// notProcessed lists codes with which OKX refuses a request before acting on it: rate limit,
// missing or bad parameters, and authentication failures.
var notProcessed = map[string]bool{
	"50011": true, "50014": true, "51000": true,
	"50103": true, "50104": true, "50105": true, "50106": true, "50107": true,
	"50111": true, "50112": true, "50113": true, "50114": true,
}

// envelopeOf checks the HTTP status and decodes the envelope of a successful exchange.
func envelopeOf(resp httpcall.Response) (Envelope, error) {
	env, decErr := DecodeEnvelope(resp.Body)
	if resp.Status != http.StatusOK {
		e := &APIError{HTTPStatus: resp.Status, Msg: http.StatusText(resp.Status)}
		if decErr == nil && env.Code != "0" {
			e.Code, e.Msg = env.Code, env.Msg
		}
		return Envelope{}, e
	}
	if decErr != nil {
		return Envelope{}, decErr
	}
	if !env.OK() {
		return Envelope{}, &APIError{HTTPStatus: resp.Status, Code: env.Code, Msg: env.Msg}
	}
	if env.Data == nil {
		return Envelope{}, errors.New("okx: response has no data")
	}
	return env, nil
}

// requestBody builds the verify/settle body for the configured API generation.
func (c *Client) requestBody(payment x402.PaymentPayload, req x402.PaymentRequirements, syncSettle *bool) ([]byte, error) {
	if !c.cfg.Legacy {
		body := struct {
			X402Version         int                      `json:"x402Version"`
			PaymentPayload      x402.PaymentPayload      `json:"paymentPayload"`
			PaymentRequirements x402.PaymentRequirements `json:"paymentRequirements"`
			SyncSettle          *bool                    `json:"syncSettle,omitempty"`
		}{x402.Version2, payment, req, syncSettle}
		return json.Marshal(body)
	}
	chain, err := caip2.Parse(req.Network)
	if err != nil {
		return nil, fmt.Errorf("okx legacy: %w", err)
	}
	resource := x402.ResourceInfo{}
	if payment.Resource != nil {
		resource = *payment.Resource
	}
	v1req := req.ToV1(resource)
	v1req.Network = "" // legacy API: chainIndex at the top level only
	body := struct {
		X402Version    int    `json:"x402Version"`
		ChainIndex     string `json:"chainIndex"`
		PaymentPayload struct {
			X402Version int             `json:"x402Version"`
			Scheme      string          `json:"scheme"`
			Payload     json.RawMessage `json:"payload"`
		} `json:"paymentPayload"`
		PaymentRequirements legacyRequirements `json:"paymentRequirements"`
		SyncSettle          *bool              `json:"syncSettle,omitempty"`
	}{X402Version: x402.Version1, ChainIndex: chain.Reference, SyncSettle: syncSettle}
	body.PaymentPayload.X402Version = x402.Version1
	body.PaymentPayload.Scheme = payment.Accepted.Scheme
	body.PaymentPayload.Payload = payment.Payload
	body.PaymentRequirements = legacyRequirements(v1req)
	return json.Marshal(body)
}

// legacyRequirements is PaymentRequirementsV1 without network.
type legacyRequirements x402.PaymentRequirementsV1

// MarshalJSON drops the network field.
func (l legacyRequirements) MarshalJSON() ([]byte, error) {
	raw, err := json.Marshal(x402.PaymentRequirementsV1(l))
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	delete(m, "network")
	return json.Marshal(m)
}

// Verify implements facilitator.Facilitator.
func (c *Client) Verify(ctx context.Context, payment x402.PaymentPayload, req x402.PaymentRequirements) (facilitator.VerifyResult, error) {
	body, err := c.requestBody(payment, req, nil)
	if err != nil {
		return facilitator.VerifyResult{}, err
	}
	resp, err := c.http.DoIdempotent(ctx, http.MethodPost, c.prefix+"/verify", body)
	if err != nil {
		return facilitator.VerifyResult{}, err
	}
	env, err := envelopeOf(resp)
	if err != nil {
		return facilitator.VerifyResult{}, fmt.Errorf("okx verify: %w", err)
	}
	v, err := DecodeVerifyData(env.Data)
	if err != nil {
		return facilitator.VerifyResult{}, fmt.Errorf("okx verify: %w", err)
	}
	return facilitator.VerifyResultOf(v), nil
}

// Settle implements facilitator.Facilitator. It makes exactly one request.
func (c *Client) Settle(ctx context.Context, payment x402.PaymentPayload, req x402.PaymentRequirements) (facilitator.SettleResult, error) {
	syncSettle := !c.cfg.AsyncSettle
	body, err := c.requestBody(payment, req, &syncSettle)
	if err != nil {
		return facilitator.SettleResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("okx settle: %w", err)
	}
	resp, err := c.http.Do(ctx, http.MethodPost, c.prefix+"/settle", body)
	if err != nil {
		return httpcall.SettleFailure("okx", req.Network, err)
	}
	return settleOutcome(resp, req.Network)
}

// settleOutcome maps one settle exchange to a result, following the money rule: only a
// definite answer is Settled or Failed.
func settleOutcome(resp httpcall.Response, network string) (facilitator.SettleResult, error) {
	env, decErr := DecodeEnvelope(resp.Body)
	switch {
	case resp.Status >= 500:
		hash := ""
		if decErr == nil && env.Data != nil {
			if d, err := DecodeSettleData(env.Data); err == nil {
				hash = d.Transaction
			}
		}
		return facilitator.Unknown(hash, network, "", "OKX answered HTTP %d", resp.Status), nil
	case resp.Status != http.StatusOK:
		e := &APIError{HTTPStatus: resp.Status, Msg: http.StatusText(resp.Status)}
		if decErr == nil && env.Code != "0" {
			e.Code, e.Msg = env.Code, env.Msg
		}
		return facilitator.SettleResult{}, fmt.Errorf("okx settle refused: %w", e)
	case decErr != nil:
		return facilitator.Unknown("", network, "", "undecodable settle response: %v", decErr), nil
	case !env.OK():
		if notProcessed[env.Code] {
			return facilitator.SettleResult{}, fmt.Errorf("okx settle refused: %w", &APIError{HTTPStatus: resp.Status, Code: env.Code, Msg: env.Msg})
		}
		return facilitator.Unknown("", network, "", "OKX error code %s: %s", env.Code, env.Msg), nil
	case env.Data == nil:
		return facilitator.Unknown("", network, "", "settle response without data"), nil
	}
	d, err := DecodeSettleData(env.Data)
	if err != nil {
		return facilitator.Unknown("", network, "", "%v", err), nil
	}
	return fromSettleData(d, network), nil
}

// fromSettleData maps settle or settle-status data to a result.
func fromSettleData(d x402.SettleResponse, network string) facilitator.SettleResult {
	if d.Network != "" {
		network = d.Network
	}
	status := strings.ToLower(d.Status)
	switch {
	case status == "pending" || status == "timeout":
		return facilitator.Unknown(d.Transaction, network, d.Payer, "OKX settlement status %s", status)
	case d.ErrorReason == string(x402.ReasonSettlementPending) || d.ErrorReason == "not_found" || d.ErrorReason == "payment processing":
		return facilitator.Unknown(d.Transaction, network, d.Payer, "OKX: %s %s", d.ErrorReason, d.ErrorMessage)
	case d.Success && d.Transaction != "" && (status == "" || status == "success"):
		return facilitator.SettleResult{State: facilitator.StateSettled, TxHash: d.Transaction, Network: network, Payer: d.Payer}
	case d.Success:
		return facilitator.Unknown(d.Transaction, network, d.Payer, "OKX reported success without a transaction hash (status %q)", status)
	default:
		reason := x402.Reason(d.ErrorReason)
		if reason == "" {
			reason = x402.ReasonUnexpectedSettleError
		}
		return facilitator.SettleResult{State: facilitator.StateFailed, TxHash: d.Transaction, Network: network, Payer: d.Payer, Reason: reason, Message: d.ErrorMessage}
	}
}

// SettleStatus implements facilitator.Facilitator with GET .../settle/status?txHash=. It needs
// ref.TxHash; the legacy API has no status endpoint.
func (c *Client) SettleStatus(ctx context.Context, ref facilitator.SettleRef) (facilitator.SettleResult, error) {
	if c.cfg.Legacy {
		return facilitator.SettleResult{}, fmt.Errorf("okx legacy API: %w", facilitator.ErrStatusUnsupported)
	}
	if ref.TxHash == "" {
		return facilitator.SettleResult{}, fmt.Errorf("okx settle status needs a tx hash: %w", facilitator.ErrStatusUnsupported)
	}
	resp, err := c.http.DoIdempotent(ctx, http.MethodGet, c.prefix+"/settle/status?txHash="+url.QueryEscape(ref.TxHash), nil)
	if err != nil {
		return facilitator.SettleResult{}, err
	}
	env, err := envelopeOf(resp)
	if err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("okx settle status: %w", err)
	}
	d, err := DecodeSettleData(env.Data)
	if err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("okx settle status: %w", err)
	}
	if d.Transaction == "" {
		d.Transaction = ref.TxHash
	}
	if d.Payer == "" {
		d.Payer = ref.Payer
	}
	if strings.EqualFold(d.Status, "failed") {
		d.Success = false
	}
	return fromSettleData(d, ref.Network), nil
}

// Supported implements facilitator.Facilitator.
func (c *Client) Supported(ctx context.Context) (x402.SupportedResponse, error) {
	resp, err := c.http.DoIdempotent(ctx, http.MethodGet, c.prefix+"/supported", nil)
	if err != nil {
		return x402.SupportedResponse{}, err
	}
	if c.cfg.Legacy {
		return legacySupported(resp)
	}
	env, err := envelopeOf(resp)
	if err != nil {
		return x402.SupportedResponse{}, fmt.Errorf("okx supported: %w", err)
	}
	return DecodeSupportedData(env.Data)
}

// DecodeSupportedData decodes supported data; kinds is required.
func DecodeSupportedData(data json.RawMessage) (x402.SupportedResponse, error) {
	var s x402.SupportedResponse
	if err := x402.DecodeObject(data, "okx supported data", &s, "kinds"); err != nil {
		return x402.SupportedResponse{}, err
	}
	return s, nil
}

// legacySupported reads the legacy list [{x402Version, scheme, chainIndex, chainName}].
func legacySupported(resp httpcall.Response) (x402.SupportedResponse, error) {
	if resp.Status != http.StatusOK {
		return x402.SupportedResponse{}, &APIError{HTTPStatus: resp.Status, Msg: http.StatusText(resp.Status)}
	}
	var env struct {
		Data []struct {
			X402Version int    `json:"x402Version"`
			Scheme      string `json:"scheme"`
			ChainIndex  string `json:"chainIndex"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &env); err != nil {
		return x402.SupportedResponse{}, fmt.Errorf("okx legacy supported: %w", err)
	}
	var out x402.SupportedResponse
	for _, k := range env.Data {
		out.Kinds = append(out.Kinds, x402.SupportedKind{X402Version: k.X402Version, Scheme: k.Scheme, Network: caip2.NamespaceEIP155 + ":" + k.ChainIndex})
	}
	return out, nil
}
