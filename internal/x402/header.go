package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// HTTP header names.
const (
	HeaderPaymentRequired  = "PAYMENT-REQUIRED"   // v2, server → client, on 402
	HeaderPaymentSignature = "PAYMENT-SIGNATURE"  // v2, client → server
	HeaderPaymentResponse  = "PAYMENT-RESPONSE"   // v2, server → client, settlement receipt
	HeaderXPayment         = "X-PAYMENT"          // v1, client → server
	HeaderXPaymentResponse = "X-PAYMENT-RESPONSE" // v1, server → client
)

// MaxHeaderLen bounds the encoded size of a header this package decodes. A v2 payment with an
// EOA signature is about 1 KiB of base64; the limit leaves room for extensions and smart-wallet
// signatures while keeping a hostile header from costing more than a few allocations.
const MaxHeaderLen = 16 << 10

// HeaderError says what is wrong with a payment header. Its message names the header and the
// problem; it never repeats the header's value.
type HeaderError struct {
	Header  string // e.g. PAYMENT-SIGNATURE
	Problem string // e.g. "is not valid base64"
	reason  Reason
	Err     error // underlying decode error, if any
}

// Error implements error.
func (e *HeaderError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s header %s: %v", e.Header, e.Problem, e.Err)
	}
	return fmt.Sprintf("%s header %s", e.Header, e.Problem)
}

// Unwrap returns the underlying decode error.
func (e *HeaderError) Unwrap() error { return e.Err }

// Reason is the x402 reason code that fits the problem (invalid_payload or invalid_x402_version).
func (e *HeaderError) Reason() Reason {
	if e.reason == "" {
		return ReasonInvalidPayload
	}
	return e.reason
}

func headerErr(header, problem string, err error) *HeaderError {
	return &HeaderError{Header: header, Problem: problem, Err: err}
}

// encodeHeader marshals v as JSON and encodes it with standard, padded base64.
func encodeHeader(header string, v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s header: %w", header, err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// decodeHeaderJSON checks size and base64 of value and unmarshals the JSON object inside into v.
// It returns the object's top-level keys so callers can check which were present.
func decodeHeaderJSON(header, value string, v any) (objectKeys, error) {
	if value == "" {
		return nil, headerErr(header, "is empty", nil)
	}
	if len(value) > MaxHeaderLen {
		return nil, headerErr(header, fmt.Sprintf("is %d bytes, more than the limit of %d", len(value), MaxHeaderLen), nil)
	}
	// The decoder skips CR and LF; reject them explicitly so that only one encoding is valid.
	raw, err := base64.StdEncoding.Strict().DecodeString(value)
	if err != nil || strings.IndexByte(value, '\r') >= 0 || strings.IndexByte(value, '\n') >= 0 {
		return nil, headerErr(header, diagnoseBase64(value), nil)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		// Decode into a map only to tell a value that is no JSON object from a bad field.
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &keys); err != nil {
			return nil, headerErr(header, "does not hold a JSON object", err)
		}
		return nil, headerErr(header, "has a field of the wrong type", err)
	}
	// json.Unmarshal matches keys without regard to case, so presence is read from the object
	// itself: a scan of its top level, or a second decode when a key is escaped.
	keys, ok := scanObjectKeys(raw, make(objectKeys, 0, 8))
	if !ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, headerErr(header, "does not hold a JSON object", err)
		}
		keys = keys[:0]
		for k, v := range m {
			keys = append(keys, objectKey{name: []byte(k), null: string(v) == "null"})
		}
	}
	return keys, nil
}

// objectKeys are the top-level keys of a JSON object: as scanned, in order with duplicates;
// from the fallback decode, one per name.
type objectKeys []objectKey

type objectKey struct {
	name []byte // as written: a slice of the decoded header
	null bool   // the value is JSON null
}

// has reports whether the object has key name with a value other than null. As in a decode
// into a map, the last of duplicate keys counts.
func (ks objectKeys) has(name string) bool {
	for i := len(ks) - 1; i >= 0; i-- {
		if string(ks[i].name) == name {
			return !ks[i].null
		}
	}
	return false
}

// scanObjectKeys appends the top-level keys of raw, which json.Unmarshal has accepted into a
// struct (so it is valid JSON: an object or null). ok is false when a key holds an escape
// sequence, whose name only a full decode gives, or when raw is not as expected.
func scanObjectKeys(raw []byte, keys objectKeys) (_ objectKeys, ok bool) {
	i := skipSpace(raw, 0)
	if i < len(raw) && raw[i] == 'n' {
		return keys, true // null: no keys
	}
	if i >= len(raw) || raw[i] != '{' {
		return keys, false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return keys, true
	}
	for i < len(raw) && raw[i] == '"' {
		end := skipString(raw, i)
		if end < 0 {
			return keys, false
		}
		name := raw[i+1 : end-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			return keys, false
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return keys, false
		}
		i = skipSpace(raw, i+1)
		if i >= len(raw) {
			return keys, false
		}
		null := raw[i] == 'n'
		if i = skipValue(raw, i); i < 0 {
			return keys, false
		}
		keys = append(keys, objectKey{name: name, null: null})
		i = skipSpace(raw, i)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
			continue
		}
		return keys, i < len(raw) && raw[i] == '}'
	}
	return keys, false
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at raw[i] ('"'), or -1.
func skipString(raw []byte, i int) int {
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the value that starts at raw[i], or -1.
func skipValue(raw []byte, i int) int {
	switch raw[i] {
	case '"':
		return skipString(raw, i)
	case '{', '[':
		depth := 0
		for i < len(raw) {
			switch raw[i] {
			case '"':
				if i = skipString(raw, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default: // number, true, false, null
		for i < len(raw) && raw[i] != ',' && raw[i] != '}' && raw[i] != ']' && raw[i] != ' ' && raw[i] != '\t' && raw[i] != '\n' && raw[i] != '\r' {
			i++
		}
		return i
	}
}

// diagnoseBase64 names the most likely mistake in a value that is not standard padded base64.
func diagnoseBase64(value string) string {
	switch {
	case strings.ContainsAny(value, " \t\r\n"):
		return "contains whitespace; send base64 on one line (for example base64 -w0)"
	case isBase64(base64.RawStdEncoding, value):
		return "lacks base64 padding; standard base64 with '=' padding is required"
	case isBase64(base64.URLEncoding, value) || isBase64(base64.RawURLEncoding, value):
		return "uses the URL-safe base64 alphabet; standard base64 is required"
	default:
		return "is not valid base64"
	}
}

func isBase64(enc *base64.Encoding, s string) bool {
	_, err := enc.Strict().DecodeString(s)
	return err == nil
}

// requireKeys fails when a key is absent from the decoded JSON object or null.
func requireKeys(header string, keys objectKeys, names ...string) error {
	for _, n := range names {
		if !keys.has(n) {
			return headerErr(header, fmt.Sprintf("lacks required field %q", n), nil)
		}
	}
	return nil
}

func checkVersion(header string, got, want int) error {
	if got == want {
		return nil
	}
	e := headerErr(header, fmt.Sprintf("has x402Version %d, want %d", got, want), nil)
	e.reason = ReasonInvalidX402Version
	return e
}

func checkPayloadObject(header string, raw json.RawMessage) error {
	if len(raw) == 0 || raw[0] != '{' {
		return headerErr(header, "has a payload that is not a JSON object", nil)
	}
	return nil
}

// EncodePaymentRequired encodes a v2 challenge for the PAYMENT-REQUIRED header.
func EncodePaymentRequired(pr PaymentRequired) (string, error) {
	return encodeHeader(HeaderPaymentRequired, pr)
}

// DecodePaymentRequired decodes a PAYMENT-REQUIRED header (v2 challenge).
func DecodePaymentRequired(value string) (PaymentRequired, error) {
	var pr PaymentRequired
	keys, err := decodeHeaderJSON(HeaderPaymentRequired, value, &pr)
	if err != nil {
		return PaymentRequired{}, err
	}
	if err := requireKeys(HeaderPaymentRequired, keys, "x402Version", "accepts"); err != nil {
		return PaymentRequired{}, err
	}
	if err := checkVersion(HeaderPaymentRequired, pr.X402Version, Version2); err != nil {
		return PaymentRequired{}, err
	}
	for i, a := range pr.Accepts {
		if err := checkRequirementFields(a); err != nil {
			return PaymentRequired{}, headerErr(HeaderPaymentRequired, fmt.Sprintf("accepts[%d] %s", i, err), nil)
		}
	}
	return pr, nil
}

// EncodePaymentSignature encodes a v2 payment for the PAYMENT-SIGNATURE header.
func EncodePaymentSignature(p PaymentPayload) (string, error) {
	return encodeHeader(HeaderPaymentSignature, p)
}

// DecodePaymentSignature decodes a PAYMENT-SIGNATURE header (v2 payment). It checks the shape
// only: version 2, an accepted requirement with its identifying fields, and an object payload.
// Whether the payment is acceptable is decided by Match and the scheme's verifier.
func DecodePaymentSignature(value string) (PaymentPayload, error) {
	var p PaymentPayload
	keys, err := decodeHeaderJSON(HeaderPaymentSignature, value, &p)
	if err != nil {
		return PaymentPayload{}, err
	}
	if err := requireKeys(HeaderPaymentSignature, keys, "x402Version"); err != nil {
		return PaymentPayload{}, err
	}
	if err := checkVersion(HeaderPaymentSignature, p.X402Version, Version2); err != nil {
		return PaymentPayload{}, err
	}
	if err := requireKeys(HeaderPaymentSignature, keys, "accepted", "payload"); err != nil {
		return PaymentPayload{}, err
	}
	if err := checkRequirementFields(p.Accepted); err != nil {
		return PaymentPayload{}, headerErr(HeaderPaymentSignature, "accepted "+err.Error(), nil)
	}
	if err := checkPayloadObject(HeaderPaymentSignature, p.Payload); err != nil {
		return PaymentPayload{}, err
	}
	return p, nil
}

// EncodePaymentResponse encodes a settlement result for the PAYMENT-RESPONSE header (v2).
func EncodePaymentResponse(r SettleResponse) (string, error) {
	return encodeHeader(HeaderPaymentResponse, r)
}

// DecodePaymentResponse decodes a PAYMENT-RESPONSE header (v2 settlement receipt).
func DecodePaymentResponse(value string) (SettleResponse, error) {
	var r SettleResponse
	keys, err := decodeHeaderJSON(HeaderPaymentResponse, value, &r)
	if err != nil {
		return SettleResponse{}, err
	}
	if err := requireKeys(HeaderPaymentResponse, keys, "success", "network"); err != nil {
		return SettleResponse{}, err
	}
	return r, nil
}

// EncodeXPayment encodes a v1 payment for the X-PAYMENT header.
func EncodeXPayment(p PaymentPayloadV1) (string, error) {
	return encodeHeader(HeaderXPayment, p)
}

// DecodeXPayment decodes an X-PAYMENT header (v1 payment).
func DecodeXPayment(value string) (PaymentPayloadV1, error) {
	var p PaymentPayloadV1
	keys, err := decodeHeaderJSON(HeaderXPayment, value, &p)
	if err != nil {
		return PaymentPayloadV1{}, err
	}
	if err := requireKeys(HeaderXPayment, keys, "x402Version"); err != nil {
		return PaymentPayloadV1{}, err
	}
	if err := checkVersion(HeaderXPayment, p.X402Version, Version1); err != nil {
		return PaymentPayloadV1{}, err
	}
	if err := requireKeys(HeaderXPayment, keys, "scheme", "network", "payload"); err != nil {
		return PaymentPayloadV1{}, err
	}
	if p.Scheme == "" || p.Network == "" {
		return PaymentPayloadV1{}, headerErr(HeaderXPayment, "has an empty scheme or network", nil)
	}
	if err := checkPayloadObject(HeaderXPayment, p.Payload); err != nil {
		return PaymentPayloadV1{}, err
	}
	return p, nil
}

// EncodeXPaymentResponse encodes a v1 settlement result for the X-PAYMENT-RESPONSE header.
func EncodeXPaymentResponse(r SettleResponseV1) (string, error) {
	return encodeHeader(HeaderXPaymentResponse, r)
}

// DecodeXPaymentResponse decodes an X-PAYMENT-RESPONSE header (v1 settlement receipt).
func DecodeXPaymentResponse(value string) (SettleResponseV1, error) {
	var r SettleResponseV1
	keys, err := decodeHeaderJSON(HeaderXPaymentResponse, value, &r)
	if err != nil {
		return SettleResponseV1{}, err
	}
	if err := requireKeys(HeaderXPaymentResponse, keys, "success", "network"); err != nil {
		return SettleResponseV1{}, err
	}
	return r, nil
}

// checkRequirementFields checks that the fields used to identify a requirement are present.
func checkRequirementFields(r PaymentRequirements) error {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"scheme", r.Scheme}, {"network", r.Network}, {"amount", r.Amount}, {"asset", r.Asset}, {"payTo", r.PayTo},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return errors.New("lacks " + strings.Join(missing, ", "))
	}
	return nil
}
