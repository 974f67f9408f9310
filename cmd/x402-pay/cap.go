package main

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/insforge/integrations-operator/internal/x402/amount"
)

// DefaultCap is the spending cap, in token units, when neither -max nor -max-atomic is given.
// It follows the reference x402 client, which refuses to pay more than 0.1 USDC unless raised:
// enough for the per-request prices x402 is made for, small enough that a mistyped URL or a
// hostile server cannot take much from a key before a person notices.
const DefaultCap = "0.1"

// DefaultDecimals is the default of -decimals: USDG and USDC, the tokens x402 is used with,
// have 6. Challenges do not say (v2 extra carries only the token's EIP-712 name and version), and
// a figure from the challenge would not be used anyway: it would let the payee move the cap.
const DefaultDecimals = 6

// spendCap is the most one payment may cost, in atomic units of the token.
type spendCap struct {
	atomic   *big.Int
	decimals uint8  // to show amounts in token units
	source   string // "the default", "-max", "-max-atomic"
}

// newCap builds the cap from -max (token units) or -max-atomic; both empty and unset means
// DefaultCap. Setting both is an error.
func newCap(maxTokens, maxAtomic string, maxSet, atomicSet bool, decimals uint) (spendCap, error) {
	if decimals > amount.MaxDecimals {
		return spendCap{}, fmt.Errorf("-decimals %d is more than %d", decimals, amount.MaxDecimals)
	}
	c := spendCap{decimals: uint8(decimals)}
	var err error
	switch {
	case maxSet && atomicSet:
		return spendCap{}, errors.New("set -max (token units) or -max-atomic (atomic units), not both")
	case atomicSet:
		c.source = "-max-atomic"
		if c.atomic, err = amount.ParseAtomic(maxAtomic); err != nil {
			return spendCap{}, fmt.Errorf("-max-atomic: %w", err)
		}
	case maxSet:
		c.source = "-max"
		if c.atomic, err = amount.ParseDecimal(maxTokens, c.decimals); err != nil {
			return spendCap{}, fmt.Errorf("-max: %w", err)
		}
	default:
		c.source = "the default"
		if c.atomic, err = amount.ParseDecimal(DefaultCap, c.decimals); err != nil {
			return spendCap{}, fmt.Errorf("default cap with -decimals %d: %w", decimals, err)
		}
	}
	return c, nil
}

// units shows an atomic amount in token units and atomic units: "0.05 (50000 atomic units)".
func (c spendCap) units(v *big.Int) string {
	return fmt.Sprintf("%s (%s atomic units)", amount.FormatDecimal(v, c.decimals), v)
}

// String describes the cap: "0.1 (100000 atomic units; the default, at 6 decimals)".
func (c spendCap) String() string {
	return fmt.Sprintf("%s (%s atomic units; %s, at %d decimals)", amount.FormatDecimal(c.atomic, c.decimals), c.atomic, c.source, c.decimals)
}

// check refuses a price above the cap.
func (c spendCap) check(price *big.Int) error {
	if price.Cmp(c.atomic) <= 0 {
		return nil
	}
	return fmt.Errorf("the price %s is above the spending cap %s; raise the cap with -max or -max-atomic", c.units(price), c)
}
