package x402

import (
	"errors"
	"fmt"
)

// Reason is an x402 error reason code, as sent in invalidReason / errorReason.
type Reason string

// Reason codes from the x402 v2 specification (§9).
const (
	ReasonInsufficientFunds          Reason = "insufficient_funds"
	ReasonValidAfter                 Reason = "invalid_exact_evm_payload_authorization_valid_after"
	ReasonValidBefore                Reason = "invalid_exact_evm_payload_authorization_valid_before"
	ReasonValueMismatch              Reason = "invalid_exact_evm_payload_authorization_value_mismatch"
	ReasonSignature                  Reason = "invalid_exact_evm_payload_signature"
	ReasonRecipientMismatch          Reason = "invalid_exact_evm_payload_recipient_mismatch"
	ReasonInvalidNetwork             Reason = "invalid_network"
	ReasonInvalidPayload             Reason = "invalid_payload"
	ReasonInvalidPaymentRequirements Reason = "invalid_payment_requirements"
	ReasonInvalidScheme              Reason = "invalid_scheme"
	ReasonUnsupportedScheme          Reason = "unsupported_scheme"
	ReasonInvalidX402Version         Reason = "invalid_x402_version"
	ReasonInvalidTransactionState    Reason = "invalid_transaction_state"
	ReasonUnexpectedVerifyError      Reason = "unexpected_verify_error"
	ReasonUnexpectedSettleError      Reason = "unexpected_settle_error"
)

// Reason codes used by exact-EVM facilitators beyond the specification's list (the names the
// reference Go facilitator uses).
const (
	ReasonMissingSignature      Reason = "invalid_exact_evm_payload_missing_signature"
	ReasonMissingEIP712Domain   Reason = "invalid_exact_evm_missing_eip712_domain"
	ReasonNonceAlreadyUsed      Reason = "invalid_exact_evm_nonce_already_used"
	ReasonInsufficientBalance   Reason = "invalid_exact_evm_insufficient_balance"
	ReasonSimulationFailed      Reason = "invalid_exact_evm_transaction_simulation_failed"
	ReasonTransactionFailed     Reason = "invalid_exact_evm_transaction_failed"
	ReasonNoMatchingRequirement Reason = "no_matching_payment_requirements"
	// ReasonSettlementPending marks a settlement that was broadcast but is not yet confirmed.
	ReasonSettlementPending Reason = "settlement_pending"
)

// Reason codes of this gateway's answers that are not about the payload itself.
const (
	// ReasonPaymentUsed: the payment settled and was served already; a payment buys one
	// request (the PAYMENT-RESPONSE names its transaction).
	ReasonPaymentUsed Reason = "payment_already_used"
	// ReasonPaymentInFlight: another payment of the same payer is being verified or settled on
	// this route; retry after it (one balance must not buy concurrent upstream calls).
	ReasonPaymentInFlight Reason = "payment_in_flight"
	// ReasonRateLimited: too many refused payments from this client or payer.
	ReasonRateLimited Reason = "rate_limited"
)

// ReasonInvalidPath refuses a request path the gateway cannot canonicalise (a malformed escape, a
// backslash, a control character, ".." above the root), answered with 400.
const ReasonInvalidPath Reason = "invalid_path"

// knownReasons holds every reason code above; TestEveryReasonConstantIsKnown keeps it complete.
var knownReasons = map[Reason]struct{}{
	ReasonInsufficientFunds: {}, ReasonValidAfter: {}, ReasonValidBefore: {}, ReasonValueMismatch: {},
	ReasonSignature: {}, ReasonRecipientMismatch: {}, ReasonInvalidNetwork: {}, ReasonInvalidPayload: {},
	ReasonInvalidPaymentRequirements: {}, ReasonInvalidScheme: {}, ReasonUnsupportedScheme: {},
	ReasonInvalidX402Version: {}, ReasonInvalidTransactionState: {}, ReasonUnexpectedVerifyError: {},
	ReasonUnexpectedSettleError: {}, ReasonMissingSignature: {}, ReasonMissingEIP712Domain: {},
	ReasonNonceAlreadyUsed: {}, ReasonInsufficientBalance: {}, ReasonSimulationFailed: {},
	ReasonTransactionFailed: {}, ReasonNoMatchingRequirement: {}, ReasonSettlementPending: {},
	ReasonPaymentUsed: {}, ReasonPaymentInFlight: {}, ReasonRateLimited: {}, ReasonInvalidPath: {},
}

// Known reports whether r is one of the reason codes this package defines. A facilitator may
// answer any string as a reason; only known ones are fit for a bounded set (a metric label).
func (r Reason) Known() bool {
	_, ok := knownReasons[r]
	return ok
}

// InvalidError says why a payment is not acceptable. It carries the x402 reason code for the
// client and a human message that never contains secrets.
type InvalidError struct {
	Reason  Reason
	Message string
}

// Error implements error.
func (e *InvalidError) Error() string {
	if e.Message == "" {
		return string(e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Message)
}

// Invalid returns an *InvalidError with a formatted message.
func Invalid(reason Reason, format string, args ...any) *InvalidError {
	return &InvalidError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason code of an *InvalidError in err's chain, or "" if there is none.
func ReasonOf(err error) Reason {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}
