// Package facilitator defines the interface the x402 gateway uses to verify and settle payments,
// and the result types shared by its implementations (sub-packages okx, httpx402, onchain, mock).
//
// The money rule every implementation follows: a settle whose outcome is not known for certain
// (timeout, transport error, 5xx, a receipt that did not arrive in time) is reported as
// StateUnknown, with the transaction hash when known, never as StateFailed; and a settle is never
// retried blindly. SettleStatus resolves unknown outcomes later.
package facilitator

import (
	"context"
	"errors"
	"fmt"

	"github.com/insforge/integrations-operator/internal/x402"
)

// Facilitator verifies and settles x402 payments.
//
// Verify and Settle take the client's payment and the server's own matched requirements (see
// x402.Match), never the client's copy of them.
type Facilitator interface {
	// Verify checks a payment without moving funds. An invalid payment is a result with
	// Valid=false and a reason; the error is for failures to reach a verdict (transport,
	// malformed facilitator response, cancelled context).
	Verify(ctx context.Context, payment x402.PaymentPayload, req x402.PaymentRequirements) (VerifyResult, error)

	// Settle executes the payment. A non-nil error means that nothing was submitted for
	// settlement (bad input, request rejected before processing, context done before sending):
	// it is safe to answer the client without charging. Once the request may have been
	// processed, Settle returns a result and a nil error; the result's State says Settled,
	// Failed or Unknown.
	Settle(ctx context.Context, payment x402.PaymentPayload, req x402.PaymentRequirements) (SettleResult, error)

	// SettleStatus looks up the outcome of an earlier settlement. Implementations that cannot
	// resolve the reference (no status API, or the reference lacks what they need) return an
	// error wrapping ErrStatusUnsupported.
	SettleStatus(ctx context.Context, ref SettleRef) (SettleResult, error)

	// Supported lists the (version, scheme, network) kinds the facilitator handles.
	Supported(ctx context.Context) (x402.SupportedResponse, error)
}

// StatusSource looks settlements up: every Facilitator, and the chain-only onchain.Lookup that
// the resolver uses to check what a facilitator says.
type StatusSource interface {
	// SettleStatus looks up the outcome of an earlier settlement. Implementations that cannot
	// resolve the reference (no status API, or the reference lacks what they need) return an
	// error wrapping ErrStatusUnsupported.
	SettleStatus(ctx context.Context, ref SettleRef) (SettleResult, error)
}

// ErrStatusUnsupported is wrapped by SettleStatus errors when the facilitator cannot look the
// settlement up; the caller may fall back to the chain (onchain.Facilitator.SettleStatus).
var ErrStatusUnsupported = errors.New("settlement status lookup not supported")

// VerifyResult is the verdict on a payment.
type VerifyResult struct {
	Valid   bool
	Reason  x402.Reason // set when !Valid
	Message string      // human detail; never contains secrets
	Payer   string      // the payer address, when known
}

// Response converts the result to the wire VerifyResponse.
func (r VerifyResult) Response() x402.VerifyResponse {
	return x402.VerifyResponse{IsValid: r.Valid, InvalidReason: string(r.Reason), InvalidMessage: r.Message, Payer: r.Payer}
}

// VerifyResultOf reads a facilitator's wire verify answer; a refusal without a reason gets
// unexpected_verify_error, so that no invalid result lacks one.
func VerifyResultOf(v x402.VerifyResponse) VerifyResult {
	res := VerifyResult{Valid: v.IsValid, Payer: v.Payer, Message: v.InvalidMessage}
	if !v.IsValid {
		res.Reason = x402.Reason(v.InvalidReason)
		if res.Reason == "" {
			res.Reason = x402.ReasonUnexpectedVerifyError
		}
	}
	return res
}

// Invalid builds a failed VerifyResult from an error carrying an x402 reason.
func Invalid(err error, payer string) VerifyResult {
	reason := x402.ReasonOf(err)
	if reason == "" {
		reason = x402.ReasonUnexpectedVerifyError
	}
	msg := err.Error()
	var ie *x402.InvalidError
	if errors.As(err, &ie) {
		msg = ie.Message
	}
	return VerifyResult{Valid: false, Reason: reason, Message: msg, Payer: payer}
}

// State is the outcome of a settlement.
type State string

// Settlement states.
const (
	// StateSettled: the transfer is final (receipt with status 1, or the facilitator says so).
	StateSettled State = "settled"
	// StateFailed: the transfer did not and will not happen with this authorization attempt.
	StateFailed State = "failed"
	// StateUnknown: the transfer may have happened or may still happen. Keep the payment
	// pending, resolve it with SettleStatus, and never ask the payer to pay again meanwhile.
	StateUnknown State = "unknown"
)

// SettleResult is the outcome of Settle or SettleStatus.
type SettleResult struct {
	State   State
	TxHash  string      // 0x-hex; may be set with StateUnknown; "" when not known
	Network string      // CAIP-2
	Payer   string      // payer address, when known
	Reason  x402.Reason // why it failed, or settlement_pending for unknown outcomes
	Message string      // human detail; never contains secrets
}

// Settled reports whether the payment is final.
func (r SettleResult) Settled() bool { return r.State == StateSettled }

// Response converts the result to the SettleResponse sent in the PAYMENT-RESPONSE header. An
// unknown outcome is reported as success=false with reason settlement_pending and the hash.
func (r SettleResult) Response() x402.SettleResponse {
	resp := x402.SettleResponse{
		Success:     r.State == StateSettled,
		Transaction: r.TxHash,
		Network:     r.Network,
		Payer:       r.Payer,
	}
	switch r.State {
	case StateSettled:
	case StateUnknown:
		resp.ErrorReason = string(x402.ReasonSettlementPending)
		resp.ErrorMessage = r.Message
	default:
		resp.ErrorReason = string(r.Reason)
		resp.ErrorMessage = r.Message
	}
	return resp
}

// Unknown builds an unknown-outcome result.
func Unknown(txHash, network, payer, format string, args ...any) SettleResult {
	return SettleResult{
		State: StateUnknown, TxHash: txHash, Network: network, Payer: payer,
		Reason: x402.ReasonSettlementPending, Message: fmt.Sprintf(format, args...),
	}
}

// SettleRef identifies a settlement for SettleStatus. TxHash alone is enough for facilitators
// with a status API; the on-chain lookup works from (Asset, Payer, Nonce) when the hash is not
// known, e.g. after a settle response that never arrived, and needs (PayTo, Value) to tell this
// payment from any other use of the nonce.
type SettleRef struct {
	TxHash      string
	Network     string // CAIP-2
	Asset       string // token address
	Payer       string // authorization.from
	Nonce       string // authorization.nonce, 0x + 32 bytes
	ValidBefore string // authorization.validBefore, unix seconds
	PayTo       string // authorization.to: who must have received the transfer
	Value       string // authorization.value, atomic units: how much must have moved
}

// RefFor builds the reference of a settlement of payment against req.
func RefFor(payment x402.PaymentPayload, req x402.PaymentRequirements, txHash string) (SettleRef, error) {
	exact, err := payment.ExactEVM()
	if err != nil {
		return SettleRef{}, fmt.Errorf("settlement reference: %w", err)
	}
	a := exact.Authorization
	return SettleRef{
		TxHash: txHash, Network: req.Network, Asset: req.Asset,
		Payer: a.From, Nonce: a.Nonce, ValidBefore: a.ValidBefore,
		PayTo: a.To, Value: a.Value,
	}, nil
}
