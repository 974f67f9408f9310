package mock_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/mock"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// Example shows the gateway's use of these packages for one paid request: decode the header,
// match it against the route's own requirements, check it locally, then verify and settle
// through any facilitator, and answer with PAYMENT-RESPONSE.
func Example() {
	ctx := context.Background()
	offered := []x402.PaymentRequirements{{
		Scheme: x402.SchemeExact, Network: "eip155:196", Amount: "10000",
		Asset: "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8", PayTo: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
		MaxTimeoutSeconds: 300, Extra: map[string]any{"name": "Global Dollar", "version": "1"},
	}}

	// Client side: sign for the first offer and send PAYMENT-SIGNATURE.
	key, _ := crypto.GenerateKey()
	payment, _ := eip3009.NewSigner(key).Sign(offered[0], &x402.ResourceInfo{URL: "https://gw.example/report"})
	header, _ := x402.EncodePaymentSignature(payment)

	// Gateway side.
	var f facilitator.Facilitator = mock.New(mock.Config{Networks: []string{"eip155:196"}})
	p, err := x402.DecodePaymentSignature(header) // malformed → 400 with err's reason
	if err != nil {
		fmt.Println("bad header:", err)
		return
	}
	req, err := x402.Match(p.Accepted, offered) // no match → 402 with the challenge
	if err != nil {
		fmt.Println(x402.ReasonOf(err))
		return
	}
	if _, err := eip3009.VerifyLocal(p, req, time.Now()); err != nil { // → 402, no facilitator call
		fmt.Println(x402.ReasonOf(err))
		return
	}
	v, err := f.Verify(ctx, p, req)
	fmt.Println("valid:", v.Valid, err)
	// ... forward upstream, buffer the response, settle only if it is < 400 ...
	res, err := f.Settle(ctx, p, req)
	switch {
	case err != nil: // nothing was submitted: answer without charging
	case res.State == facilitator.StateSettled: // record, 200 + PAYMENT-RESPONSE
	case res.State == facilitator.StateUnknown: // record as pending, resolve with SettleStatus
	case res.State == facilitator.StateFailed: // 402 + PAYMENT-RESPONSE{success:false}
	}
	receipt, _ := x402.EncodePaymentResponse(res.Response())
	fmt.Println("state:", res.State, "receipt header:", receipt != "")
	// Output:
	// valid: true <nil>
	// state: settled receipt header: true
}
