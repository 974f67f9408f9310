package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"

	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/amount"
)

// challenge is a 402 answer's payment options, v1 or v2, in one form.
type challenge struct {
	version  int // x402.Version1 or x402.Version2
	resource *x402.ResourceInfo
	offers   []offer
}

// offer is one way to pay. req is in the v2 form the signer takes (amount = v1
// maxAmountRequired, network as CAIP-2); network is the server's own spelling, which a v1 payment
// repeats.
type offer struct {
	req     x402.PaymentRequirements
	network string
}

// challengeOf reads the challenge of a 402 answer: the v2 PAYMENT-REQUIRED header, else the JSON
// body, which v1 servers use ({"x402Version":1,"accepts":[{"maxAmountRequired":…}]}) and v2
// servers may repeat the challenge in.
func challengeOf(r reply) (challenge, error) {
	if h := r.header.Get(x402.HeaderPaymentRequired); h != "" {
		pr, err := x402.DecodePaymentRequired(h)
		if err != nil {
			return challenge{}, err
		}
		return fromV2(pr), nil
	}
	body := bytes.TrimSpace(r.body)
	var head struct {
		X402Version int `json:"x402Version"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return challenge{}, fmt.Errorf("the 402 answer has no %s header and its body is no x402 challenge", x402.HeaderPaymentRequired)
	}
	switch head.X402Version {
	case x402.Version2:
		var pr x402.PaymentRequired
		if err := json.Unmarshal(body, &pr); err != nil {
			return challenge{}, fmt.Errorf("the 402 body is not an x402 v2 challenge: %v", err)
		}
		return fromV2(pr), nil
	case x402.Version1:
		var pr x402.PaymentRequirementsResponseV1
		if err := json.Unmarshal(body, &pr); err != nil {
			return challenge{}, fmt.Errorf("the 402 body is not an x402 v1 challenge: %v", err)
		}
		return fromV1(pr), nil
	default:
		return challenge{}, fmt.Errorf("the 402 answer has no %s header and its body has x402Version %d; versions 1 and 2 are supported",
			x402.HeaderPaymentRequired, head.X402Version)
	}
}

func fromV2(pr x402.PaymentRequired) challenge {
	c := challenge{version: x402.Version2, resource: pr.Resource}
	for _, a := range pr.Accepts {
		c.offers = append(c.offers, offer{req: a, network: a.Network})
	}
	return c
}

func fromV1(pr x402.PaymentRequirementsResponseV1) challenge {
	c := challenge{version: x402.Version1}
	for _, a := range pr.Accepts {
		network := a.Network
		if id, ok := v1Networks[network]; ok {
			network = id
		}
		c.offers = append(c.offers, offer{network: a.Network, req: x402.PaymentRequirements{
			Scheme: a.Scheme, Network: network, Amount: a.MaxAmountRequired, Asset: a.Asset,
			PayTo: a.PayTo, MaxTimeoutSeconds: a.MaxTimeoutSeconds, Extra: a.Extra,
		}})
		if c.resource == nil && a.Resource != "" {
			c.resource = &x402.ResourceInfo{URL: a.Resource, Description: a.Description, MimeType: a.MimeType}
		}
	}
	return c
}

// v1Networks maps the v1 names of some EVM networks to CAIP-2 ids, which the EIP-712 domain
// needs (its chain id). v1 servers may also write CAIP-2 ids, as this project's gateway does.
var v1Networks = map[string]string{
	"base":           "eip155:8453",
	"base-sepolia":   "eip155:84532",
	"avalanche":      "eip155:43114",
	"avalanche-fuji": "eip155:43113",
	"polygon":        "eip155:137",
	"polygon-amoy":   "eip155:80002",
}

// choose picks the first exact EVM offer whose price is within the cap. When every such offer
// costs more, the error names the cheapest price and the cap.
func choose(c challenge, limit spendCap) (offer, *big.Int, error) {
	var cheapest *big.Int
	var skipped []string
	for _, o := range c.offers {
		r := o.req
		if r.Scheme != x402.SchemeExact || !strings.HasPrefix(r.Network, "eip155:") {
			skipped = append(skipped, r.Scheme+" on "+o.network)
			continue
		}
		price, err := amount.ParseAtomic(r.Amount)
		if err != nil || r.Asset == "" || r.PayTo == "" {
			skipped = append(skipped, "a malformed offer on "+o.network)
			continue
		}
		if limit.check(price) != nil {
			if cheapest == nil || price.Cmp(cheapest) < 0 {
				cheapest = price
			}
			continue
		}
		return o, price, nil
	}
	if cheapest != nil {
		return offer{}, nil, limit.check(cheapest)
	}
	if len(skipped) == 0 {
		return offer{}, nil, errors.New("the challenge offers no way to pay")
	}
	return offer{}, nil, fmt.Errorf("no exact EVM payment option offered (offered: %s)", strings.Join(skipped, ", "))
}

// receiptOf reads the settlement receipt: PAYMENT-RESPONSE (v2) or X-PAYMENT-RESPONSE (v1).
func receiptOf(h http.Header) (x402.SettleResponse, bool) {
	if v := h.Get(x402.HeaderPaymentResponse); v != "" {
		sr, err := x402.DecodePaymentResponse(v)
		return sr, err == nil
	}
	if v := h.Get(x402.HeaderXPaymentResponse); v != "" {
		sr, err := x402.DecodeXPaymentResponse(v)
		return x402.SettleResponse{Success: sr.Success, ErrorReason: sr.ErrorReason, Payer: sr.Payer, Transaction: sr.Transaction, Network: sr.Network}, err == nil
	}
	return x402.SettleResponse{}, false
}
