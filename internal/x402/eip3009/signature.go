package eip3009

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/x402"
)

// SignatureLen is the length of an EOA signature r ‖ s ‖ v.
const SignatureLen = 65

// secp256k1 group order halved: canonical signatures have s <= n/2.
var secp256k1HalfN = new(big.Int).Rsh(crypto.S256().Params().N, 1)

// ParseSignature decodes a 0x-hex 65-byte r ‖ s ‖ v signature and checks its encoding:
// v ∈ {27, 28} (or {0, 1}), 0 < r, s < n and s <= n/2 (low-s, as OKX and USDC-style tokens
// require). The returned slice has v normalised to 0 or 1, as crypto.Ecrecover expects.
func ParseSignature(s string) ([]byte, error) {
	sig, err := decodeHex(s)
	if err != nil {
		return nil, x402.Invalid(x402.ReasonSignature, "signature is not 0x-prefixed hex")
	}
	if len(sig) != SignatureLen {
		return nil, x402.Invalid(x402.ReasonSignature, "signature is %d bytes; only 65-byte EOA signatures are supported", len(sig))
	}
	v := sig[64]
	if v >= 27 {
		v -= 27
	}
	if v > 1 {
		return nil, x402.Invalid(x402.ReasonSignature, "signature v is %d, want 27 or 28", sig[64])
	}
	r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	if sv.Cmp(secp256k1HalfN) > 0 {
		return nil, x402.Invalid(x402.ReasonSignature, "signature s is in the upper half of the curve order (high-s)")
	}
	if !crypto.ValidateSignatureValues(v, r, sv, true) {
		return nil, x402.Invalid(x402.ReasonSignature, "signature r or s is out of range")
	}
	sig[64] = v
	return sig, nil
}

// Recover returns the address that produced sig (as returned by ParseSignature) over digest.
func Recover(digest common.Hash, sig []byte) (common.Address, error) {
	pub, err := crypto.SigToPub(digest[:], sig)
	if err != nil {
		return common.Address{}, x402.Invalid(x402.ReasonSignature, "signer cannot be recovered: %v", err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}
