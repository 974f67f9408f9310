// Package caip2 parses CAIP-2 blockchain ids such as "eip155:196".
package caip2

import (
	"fmt"
	"math/big"
	"strings"
)

// NamespaceEIP155 is the CAIP-2 namespace of EVM chains.
const NamespaceEIP155 = "eip155"

// ChainID is a parsed CAIP-2 chain id.
type ChainID struct {
	Namespace string // [-a-z0-9]{3,8}
	Reference string // [-_a-zA-Z0-9]{1,32}
}

// String returns the "namespace:reference" form.
func (c ChainID) String() string { return c.Namespace + ":" + c.Reference }

// Parse parses and validates a CAIP-2 chain id.
func Parse(s string) (ChainID, error) {
	ns, ref, ok := strings.Cut(s, ":")
	if !ok {
		return ChainID{}, fmt.Errorf("chain id %q: want namespace:reference", s)
	}
	if len(ns) < 3 || len(ns) > 8 || !only(ns, isNamespaceByte) {
		return ChainID{}, fmt.Errorf("chain id %q: namespace must be 3-8 of [-a-z0-9]", s)
	}
	if len(ref) < 1 || len(ref) > 32 || !only(ref, isReferenceByte) {
		return ChainID{}, fmt.Errorf("chain id %q: reference must be 1-32 of [-_a-zA-Z0-9]", s)
	}
	return ChainID{Namespace: ns, Reference: ref}, nil
}

// EVMChainID returns the numeric chain id of an eip155 chain. The reference must be a decimal
// integer without leading zeros, as EIP-155 chain ids are written in CAIP-2.
func (c ChainID) EVMChainID() (*big.Int, error) {
	if c.Namespace != NamespaceEIP155 {
		return nil, fmt.Errorf("chain id %s is not an EVM (eip155) chain", c)
	}
	if !only(c.Reference, func(b byte) bool { return b >= '0' && b <= '9' }) || (len(c.Reference) > 1 && c.Reference[0] == '0') {
		return nil, fmt.Errorf("chain id %s: eip155 reference must be a decimal number", c)
	}
	id, _ := new(big.Int).SetString(c.Reference, 10)
	if id.Sign() == 0 {
		return nil, fmt.Errorf("chain id %s: eip155 chain id must be positive", c)
	}
	return id, nil
}

// ParseEVM parses an eip155 CAIP-2 id and returns its numeric chain id.
func ParseEVM(s string) (*big.Int, error) {
	c, err := Parse(s)
	if err != nil {
		return nil, err
	}
	return c.EVMChainID()
}

// EIP155 formats an EVM chain id as CAIP-2 ("eip155:<id>").
func EIP155(chainID *big.Int) string { return NamespaceEIP155 + ":" + chainID.String() }

func isNamespaceByte(b byte) bool {
	return b == '-' || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9')
}

func isReferenceByte(b byte) bool {
	return b == '-' || b == '_' || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
}

func only(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}
