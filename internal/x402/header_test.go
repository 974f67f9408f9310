package x402

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func sampleRequirements() PaymentRequirements {
	return PaymentRequirements{
		Scheme:            SchemeExact,
		Network:           "eip155:196",
		Amount:            "10000",
		Asset:             "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8",
		PayTo:             "0x1111111111111111111111111111111111111111",
		MaxTimeoutSeconds: 300,
		Extra:             map[string]any{"name": "Global Dollar", "version": "1"},
	}
}

func samplePayload(t testing.TB) PaymentPayload {
	t.Helper()
	p, err := NewPaymentPayload(sampleRequirements(), &ResourceInfo{URL: "https://gw.example/v1/report"}, ExactEVMPayload{
		Signature: "0x" + strings.Repeat("ab", 65),
		Authorization: Authorization{
			From: "0x2222222222222222222222222222222222222222", To: "0x1111111111111111111111111111111111111111",
			Value: "10000", ValidAfter: "1740672089", ValidBefore: "1740672389",
			Nonce: "0x" + strings.Repeat("01", 32),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestPaymentSignatureRoundTrip(t *testing.T) {
	in := samplePayload(t)
	h, err := EncodePaymentSignature(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodePaymentSignature(h)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if out.Accepted.Amount != "10000" || out.Resource.URL != in.Resource.URL {
		t.Fatalf("round trip lost fields: %+v", out)
	}
	exact, err := out.ExactEVM()
	if err != nil {
		t.Fatal(err)
	}
	if exact.Authorization.ValidBefore != "1740672389" || len(exact.Signature) != 132 {
		t.Fatalf("exact payload = %+v", exact)
	}
	if name, version, ok := out.Accepted.EIP712Domain(); !ok || name != "Global Dollar" || version != "1" {
		t.Fatalf("EIP712Domain = %q %q %v", name, version, ok)
	}
}

func TestDecodePaymentSignatureErrors(t *testing.T) {
	valid, err := EncodePaymentSignature(samplePayload(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(valid)
	tests := []struct {
		name       string
		header     string
		wantInMsg  string
		wantReason Reason
	}{
		{"empty", "", "is empty", ReasonInvalidPayload},
		{"too long", strings.Repeat("A", MaxHeaderLen+4), "more than the limit", ReasonInvalidPayload},
		{"wrapped base64", valid[:76] + "\n" + valid[76:], "contains whitespace", ReasonInvalidPayload},
		{"no padding", base64.RawStdEncoding.EncodeToString(append(raw, ' ')), "lacks base64 padding", ReasonInvalidPayload},
		{"url alphabet", base64.URLEncoding.EncodeToString([]byte(`{"x402Version":2,"a":"???>>>"}`)), "URL-safe", ReasonInvalidPayload},
		{"garbage", "!!!!", "not valid base64", ReasonInvalidPayload},
		{"not json", b64("hello"), "does not hold a JSON object", ReasonInvalidPayload},
		{"json array", b64("[1,2]"), "does not hold a JSON object", ReasonInvalidPayload},
		{"wrong type", b64(`{"x402Version":"2"}`), "wrong type", ReasonInvalidPayload},
		{"no version", b64(`{"accepted":{}}`), `"x402Version"`, ReasonInvalidPayload},
		{"v1 in v2 header", b64(`{"x402Version":1,"scheme":"exact","network":"base","payload":{}}`), "x402Version 1, want 2", ReasonInvalidX402Version},
		{"no payload", b64(`{"x402Version":2,"accepted":{"scheme":"exact"}}`), `"payload"`, ReasonInvalidPayload},
		{"accepted incomplete", b64(`{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:196"},"payload":{}}`), "lacks amount, asset, payTo", ReasonInvalidPayload},
		{"payload not object", b64(`{"x402Version":2,"accepted":{"scheme":"exact","network":"n","amount":"1","asset":"a","payTo":"p"},"payload":"x"}`), "payload that is not a JSON object", ReasonInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodePaymentSignature(tt.header)
			var he *HeaderError
			if !errors.As(err, &he) {
				t.Fatalf("error %v is not a *HeaderError", err)
			}
			if !strings.Contains(err.Error(), tt.wantInMsg) || !strings.HasPrefix(err.Error(), HeaderPaymentSignature) {
				t.Fatalf("error %q does not contain %q or lacks header name", err, tt.wantInMsg)
			}
			if he.Reason() != tt.wantReason {
				t.Fatalf("reason = %s, want %s", he.Reason(), tt.wantReason)
			}
		})
	}
}

func TestPaymentRequiredRoundTrip(t *testing.T) {
	in := PaymentRequired{X402Version: 2, Error: "Payment required", Resource: &ResourceInfo{URL: "https://x/y"}, Accepts: []PaymentRequirements{sampleRequirements()}}
	h, err := EncodePaymentRequired(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodePaymentRequired(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Accepts) != 1 || out.Accepts[0].PayTo != in.Accepts[0].PayTo || out.Accepts[0].MaxTimeoutSeconds != 300 {
		t.Fatalf("got %+v", out)
	}
	bad := in
	bad.Accepts = []PaymentRequirements{{Scheme: "exact"}}
	h, _ = EncodePaymentRequired(bad)
	if _, err := DecodePaymentRequired(h); err == nil || !strings.Contains(err.Error(), "accepts[0] lacks network") {
		t.Fatalf("incomplete requirement: err = %v", err)
	}
}

func TestPaymentResponseRoundTrip(t *testing.T) {
	in := SettleResponse{Success: true, Transaction: "0xabc", Network: "eip155:196", Payer: "0x22"}
	h, err := EncodePaymentResponse(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodePaymentResponse(h)
	if err != nil || out.Transaction != in.Transaction || !out.Success || out.Payer != in.Payer || out.Network != in.Network {
		t.Fatalf("got %+v, %v", out, err)
	}
	if _, err := DecodePaymentResponse(b64(`{"transaction":"0x1","network":"eip155:196"}`)); err == nil || !strings.Contains(err.Error(), `"success"`) {
		t.Fatalf("missing success: err = %v", err)
	}
}

func TestXPaymentV1(t *testing.T) {
	in := PaymentPayloadV1{X402Version: 1, Scheme: "exact", Network: "xlayer", Payload: []byte(`{"signature":"0x01","authorization":{"from":"a","to":"b","value":"1","validAfter":"0","validBefore":"9","nonce":"0x01"}}`)}
	h, err := EncodeXPayment(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeXPayment(h)
	if err != nil || out.Network != "xlayer" {
		t.Fatalf("got %+v, %v", out, err)
	}
	if _, err := out.ExactEVM(); err != nil {
		t.Fatal(err)
	}
	v2, _ := EncodePaymentSignature(samplePayload(t))
	_, err = DecodeXPayment(v2)
	var he *HeaderError
	if !errors.As(err, &he) || he.Reason() != ReasonInvalidX402Version {
		t.Fatalf("v2 payload in X-PAYMENT: err = %v", err)
	}
	r, err := EncodeXPaymentResponse(SettleResponseV1{Success: true, Transaction: "0x1", Network: "xlayer", Payer: "0x2"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeXPaymentResponse(r); err != nil || got.Transaction != "0x1" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestExactEVMMissingFields(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		reason Reason
	}{
		{"no signature", `{"authorization":{}}`, ReasonMissingSignature},
		{"no nonce", `{"signature":"0x1","authorization":{"from":"a","to":"b","value":"1","validAfter":"0","validBefore":"9"}}`, ReasonInvalidPayload},
		{"wrong type", `{"signature":1}`, ReasonInvalidPayload},
		{"empty", ``, ReasonInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PaymentPayload{Payload: []byte(tt.raw)}.ExactEVM()
			if got := ReasonOf(err); got != tt.reason {
				t.Fatalf("reason = %q (%v), want %q", got, err, tt.reason)
			}
		})
	}
}

func TestToV1(t *testing.T) {
	v1 := sampleRequirements().ToV1(ResourceInfo{URL: "https://x", Description: "d"})
	if v1.MaxAmountRequired != "10000" || v1.Resource != "https://x" || v1.Description != "d" {
		t.Fatalf("got %+v", v1)
	}
}

func TestV1ToV2KeepsPayload(t *testing.T) {
	v1 := PaymentPayloadV1{X402Version: 1, Scheme: "exact", Network: "xlayer", Payload: []byte(`{"signature":"0x01"}`)}
	v2 := v1.ToV2(sampleRequirements(), nil)
	if v2.X402Version != 2 || string(v2.Payload) != string(v1.Payload) || v2.Accepted.Network != "eip155:196" {
		t.Fatalf("ToV2 = %+v", v2)
	}
	h, err := EncodePaymentSignature(v2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodePaymentSignature(h); err != nil {
		t.Fatalf("lifted payment does not decode as v2: %v", err)
	}
}
