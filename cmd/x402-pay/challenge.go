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

// challenge is a 402 answer's payment options.
type challenge struct {
	version  int // x402.Version2
	resource *x402.ResourceInfo
	offers   []offer
}

// offer is one way to pay; network is the server's own spelling of req.Network.
type offer struct {
	req     x402.PaymentRequirements
	network string
}

// challengeOf reads the challenge of a 402 answer: the v2 PAYMENT-REQUIRED header, else the JSON
// body, which v2 servers may repeat the challenge in.
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
	default:
		return challenge{}, fmt.Errorf("the 402 answer has no %s header and its body has x402Version %d; version 2 is supported",
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

// receiptOf reads the settlement receipt from PAYMENT-RESPONSE.
func receiptOf(h http.Header) (x402.SettleResponse, bool) {
	if v := h.Get(x402.HeaderPaymentResponse); v != "" {
		sr, err := x402.DecodePaymentResponse(v)
		return sr, err == nil
	}
	return x402.SettleResponse{}, false
}
