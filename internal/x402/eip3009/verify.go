package eip3009

import (
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/insforge/integrations-operator/internal/x402"
)

// DefaultValidBeforeBuffer is how long an authorization must stay valid after verification:
// settlement needs a block or two, so one that expires sooner would fail on chain.
const DefaultValidBeforeBuffer = 6 * time.Second

// ValiditySkew is how far past now + maxTimeoutSeconds an authorization's validBefore may lie:
// room for a payer's clock running ahead, and no more. Without an upper bound a payment signed
// to stay valid for decades would be a standing key to its resource (the x402 exact scheme has
// clients sign validBefore = now + maxTimeoutSeconds).
const ValiditySkew = 60 * time.Second

// Verified is an exact EVM payment that passed the local checks.
type Verified struct {
	Payer         common.Address
	PayerHex      string // Payer in EIP-55 form, as facilitators report it (checksumming costs a keccak)
	Authorization Authorization
	Signature     []byte // 65 bytes, v normalised to 0/1
	Domain        Domain
}

// SignatureBytes returns the signature with v as 27/28, the form token contracts expect.
func (v Verified) SignatureBytes() []byte {
	out := append([]byte(nil), v.Signature...)
	if len(out) == SignatureLen && out[64] < 27 {
		out[64] += 27
	}
	return out
}

// Verifier makes the checks a careful server makes on an exact EVM payment before it spends a
// facilitator call. The zero value uses DefaultValidBeforeBuffer.
type Verifier struct {
	// ValidBeforeBuffer is the minimum remaining validity; 0 means DefaultValidBeforeBuffer.
	ValidBeforeBuffer time.Duration
	// Cache, if set, remembers recovered signers, decoded payloads and domain separators, so
	// that re-checking the same payment skips decoding, hashing and recovery. Share one cache
	// between the checks of one process.
	Cache *RecoverCache
}

// VerifyLocal runs the default Verifier.
func VerifyLocal(p x402.PaymentPayload, req x402.PaymentRequirements, now time.Time) (Verified, error) {
	return Verifier{}.Verify(p, req, now)
}

// Verify checks payment p against the server's own requirements req at time now. On failure
// the error is an *x402.InvalidError carrying the x402 reason (see x402.ReasonOf). The checks:
// version 2, scheme exact, same network, accepted asset/payTo/amount equal to req, EIP-712
// domain present, well-formed authorization, to == payTo, value == amount exactly,
// validAfter <= now, validAfter < validBefore, now + buffer <= validBefore <= now +
// maxTimeoutSeconds + ValiditySkew (when req sets maxTimeoutSeconds), a 65-byte low-s signature, and recovered
// signer == from.
func (vf Verifier) Verify(p x402.PaymentPayload, req x402.PaymentRequirements, now time.Time) (Verified, error) {
	if p.X402Version != x402.Version2 {
		return Verified{}, x402.Invalid(x402.ReasonInvalidX402Version, "x402Version is %d, want 2", p.X402Version)
	}
	if req.Scheme != x402.SchemeExact || p.Accepted.Scheme != x402.SchemeExact {
		return Verified{}, x402.Invalid(x402.ReasonUnsupportedScheme, "scheme %q is not supported, want exact", p.Accepted.Scheme)
	}
	if p.Accepted.Network != req.Network {
		return Verified{}, x402.Invalid(x402.ReasonInvalidNetwork, "network %q does not match %q", p.Accepted.Network, req.Network)
	}
	if !strings.EqualFold(p.Accepted.Asset, req.Asset) || !strings.EqualFold(p.Accepted.PayTo, req.PayTo) || p.Accepted.Amount != req.Amount {
		return Verified{}, x402.Invalid(x402.ReasonNoMatchingRequirement, "accepted requirements differ from the server's")
	}
	domain, sep, err := vf.Cache.domain(req)
	if err != nil {
		return Verified{}, err
	}
	// A payload with exactly these bytes that passed before needs no decoding, hashing or
	// recovery again: those depend on the bytes and the domain only.
	known := vf.Cache.checked(p.Payload, sep)
	var exact x402.ExactEVMPayload
	var auth Authorization
	if known != nil {
		auth = known.auth.clone()
	} else {
		if exact, err = p.ExactEVM(); err != nil {
			return Verified{}, err
		}
		if auth, err = ParseAuthorization(exact.Authorization); err != nil {
			return Verified{}, err
		}
	}
	if !common.IsHexAddress(req.PayTo) || auth.To != common.HexToAddress(req.PayTo) {
		return Verified{}, x402.Invalid(x402.ReasonRecipientMismatch, "authorization.to %s is not payTo %s", auth.To.Hex(), req.PayTo)
	}
	price, ok := new(big.Int).SetString(req.Amount, 10)
	if !ok {
		return Verified{}, x402.Invalid(x402.ReasonInvalidPaymentRequirements, "amount %q is not an integer", req.Amount)
	}
	if auth.Value.Cmp(price) != 0 {
		return Verified{}, x402.Invalid(x402.ReasonValueMismatch, "authorization.value %s is not the price %s", auth.Value, price)
	}
	if auth.ValidAfter.Cmp(big.NewInt(now.Unix())) > 0 {
		return Verified{}, x402.Invalid(x402.ReasonValidAfter, "authorization is not valid before %s", auth.ValidAfter)
	}
	buffer := vf.ValidBeforeBuffer
	if buffer <= 0 {
		buffer = DefaultValidBeforeBuffer
	}
	if auth.ValidBefore.Cmp(big.NewInt(now.Add(buffer).Unix())) < 0 {
		return Verified{}, x402.Invalid(x402.ReasonValidBefore, "authorization expires at %s, too soon to settle", auth.ValidBefore)
	}
	if auth.ValidAfter.Cmp(auth.ValidBefore) >= 0 {
		return Verified{}, x402.Invalid(x402.ReasonValidAfter, "validAfter %s is not before validBefore %s", auth.ValidAfter, auth.ValidBefore)
	}
	if req.MaxTimeoutSeconds > 0 {
		limit := now.Add(time.Duration(req.MaxTimeoutSeconds)*time.Second + ValiditySkew).Unix()
		if auth.ValidBefore.Cmp(big.NewInt(limit)) > 0 {
			return Verified{}, x402.Invalid(x402.ReasonValidBefore,
				"authorization is valid until %s, longer than maxTimeoutSeconds (%d) allows", auth.ValidBefore, req.MaxTimeoutSeconds)
		}
	}
	var sig []byte
	var signer common.Address
	var signerHex string
	if known != nil {
		sig, signer, signerHex = clone(known.sig), known.signer, known.signerHex
	} else {
		if sig, err = ParseSignature(exact.Signature); err != nil {
			return Verified{}, err
		}
		if signer, err = vf.Cache.recover(TypedDataDigest(sep, auth.StructHash()), sig); err != nil {
			return Verified{}, err
		}
	}
	if signer != auth.From {
		return Verified{}, x402.Invalid(x402.ReasonSignature, "signature is not from authorization.from %s", auth.From.Hex())
	}
	if known == nil {
		signerHex = signer.Hex()
		vf.Cache.remember(p.Payload, sep, auth, sig, signer, signerHex)
	}
	return Verified{Payer: signer, PayerHex: signerHex, Authorization: auth, Signature: sig, Domain: domain}, nil
}
