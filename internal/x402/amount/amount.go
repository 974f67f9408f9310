// Package amount converts token amounts between atomic units (integers, as x402 sends them)
// and decimal token units ("0.01"), exactly and without floating point.
package amount

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MaxDecimals bounds the decimals of a token; ERC-20 tokens use at most 18 in practice and the
// uint8 type allows 255, which would only make 10^decimals needlessly large.
const MaxDecimals = 77

// maxUint256 is the largest value an EVM uint256 can hold.
var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// MaxUint256 returns 2^256-1, the largest atomic amount accepted.
func MaxUint256() *big.Int { return new(big.Int).Set(maxUint256) }

// ParseAtomic parses a canonical atomic-unit amount: ASCII digits only, no sign, no leading
// zeros (except "0" itself), at most 2^256-1.
func ParseAtomic(s string) (*big.Int, error) {
	if s == "" {
		return nil, errors.New("amount is empty")
	}
	if len(s) > 78 { // 2^256-1 has 78 digits
		return nil, fmt.Errorf("amount has %d digits, more than a uint256 holds", len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, fmt.Errorf("amount %q is not a non-negative integer", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return nil, fmt.Errorf("amount %q has a leading zero", s)
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("amount %q is not an integer", s)
	}
	if v.Cmp(maxUint256) > 0 {
		return nil, fmt.Errorf("amount %q exceeds 2^256-1", s)
	}
	return v, nil
}

// FormatAtomic is the canonical atomic-unit string of v (decimal, no sign for v >= 0).
func FormatAtomic(v *big.Int) string { return v.String() }

// ParseDecimal converts a decimal token amount such as "0.01" into atomic units for a token
// with the given decimals ("0.01", 6 → 10000). It refuses more fractional digits than the token
// has rather than round, and refuses signs, exponents and empty parts.
func ParseDecimal(s string, decimals uint8) (*big.Int, error) {
	if decimals > MaxDecimals {
		return nil, fmt.Errorf("decimals %d exceeds %d", decimals, MaxDecimals)
	}
	intPart, fracPart, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && fracPart == "") {
		return nil, fmt.Errorf("decimal amount %q is malformed", s)
	}
	if !allDigits(intPart) || !allDigits(fracPart) {
		return nil, fmt.Errorf("decimal amount %q may contain only digits and one dot", s)
	}
	if len(fracPart) > int(decimals) {
		return nil, fmt.Errorf("decimal amount %q has %d fractional digits, the token has %d decimals", s, len(fracPart), decimals)
	}
	digits := strings.TrimLeft(intPart+fracPart+strings.Repeat("0", int(decimals)-len(fracPart)), "0")
	if digits == "" {
		return new(big.Int), nil
	}
	if len(digits) > 78 {
		return nil, fmt.Errorf("decimal amount %q exceeds 2^256-1 atomic units", s)
	}
	v, _ := new(big.Int).SetString(digits, 10)
	if v.Cmp(maxUint256) > 0 {
		return nil, fmt.Errorf("decimal amount %q exceeds 2^256-1 atomic units", s)
	}
	return v, nil
}

// FormatDecimal renders atomic units as a decimal token amount with trailing fractional zeros
// removed (10000, 6 → "0.01"; 1000000, 6 → "1"). Negative values keep their sign.
func FormatDecimal(v *big.Int, decimals uint8) string {
	neg := v.Sign() < 0
	digits := new(big.Int).Abs(v).String()
	d := int(decimals)
	if len(digits) <= d {
		digits = strings.Repeat("0", d-len(digits)+1) + digits
	}
	intPart, fracPart := digits[:len(digits)-d], strings.TrimRight(digits[len(digits)-d:], "0")
	out := intPart
	if fracPart != "" {
		out += "." + fracPart
	}
	if neg {
		out = "-" + out
	}
	return out
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
