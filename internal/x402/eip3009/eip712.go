// Package eip3009 implements the exact EVM scheme of x402 with EIP-3009
// TransferWithAuthorization: EIP-712 hashing, signer recovery, the local checks a server makes
// before it spends a facilitator call, a client-side signer, and a check of a configured EIP-712
// domain against a token's on-chain DOMAIN_SEPARATOR().
package eip3009

import (
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/caip2"
)

// Type strings and their hashes (EIP-712 typeHash). Tests recompute the hashes from the strings.
const (
	DomainType                    = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
	TransferWithAuthorizationType = "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)

// Precomputed keccak256 of DomainType and TransferWithAuthorizationType.
var (
	domainTypeHash   = common.HexToHash("0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f")
	transferTypeHash = common.HexToHash("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267")
)

// Domain is an EIP-712 domain of an EIP-3009 token.
type Domain struct {
	Name              string
	Version           string
	ChainID           *big.Int
	VerifyingContract common.Address
}

// DomainFor builds the token domain named by requirements: extra.name and extra.version, the
// chain id of the CAIP-2 network and the asset address.
func DomainFor(req x402.PaymentRequirements) (Domain, error) {
	name, version, ok := req.EIP712Domain()
	if !ok {
		return Domain{}, x402.Invalid(x402.ReasonMissingEIP712Domain, "requirements extra lacks the token's EIP-712 name and version")
	}
	chainID, err := caip2.ParseEVM(req.Network)
	if err != nil {
		return Domain{}, x402.Invalid(x402.ReasonInvalidNetwork, "%v", err)
	}
	if !common.IsHexAddress(req.Asset) {
		return Domain{}, x402.Invalid(x402.ReasonInvalidPaymentRequirements, "asset %q is not an address", req.Asset)
	}
	return Domain{Name: name, Version: version, ChainID: chainID, VerifyingContract: common.HexToAddress(req.Asset)}, nil
}

// Separator returns the EIP-712 domain separator:
// keccak256(abi.encode(typeHash, keccak256(name), keccak256(version), chainId, verifyingContract)).
func (d Domain) Separator() common.Hash {
	var buf [5 * 32]byte
	copy(buf[0:32], domainTypeHash[:])
	copy(buf[32:64], crypto.Keccak256([]byte(d.Name)))
	copy(buf[64:96], crypto.Keccak256([]byte(d.Version)))
	putUint256(buf[96:128], d.ChainID)
	copy(buf[128+12:160], d.VerifyingContract[:])
	return crypto.Keccak256Hash(buf[:])
}

// Authorization is a decoded EIP-3009 TransferWithAuthorization message.
type Authorization struct {
	From        common.Address
	To          common.Address
	Value       *big.Int
	ValidAfter  *big.Int // unix seconds
	ValidBefore *big.Int // unix seconds
	Nonce       [32]byte
}

// StructHash returns hashStruct(TransferWithAuthorization).
func (a Authorization) StructHash() common.Hash {
	var buf [7 * 32]byte
	copy(buf[0:32], transferTypeHash[:])
	copy(buf[32+12:64], a.From[:])
	copy(buf[64+12:96], a.To[:])
	putUint256(buf[96:128], a.Value)
	putUint256(buf[128:160], a.ValidAfter)
	putUint256(buf[160:192], a.ValidBefore)
	copy(buf[192:224], a.Nonce[:])
	return crypto.Keccak256Hash(buf[:])
}

// Digest returns the EIP-712 digest the payer signs: keccak256(0x1901 ‖ domainSeparator ‖ structHash).
func (a Authorization) Digest(d Domain) common.Hash {
	return TypedDataDigest(d.Separator(), a.StructHash())
}

// TypedDataDigest combines a domain separator and a struct hash into an EIP-712 digest.
func TypedDataDigest(domainSeparator, structHash common.Hash) common.Hash {
	var buf [2 + 64]byte
	buf[0], buf[1] = 0x19, 0x01
	copy(buf[2:34], domainSeparator[:])
	copy(buf[34:66], structHash[:])
	return crypto.Keccak256Hash(buf[:])
}

// ParseAuthorization decodes the wire form. Values must be canonical decimal integers that fit
// in uint256; addresses 20-byte hex; the nonce exactly 32 bytes of hex.
func ParseAuthorization(w x402.Authorization) (Authorization, error) {
	var a Authorization
	var err error
	if a.From, err = parseAddress("from", w.From); err != nil {
		return Authorization{}, err
	}
	if a.To, err = parseAddress("to", w.To); err != nil {
		return Authorization{}, err
	}
	if a.Value, err = parseUint("value", w.Value); err != nil {
		return Authorization{}, err
	}
	if a.ValidAfter, err = parseUint("validAfter", w.ValidAfter); err != nil {
		return Authorization{}, err
	}
	if a.ValidBefore, err = parseUint("validBefore", w.ValidBefore); err != nil {
		return Authorization{}, err
	}
	n, err := decodeHex(w.Nonce)
	if err != nil || len(n) != 32 {
		return Authorization{}, x402.Invalid(x402.ReasonInvalidPayload, "authorization.nonce must be 0x followed by 32 bytes of hex")
	}
	copy(a.Nonce[:], n)
	return a, nil
}

// Wire returns the wire form of the authorization.
func (a Authorization) Wire() x402.Authorization {
	return x402.Authorization{
		From:        a.From.Hex(),
		To:          a.To.Hex(),
		Value:       a.Value.String(),
		ValidAfter:  a.ValidAfter.String(),
		ValidBefore: a.ValidBefore.String(),
		Nonce:       "0x" + common.Bytes2Hex(a.Nonce[:]),
	}
}

func parseAddress(field, s string) (common.Address, error) {
	b, err := decodeHex(s)
	if err != nil || len(b) != common.AddressLength {
		return common.Address{}, x402.Invalid(x402.ReasonInvalidPayload, "authorization.%s is not a 20-byte hex address", field)
	}
	return common.BytesToAddress(b), nil
}

func parseUint(field, s string) (*big.Int, error) {
	// Same rules as amount.ParseAtomic, inlined to keep the hot path free of error formatting.
	if s == "" || len(s) > 78 || (len(s) > 1 && s[0] == '0') {
		return nil, x402.Invalid(x402.ReasonInvalidPayload, "authorization.%s is not a canonical decimal integer", field)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, x402.Invalid(x402.ReasonInvalidPayload, "authorization.%s is not a canonical decimal integer", field)
		}
	}
	v, _ := new(big.Int).SetString(s, 10)
	if v.BitLen() > 256 {
		return nil, x402.Invalid(x402.ReasonInvalidPayload, "authorization.%s exceeds uint256", field)
	}
	return v, nil
}

// decodeHex decodes 0x-prefixed hex (either case).
func decodeHex(s string) ([]byte, error) {
	if len(s) < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return nil, fmt.Errorf("missing 0x prefix")
	}
	s = s[2:]
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("odd hex length")
	}
	out := make([]byte, len(s)/2)
	for i := 0; i < len(out); i++ {
		hi, ok1 := fromHexChar(s[2*i])
		lo, ok2 := fromHexChar(s[2*i+1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("invalid hex digit")
		}
		out[i] = hi<<4 | lo
	}
	return out, nil
}

func fromHexChar(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// putUint256 writes v (0 <= v < 2^256) big-endian into a 32-byte slot.
func putUint256(dst []byte, v *big.Int) {
	if v == nil {
		return
	}
	if v.IsUint64() {
		binary.BigEndian.PutUint64(dst[24:32], v.Uint64())
		return
	}
	v.FillBytes(dst[:32])
}
