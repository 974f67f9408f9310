package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// payment is a decoded payment that passed the local checks.
type payment struct {
	version  int                 // 1 (X-PAYMENT) or 2 (PAYMENT-SIGNATURE)
	payload  x402.PaymentPayload // always v2 form: what facilitators receive
	raw      []byte              // payload as JSON, stored in the ledger for the resolver
	payer    string              // recovered signer == authorization.from (checksummed)
	nonce    string              // 0x-hex, lower case
	verified eip3009.Verified
}

// paymentError is a refused payment: status 400 (malformed) or 402 (not acceptable).
type paymentError struct {
	status int
	reason x402.Reason
	msg    string
}

func (e *paymentError) Error() string { return string(e.reason) + ": " + e.msg }

// hasPayment reports whether the request carries a payment header.
func hasPayment(r *http.Request) bool {
	return r.Header.Get(x402.HeaderPaymentSignature) != "" || r.Header.Get(x402.HeaderXPayment) != ""
}

// decodePayment reads PAYMENT-SIGNATURE (or X-PAYMENT), matches it against the route and runs
// the local checks (signature recovery included), so that nothing unsigned reaches the ledger.
func (h *Handler) decodePayment(r *http.Request, rt *route, now time.Time) (*payment, *paymentError) {
	var p payment
	if v := r.Header.Get(x402.HeaderPaymentSignature); v != "" {
		pl, err := x402.DecodePaymentSignature(v)
		if err != nil {
			return nil, headerError(err)
		}
		if _, err := x402.Match(pl.Accepted, rt.offer); err != nil {
			return nil, refused(err)
		}
		p.version, p.payload = x402.Version2, pl
	} else {
		v1, err := x402.DecodeXPayment(r.Header.Get(x402.HeaderXPayment))
		if err != nil {
			return nil, headerError(err)
		}
		if v1.Scheme != x402.SchemeExact {
			return nil, &paymentError{http.StatusPaymentRequired, x402.ReasonUnsupportedScheme, "scheme " + v1.Scheme + " is not supported"}
		}
		if v1.Network != rt.req.Network {
			return nil, &paymentError{http.StatusPaymentRequired, x402.ReasonInvalidNetwork, "network " + v1.Network + " is not " + rt.req.Network}
		}
		// v1 carries no copy of the requirements: it accepted ours by scheme and network.
		p.version = x402.Version1
		p.payload = x402.PaymentPayload{X402Version: x402.Version2, Accepted: rt.req, Payload: v1.Payload}
	}
	v, err := h.verifier.Verify(p.payload, rt.req, now)
	if err != nil {
		return nil, refused(err)
	}
	raw, err := json.Marshal(p.payload)
	if err != nil {
		return nil, &paymentError{http.StatusBadRequest, x402.ReasonInvalidPayload, "payload cannot be re-encoded"}
	}
	p.raw = raw
	p.verified = v
	p.payer = v.PayerHex
	p.nonce = strings.ToLower(hexutil.Encode(v.Authorization.Nonce[:]))
	return &p, nil
}

func headerError(err error) *paymentError {
	var he *x402.HeaderError
	if errors.As(err, &he) {
		return &paymentError{http.StatusBadRequest, he.Reason(), he.Error()}
	}
	return &paymentError{http.StatusBadRequest, x402.ReasonInvalidPayload, "malformed payment header"}
}

func refused(err error) *paymentError {
	var ie *x402.InvalidError
	if errors.As(err, &ie) {
		return &paymentError{http.StatusPaymentRequired, ie.Reason, ie.Message}
	}
	return &paymentError{http.StatusPaymentRequired, x402.ReasonInvalidPayload, "payment refused"}
}
