// Package x402 holds the wire types of the x402 payment protocol (versions 1 and 2), the codecs
// for its HTTP headers, the matching of a client's chosen requirements against a server's own
// offer, and the protocol's error reason codes.
//
// The package is pure: no network, no clocks, no chain access. Signature checks of the "exact"
// EVM scheme live in the eip3009 sub-package; facilitator clients live in internal/facilitator.
package x402
