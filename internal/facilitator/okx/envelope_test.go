package okx

import (
	"net/http"
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/httpcall"
	"github.com/insforge/integrations-operator/internal/x402"
)

func TestDecodeEnvelope(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode string
		wantData string // "" means nil
		wantErr  string
	}{
		{"string code, object data", `{"code":"0","msg":"","data":{"isValid":true}}`, "0", `{"isValid":true}`, ""},
		{"numeric code", `{"code":0,"msg":"success","data":{"isValid":true}}`, "0", `{"isValid":true}`, ""},
		{"numeric error code", `{"code":50113,"msg":"Invalid Sign","data":null}`, "50113", "", ""},
		{"string error code", `{"code":"50113","msg":"Invalid Sign","data":null}`, "50113", "", ""},
		{"array data (legacy)", `{"code":"0","data":[{"success":true,"txHash":"0x1"}]}`, "0", `{"success":true,"txHash":"0x1"}`, ""},
		{"empty array", `{"code":"0","data":[]}`, "0", "", ""},
		{"no data", `{"code":"0"}`, "0", "", ""},
		{"un-enveloped", `{"isValid":false,"invalidReason":"x"}`, "0", `{"isValid":false,"invalidReason":"x"}`, ""},
		{"bool code", `{"code":true}`, "", "", "neither a string nor an integer"},
		{"fractional code", `{"code":1.5}`, "", "", "neither a string nor an integer"},
		{"scalar data", `{"code":"0","data":"x"}`, "", "", "neither an object nor an array"},
		{"msg not string", `{"code":"0","msg":1}`, "", "", "msg is not a string"},
		{"not json", `<html>`, "", "", "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := DecodeEnvelope([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || env.Code != tt.wantCode || string(env.Data) != tt.wantData {
				t.Fatalf("got %+v (data %s), %v", env, env.Data, err)
			}
		})
	}
}

func TestDecodeSettleDataLegacyTxHash(t *testing.T) {
	d, err := DecodeSettleData([]byte(`{"success":true,"txHash":"0xab","payer":"0xp"}`))
	if err != nil || d.Transaction != "0xab" || !d.Success {
		t.Fatalf("got %+v, %v", d, err)
	}
	if _, err := DecodeSettleData([]byte(`{"transaction":"0xab"}`)); err == nil {
		t.Fatal("settle data without success accepted")
	}
	if _, err := DecodeVerifyData([]byte(`{"payer":"0xp"}`)); err == nil {
		t.Fatal("verify data without isValid accepted")
	}
}

func TestSettleOutcome(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		state   facilitator.State // "" means an error
		hash    string
		reason  x402.Reason
		errCode string
	}{
		{"settled", 200, `{"code":"0","data":{"success":true,"transaction":"0xt","network":"eip155:196","status":"success"}}`, facilitator.StateSettled, "0xt", "", ""},
		{"settled, numeric code, no status", 200, `{"code":0,"data":{"success":true,"transaction":"0xt","network":"eip155:196"}}`, facilitator.StateSettled, "0xt", "", ""},
		{"sync timeout keeps hash", 200, `{"code":"0","data":{"success":true,"transaction":"0xt","status":"timeout"}}`, facilitator.StateUnknown, "0xt", x402.ReasonSettlementPending, ""},
		{"async pending", 200, `{"code":"0","data":{"success":true,"transaction":"0xt","status":"pending"}}`, facilitator.StateUnknown, "0xt", x402.ReasonSettlementPending, ""},
		{"success without hash", 200, `{"code":"0","data":{"success":true,"transaction":""}}`, facilitator.StateUnknown, "", x402.ReasonSettlementPending, ""},
		{"failed", 200, `{"code":"0","data":{"success":false,"errorReason":"insufficient_funds","transaction":""}}`, facilitator.StateFailed, "", x402.ReasonInsufficientFunds, ""},
		{"failed without reason", 200, `{"code":"0","data":{"success":false}}`, facilitator.StateFailed, "", x402.ReasonUnexpectedSettleError, ""},
		{"settlement_pending", 200, `{"code":"0","data":{"success":false,"errorReason":"settlement_pending","transaction":"0xt"}}`, facilitator.StateUnknown, "0xt", x402.ReasonSettlementPending, ""},
		{"duplicate in flight", 200, `{"code":"0","data":{"success":false,"errorReason":"payment processing"}}`, facilitator.StateUnknown, "", x402.ReasonSettlementPending, ""},
		{"5xx", 502, `bad gateway`, facilitator.StateUnknown, "", x402.ReasonSettlementPending, ""},
		{"5xx with hash", 500, `{"code":"50026","data":{"success":false,"transaction":"0xt"}}`, facilitator.StateUnknown, "0xt", x402.ReasonSettlementPending, ""},
		{"200 garbage", 200, `<html>`, facilitator.StateUnknown, "", x402.ReasonSettlementPending, ""},
		{"200 without success", 200, `{"code":"0","data":{"transaction":"0xt"}}`, facilitator.StateUnknown, "", x402.ReasonSettlementPending, ""},
		{"system error code", 200, `{"code":"50026","msg":"System error","data":null}`, facilitator.StateUnknown, "", x402.ReasonSettlementPending, ""},
		{"bad signature code", 200, `{"code":"50113","msg":"Invalid Sign","data":null}`, "", "", "", "50113"},
		{"401", 401, `{"code":"50111","msg":"Invalid OK-ACCESS-KEY"}`, "", "", "", "50111"},
		{"429", 429, `{"code":"50011","msg":"Too Many Requests"}`, "", "", "", "50011"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := settleOutcome(httpcall.Response{Status: tt.status, Body: []byte(tt.body)}, "eip155:196")
			if tt.state == "" {
				if err == nil || !strings.Contains(err.Error(), tt.errCode) {
					t.Fatalf("want an error with code %s, got %+v, %v", tt.errCode, res, err)
				}
				return
			}
			if err != nil || res.State != tt.state || res.TxHash != tt.hash || res.Reason != tt.reason {
				t.Fatalf("got %+v, %v", res, err)
			}
		})
	}
	if _, err := settleOutcome(httpcall.Response{Status: http.StatusOK, Body: []byte(`{"code":"0","data":{"success":true,"transaction":"0x1"}}`)}, "n"); err != nil {
		t.Fatal(err)
	}
}
