package okx

import (
	"testing"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/httpcall"
)

func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"code":"0","msg":"","data":{"isValid":true,"payer":"0x1"}}`,
		`{"code":0,"data":[{"success":true,"txHash":"0x1"}]}`,
		`{"code":"50113","msg":"Invalid Sign","data":null}`,
		`{"kinds":[{"x402Version":2,"scheme":"exact","network":"eip155:196"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := DecodeEnvelope(body)
		if err != nil || env.Data == nil {
			return
		}
		_, _ = DecodeVerifyData(env.Data)
		_, _ = DecodeSettleData(env.Data)
		_, _ = DecodeSupportedData(env.Data)
	})
}

// The money rule under arbitrary answers: only an HTTP 200 can settle or fail a payment;
// anything from a 5xx is unknown.
func FuzzSettleOutcome(f *testing.F) {
	f.Add(200, []byte(`{"code":"0","data":{"success":true,"transaction":"0x1","status":"success"}}`))
	f.Add(500, []byte(`{"code":"50026","data":{"success":false,"transaction":"0x1"}}`))
	f.Add(200, []byte(`{"code":"0","data":{"success":false,"errorReason":"expired"}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		res, err := settleOutcome(httpcall.Response{Status: status, Body: body}, "eip155:196")
		if err != nil {
			if status >= 500 {
				t.Fatalf("HTTP %d settle became an error %v; must be unknown", status, err)
			}
			return
		}
		if status != 200 && res.State != facilitator.StateUnknown {
			t.Fatalf("HTTP %d settle became %s", status, res.State)
		}
		if res.State == facilitator.StateSettled && res.TxHash == "" {
			t.Fatal("settled without a transaction hash")
		}
	})
}
