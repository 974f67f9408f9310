package httpx402

import (
	"encoding/json"
	"testing"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/httpcall"
)

func FuzzDecodeVerifyResponse(f *testing.F) {
	f.Add([]byte(`{"isValid":true,"payer":"0x1"}`))
	f.Add([]byte(`{"isValid":false,"invalidReason":"invalid_exact_evm_payload_signature"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := DecodeVerifyResponse(body)
		if err != nil {
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeVerifyResponse(again)
		if err != nil || back.IsValid != v.IsValid || back.InvalidReason != v.InvalidReason {
			t.Fatalf("round trip changed the verdict: %+v → %+v, %v", v, back, err)
		}
	})
}

func FuzzDecodeSupportedResponse(f *testing.F) {
	f.Add([]byte(`{"kinds":[{"x402Version":2,"scheme":"exact","network":"eip155:196"}],"signers":{"eip155:*":["0x1"]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = DecodeSupportedResponse(body)
	})
}

// Settle answers: only a 200 (or a 4xx carrying a failure) can be final, a 5xx is unknown, and
// a settled result always has a hash.
func FuzzDecodeSettleResponse(f *testing.F) {
	f.Add(200, []byte(`{"success":true,"transaction":"0x1","network":"eip155:196"}`))
	f.Add(400, []byte(`{"success":false,"errorReason":"invalid_payload","transaction":"","network":"n"}`))
	f.Add(503, []byte(`unavailable`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		_, _ = DecodeSettleResponse(body)
		res, err := settleOutcome(httpcall.Response{Status: status, Body: body}, "eip155:196")
		if err != nil {
			if status >= 500 {
				t.Fatalf("HTTP %d became an error: %v", status, err)
			}
			return
		}
		if status >= 500 && res.State != facilitator.StateUnknown {
			t.Fatalf("HTTP %d became %s", status, res.State)
		}
		if status != 200 && res.State == facilitator.StateSettled {
			t.Fatalf("HTTP %d settled", status)
		}
		if res.State == facilitator.StateSettled && res.TxHash == "" {
			t.Fatal("settled without a hash")
		}
	})
}
