package x402

import (
	"encoding/json"
	"fmt"
)

// decodeExactEVM decodes an exact EVM payload and checks that every field is present.
func decodeExactEVM(raw json.RawMessage) (ExactEVMPayload, error) {
	var p ExactEVMPayload
	if len(raw) == 0 {
		return p, Invalid(ReasonInvalidPayload, "payload is missing")
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return ExactEVMPayload{}, Invalid(ReasonInvalidPayload, "payload is not an exact EVM payload: %v", err)
	}
	if p.Signature == "" {
		return ExactEVMPayload{}, Invalid(ReasonMissingSignature, "payload.signature is missing")
	}
	a := p.Authorization
	for _, f := range []struct{ name, v string }{
		{"from", a.From}, {"to", a.To}, {"value", a.Value},
		{"validAfter", a.ValidAfter}, {"validBefore", a.ValidBefore}, {"nonce", a.Nonce},
	} {
		if f.v == "" {
			return ExactEVMPayload{}, Invalid(ReasonInvalidPayload, "payload.authorization.%s is missing", f.name)
		}
	}
	return p, nil
}

// String gives a short description of an authorization for logs (no signature).
func (a Authorization) String() string {
	return fmt.Sprintf("%s->%s value=%s nonce=%s", a.From, a.To, a.Value, a.Nonce)
}
