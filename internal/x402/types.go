package x402

import (
	"encoding/json"
)

// Protocol versions.
const (
	Version1 = 1
	Version2 = 2
)

// SchemeExact is the only payment scheme this project speaks.
const SchemeExact = "exact"

// ResourceInfo describes the paid resource (v2).
type ResourceInfo struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

// PaymentRequirements is one way to pay that a server accepts (v2). Amount is an atomic-unit
// decimal string; Network is a CAIP-2 chain id; for the exact EVM scheme Extra carries the
// token's EIP-712 domain "name" and "version".
type PaymentRequirements struct {
	Scheme            string         `json:"scheme"`
	Network           string         `json:"network"`
	Amount            string         `json:"amount"`
	Asset             string         `json:"asset"`
	PayTo             string         `json:"payTo"`
	MaxTimeoutSeconds int            `json:"maxTimeoutSeconds"`
	Extra             map[string]any `json:"extra,omitempty"`
}

// ExtraString returns Extra[key] when it is a string.
func (r PaymentRequirements) ExtraString(key string) (string, bool) {
	v, ok := r.Extra[key]
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// EIP712Domain returns the token's EIP-712 domain name and version from Extra; ok is false when
// either is missing or empty.
func (r PaymentRequirements) EIP712Domain() (name, version string, ok bool) {
	name, okName := r.ExtraString("name")
	version, okVersion := r.ExtraString("version")
	return name, version, okName && okVersion && name != "" && version != ""
}

// PaymentRequired is the v2 challenge sent in the PAYMENT-REQUIRED header of a 402 response.
type PaymentRequired struct {
	X402Version int                   `json:"x402Version"`
	Error       string                `json:"error,omitempty"`
	Resource    *ResourceInfo         `json:"resource,omitempty"`
	Accepts     []PaymentRequirements `json:"accepts"`
	Extensions  map[string]any        `json:"extensions,omitempty"`
}

// PaymentPayload is the v2 payment a client sends in the PAYMENT-SIGNATURE header. Payload is
// scheme specific and kept raw so that it can be forwarded to a facilitator byte for byte; use
// ExactEVM to read it for the exact EVM scheme.
type PaymentPayload struct {
	X402Version int                 `json:"x402Version"`
	Resource    *ResourceInfo       `json:"resource,omitempty"`
	Accepted    PaymentRequirements `json:"accepted"`
	Payload     json.RawMessage     `json:"payload"`
	Extensions  map[string]any      `json:"extensions,omitempty"`
}

// ExactEVMPayload is the payload of the exact scheme on EVM chains with EIP-3009.
type ExactEVMPayload struct {
	Signature     string        `json:"signature"`
	Authorization Authorization `json:"authorization"`
}

// Authorization is an EIP-3009 TransferWithAuthorization message as it travels on the wire:
// addresses and the nonce as 0x-hex, value and times as decimal strings.
type Authorization struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Value       string `json:"value"`
	ValidAfter  string `json:"validAfter"`
	ValidBefore string `json:"validBefore"`
	Nonce       string `json:"nonce"`
}

// ExactEVM decodes the scheme-specific payload as an exact EVM (EIP-3009) payload.
func (p PaymentPayload) ExactEVM() (ExactEVMPayload, error) {
	return decodeExactEVM(p.Payload)
}

// NewPaymentPayload builds a v2 payload for the exact EVM scheme.
func NewPaymentPayload(accepted PaymentRequirements, resource *ResourceInfo, exact ExactEVMPayload) (PaymentPayload, error) {
	raw, err := json.Marshal(exact)
	if err != nil {
		return PaymentPayload{}, err
	}
	return PaymentPayload{X402Version: Version2, Resource: resource, Accepted: accepted, Payload: raw}, nil
}

// VerifyResponse is a facilitator's answer to /verify.
type VerifyResponse struct {
	IsValid        bool           `json:"isValid"`
	InvalidReason  string         `json:"invalidReason,omitempty"`
	InvalidMessage string         `json:"invalidMessage,omitempty"`
	Payer          string         `json:"payer,omitempty"`
	Extensions     map[string]any `json:"extensions,omitempty"`
}

// SettleResponse is a facilitator's answer to /settle, and the body of the PAYMENT-RESPONSE
// header. Transaction is "" on failure. Status is OKX's extension (pending, success, timeout,
// failed) and is not part of the standard.
type SettleResponse struct {
	Success      bool           `json:"success"`
	ErrorReason  string         `json:"errorReason,omitempty"`
	ErrorMessage string         `json:"errorMessage,omitempty"`
	Payer        string         `json:"payer,omitempty"`
	Transaction  string         `json:"transaction"`
	Network      string         `json:"network"`
	Amount       string         `json:"amount,omitempty"`
	Status       string         `json:"status,omitempty"`
	Extensions   map[string]any `json:"extensions,omitempty"`
}

// SupportedKind is one (version, scheme, network) a facilitator handles.
type SupportedKind struct {
	X402Version int            `json:"x402Version"`
	Scheme      string         `json:"scheme"`
	Network     string         `json:"network"`
	Extra       map[string]any `json:"extra,omitempty"`
}

// SupportedResponse is a facilitator's answer to /supported.
type SupportedResponse struct {
	Kinds      []SupportedKind     `json:"kinds"`
	Extensions []string            `json:"extensions,omitempty"`
	Signers    map[string][]string `json:"signers,omitempty"`
}

// Supports reports whether the response lists the version, scheme and network.
func (s SupportedResponse) Supports(version int, scheme, network string) bool {
	for _, k := range s.Kinds {
		if k.X402Version == version && k.Scheme == scheme && k.Network == network {
			return true
		}
	}
	return false
}

// FacilitatorRequest is the body of a standard /verify or /settle call.
type FacilitatorRequest struct {
	X402Version         int                 `json:"x402Version"`
	PaymentPayload      PaymentPayload      `json:"paymentPayload"`
	PaymentRequirements PaymentRequirements `json:"paymentRequirements"`
}
