package facilitator

import (
	"errors"
	"testing"

	"github.com/insforge/integrations-operator/internal/x402"
)

func TestSettleResultResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      SettleResult
		success bool
		reason  string
	}{
		{"settled", SettleResult{State: StateSettled, TxHash: "0x1", Network: "eip155:196"}, true, ""},
		{"failed", SettleResult{State: StateFailed, Reason: x402.ReasonNonceAlreadyUsed}, false, string(x402.ReasonNonceAlreadyUsed)},
		{"unknown keeps hash", Unknown("0xabc", "eip155:196", "0xp", "timeout"), false, string(x402.ReasonSettlementPending)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.in.Response()
			if r.Success != tt.success || r.ErrorReason != tt.reason || r.Transaction != tt.in.TxHash {
				t.Fatalf("response = %+v", r)
			}
		})
	}
	if !(SettleResult{State: StateSettled}).Settled() || (SettleResult{State: StateUnknown}).Settled() {
		t.Fatal("Settled() wrong")
	}
}

func TestInvalidAndRef(t *testing.T) {
	v := Invalid(x402.Invalid(x402.ReasonSignature, "bad"), "0xp")
	if v.Valid || v.Reason != x402.ReasonSignature || v.Message != "bad" || v.Response().InvalidReason != string(x402.ReasonSignature) {
		t.Fatalf("Invalid = %+v", v)
	}
	if v := Invalid(errors.New("boom"), ""); v.Reason != x402.ReasonUnexpectedVerifyError {
		t.Fatalf("plain error reason = %s", v.Reason)
	}
	p := x402.PaymentPayload{Payload: []byte(`{"signature":"0x01","authorization":{"from":"0xf","to":"0xt","value":"1","validAfter":"0","validBefore":"99","nonce":"0xn"}}`)}
	ref, err := RefFor(p, x402.PaymentRequirements{Network: "eip155:1", Asset: "0xa"}, "0xh")
	if err != nil || ref.Payer != "0xf" || ref.Nonce != "0xn" || ref.ValidBefore != "99" || ref.Asset != "0xa" || ref.TxHash != "0xh" ||
		ref.PayTo != "0xt" || ref.Value != "1" {
		t.Fatalf("ref = %+v, %v", ref, err)
	}
	if _, err := RefFor(x402.PaymentPayload{}, x402.PaymentRequirements{}, ""); err == nil {
		t.Fatal("empty payload accepted")
	}
}
