package x402

import "encoding/json"

// PaymentRequirementsV1 is one accepted way to pay in protocol version 1. The amount field is
// named maxAmountRequired and the resource lives on each requirement.
type PaymentRequirementsV1 struct {
	Scheme            string          `json:"scheme"`
	Network           string          `json:"network"`
	MaxAmountRequired string          `json:"maxAmountRequired"`
	Resource          string          `json:"resource"`
	Description       string          `json:"description"`
	MimeType          string          `json:"mimeType,omitempty"`
	OutputSchema      json.RawMessage `json:"outputSchema,omitempty"`
	PayTo             string          `json:"payTo"`
	MaxTimeoutSeconds int             `json:"maxTimeoutSeconds"`
	Asset             string          `json:"asset"`
	Extra             map[string]any  `json:"extra,omitempty"`
}

// PaymentRequirementsResponseV1 is the v1 402 JSON body.
type PaymentRequirementsResponseV1 struct {
	X402Version int                     `json:"x402Version"`
	Error       string                  `json:"error,omitempty"`
	Accepts     []PaymentRequirementsV1 `json:"accepts"`
}

// PaymentPayloadV1 is the v1 payment sent in the X-PAYMENT header.
type PaymentPayloadV1 struct {
	X402Version int             `json:"x402Version"`
	Scheme      string          `json:"scheme"`
	Network     string          `json:"network"`
	Payload     json.RawMessage `json:"payload"`
}

// ExactEVM decodes the scheme-specific payload as an exact EVM (EIP-3009) payload.
func (p PaymentPayloadV1) ExactEVM() (ExactEVMPayload, error) {
	return decodeExactEVM(p.Payload)
}

// SettleResponseV1 is the v1 settlement response sent in the X-PAYMENT-RESPONSE header.
type SettleResponseV1 struct {
	Success     bool   `json:"success"`
	ErrorReason string `json:"errorReason,omitempty"`
	Payer       string `json:"payer"`
	Transaction string `json:"transaction"`
	Network     string `json:"network"`
}

// ToV1 converts v2 requirements into the v1 shape for the given resource. The network is
// copied as is; v1 peers that expect legacy network names need their own mapping.
func (r PaymentRequirements) ToV1(resource ResourceInfo) PaymentRequirementsV1 {
	return PaymentRequirementsV1{
		Scheme:            r.Scheme,
		Network:           r.Network,
		MaxAmountRequired: r.Amount,
		Resource:          resource.URL,
		Description:       resource.Description,
		MimeType:          resource.MimeType,
		PayTo:             r.PayTo,
		MaxTimeoutSeconds: r.MaxTimeoutSeconds,
		Asset:             r.Asset,
		Extra:             r.Extra,
	}
}

// ToV2 lifts a v1 payment into the v2 shape so that one verifier and one facilitator client
// serve both versions. accepted must be the server's own v2 requirements that the v1 payment was
// matched against (same scheme, network mapped from the v1 name by the caller); the signed
// payload is carried over unchanged, since the EIP-3009 signature does not depend on the
// protocol version.
func (p PaymentPayloadV1) ToV2(accepted PaymentRequirements, resource *ResourceInfo) PaymentPayload {
	return PaymentPayload{X402Version: Version2, Resource: resource, Accepted: accepted, Payload: p.Payload}
}
