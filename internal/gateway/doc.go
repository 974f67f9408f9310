// Package gateway is the x402 data plane: an http.Handler that answers priced paths with a 402
// challenge, takes payments (PAYMENT-SIGNATURE, or v1 X-PAYMENT), records each one in the ledger
// before settling it, forwards the request to the upstream and returns the receipt in
// PAYMENT-RESPONSE. Unpriced paths are proxied untouched or refused.
//
// The money rules: a payment is claimed in the ledger (the cross-replica replay lock) before
// the facilitator is asked anything; the row is settling before settle is called, so no money
// can move without a durable record; an unknown settle outcome is recorded as pending, answered
// with 402 settlement_pending and Retry-After (never a fresh challenge), and resolved later by
// the ledger's resolver with Resolver; on afterUpstream routes an upstream status >= 400
// releases the claim and charges nothing.
//
// docs/gateway.md describes the configuration, the answers a payer gets and the metrics.
package gateway
