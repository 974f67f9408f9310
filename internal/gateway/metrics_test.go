package gateway

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/x402"
)

// requestSeries returns the reason label of every x402_gateway_requests_total series with the
// given outcome.
func requestReasons(t *testing.T, m *Metrics, outcome string) []string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.requests)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			if label(metric, "outcome") == outcome {
				reasons = append(reasons, label(metric, "reason"))
			}
		}
	}
	slices.Sort(reasons)
	return reasons
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestReasonLabelKeepsKnownCodesOnly(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	for _, reason := range []string{
		"", string(x402.ReasonInsufficientFunds), string(x402.ReasonSettlementPending), reasonLedgerUnavailable,
		"execution reverted: ERC20: transfer amount exceeds balance", "upstream said 503 Service Unavailable",
		"Insufficient_Funds", string(x402.ReasonInsufficientFunds) + " (retry later)",
	} {
		m.outcome("GET /weather", OutcomeSettleFailed, reason)
	}
	want := []string{"", string(x402.ReasonInsufficientFunds), reasonLedgerUnavailable, reasonOther, string(x402.ReasonSettlementPending)}
	slices.Sort(want)
	if got := requestReasons(t, m, OutcomeSettleFailed); !slices.Equal(got, want) {
		t.Errorf("reason labels %q, want %q", got, want)
	}
}

// refusing is a facilitator whose verify refuses with a reason of its own making.
type refusing struct {
	facilitator.Facilitator
	reason x402.Reason
}

func (f refusing) Verify(context.Context, x402.PaymentPayload, x402.PaymentRequirements) (facilitator.VerifyResult, error) {
	return facilitator.VerifyResult{Valid: false, Reason: f.reason, Message: "refused"}, nil
}

// TestFacilitatorReasonsDoNotBecomeLabels: reasons a facilitator answers (verify refusals and
// settle failures) reach the client as they are but count under "other" unless they are codes
// the gateway knows, so a facilitator cannot grow the series without bound.
func TestFacilitatorReasonsDoNotBecomeLabels(t *testing.T) {
	e := newEnv(t, envOpts{})
	free := []x402.Reason{"Facilitator error: nonce 0x51 is stale (request id 8c1f)", "execution reverted: paused"}
	for i, reason := range free {
		e.fac.settle = func(_ context.Context, _ x402.PaymentPayload, r x402.PaymentRequirements) (facilitator.SettleResult, error) {
			return facilitator.SettleResult{State: facilitator.StateFailed, Network: r.Network, Reason: reason, Message: "failed"}, nil
		}
		a := e.pay(t, "/weather", sign(t, e.payer(t, 1), e.requirements()))
		if a.status != http.StatusPaymentRequired || a.json.Reason != string(reason) {
			t.Fatalf("settle failure %d: %d %s", i, a.status, a.body)
		}
	}
	e.fac.settle = func(_ context.Context, _ x402.PaymentPayload, r x402.PaymentRequirements) (facilitator.SettleResult, error) {
		return facilitator.SettleResult{State: facilitator.StateFailed, Network: r.Network, Reason: x402.ReasonInsufficientFunds, Message: "low"}, nil
	}
	if a := e.pay(t, "/weather", sign(t, e.payer(t, 1), e.requirements())); a.status != http.StatusPaymentRequired {
		t.Fatalf("settle failure: %d %s", a.status, a.body)
	}
	if got, want := requestReasons(t, e.handler.metrics, OutcomeSettleFailed), []string{string(x402.ReasonInsufficientFunds), reasonOther}; !slices.Equal(got, want) {
		t.Errorf("settle_failed reasons %q, want %q", got, want)
	}

	e.fac.Facilitator = refusing{Facilitator: e.onchain, reason: "signature rejected by upstream signer service v2.3"}
	if a := e.pay(t, "/weather", sign(t, e.payer(t, 1), e.requirements())); a.status != http.StatusPaymentRequired {
		t.Fatalf("verify refusal: %d %s", a.status, a.body)
	}
	if got := requestReasons(t, e.handler.metrics, OutcomeInvalid); !slices.Equal(got, []string{reasonOther}) {
		t.Errorf("invalid reasons %q, want [other]", got)
	}
}
