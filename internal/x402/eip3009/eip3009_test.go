package eip3009

import (
	"bytes"
	"crypto/ecdsa"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// Well-known development key (account #0 of the common dev mnemonic) and its address.
const (
	devKeyHex  = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
	devAddress = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	usdg       = "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8"
	merchant   = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
)

func devKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.HexToECDSA(devKeyHex)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTypeHashes(t *testing.T) {
	if got := crypto.Keccak256Hash([]byte(DomainType)); got != domainTypeHash {
		t.Fatalf("domain typehash = %s", got)
	}
	if got := crypto.Keccak256Hash([]byte(TransferWithAuthorizationType)); got != transferTypeHash {
		t.Fatalf("transfer typehash = %s", got)
	}
}

// The USDG values were recomputed independently (research note §6.4); Global Dollar/1 equals the
// DOMAIN_SEPARATOR() read from X Layer.
func TestUSDGDomainSeparator(t *testing.T) {
	tests := []struct{ name, version, want string }{
		{"Global Dollar", "1", "0x415f0706e345fcaf25d5be24c4fd7830d0054fc5742c51a0db9319c759bd3743"},
		{"Global Dollar", "2", "0xf7b08876d0d96d48af87e364027f929852bad8465211bfb62014b19796ec864f"},
		{"USDG", "1", "0xc8b706b087e56982369aaf187940509e8f68a440385b126ed6738fa58be47e3c"},
		{"USDG", "2", "0xc1cf79ae265d5e1b7c1140612512879ef196b0915ccff7f5b46b91443e17df2a"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.version, func(t *testing.T) {
			d := Domain{Name: tt.name, Version: tt.version, ChainID: big.NewInt(196), VerifyingContract: common.HexToAddress(usdg)}
			if got := d.Separator().Hex(); got != tt.want {
				t.Fatalf("separator = %s, want %s", got, tt.want)
			}
		})
	}
}

// referenceDigest computes the digest with go-ethereum's generic EIP-712 encoder, an
// implementation independent of ours.
func referenceDigest(t testing.TB, d Domain, a Authorization) common.Hash {
	t.Helper()
	td := apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {{Name: "name", Type: "string"}, {Name: "version", Type: "string"}, {Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"}},
			"TransferWithAuthorization": {
				{Name: "from", Type: "address"}, {Name: "to", Type: "address"}, {Name: "value", Type: "uint256"},
				{Name: "validAfter", Type: "uint256"}, {Name: "validBefore", Type: "uint256"}, {Name: "nonce", Type: "bytes32"},
			},
		},
		PrimaryType: "TransferWithAuthorization",
		Domain:      apitypes.TypedDataDomain{Name: d.Name, Version: d.Version, ChainId: (*math.HexOrDecimal256)(d.ChainID), VerifyingContract: d.VerifyingContract.Hex()},
		Message: apitypes.TypedDataMessage{
			"from": a.From.Hex(), "to": a.To.Hex(), "value": a.Value, "validAfter": a.ValidAfter,
			"validBefore": a.ValidBefore, "nonce": hexutil.Encode(a.Nonce[:]),
		},
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	return common.BytesToHash(h)
}

func fixedAuthorization() Authorization {
	var nonce [32]byte
	copy(nonce[:], bytes.Repeat([]byte{0xa5}, 32))
	return Authorization{
		From: common.HexToAddress(devAddress), To: common.HexToAddress(merchant),
		Value: big.NewInt(10000), ValidAfter: big.NewInt(1740672089), ValidBefore: big.NewInt(1740672389), Nonce: nonce,
	}
}

func TestDigestMatchesGethTypedData(t *testing.T) {
	d := Domain{Name: "Global Dollar", Version: "1", ChainID: big.NewInt(196), VerifyingContract: common.HexToAddress(usdg)}
	tests := []struct {
		name   string
		mutate func(*Authorization)
	}{
		{"fixed", func(*Authorization) {}},
		{"zero times", func(a *Authorization) { a.ValidAfter = big.NewInt(0) }},
		{"max value", func(a *Authorization) {
			a.Value = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
		}},
		{"large times", func(a *Authorization) { a.ValidBefore = new(big.Int).Lsh(big.NewInt(1), 70) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fixedAuthorization()
			tt.mutate(&a)
			if got, want := a.Digest(d), referenceDigest(t, d, a); got != want {
				t.Fatalf("digest = %s, geth says %s", got, want)
			}
		})
	}
}

func TestSignatureFromFixedKey(t *testing.T) {
	s := NewSigner(devKey(t))
	if s.Address().Hex() != devAddress {
		t.Fatalf("address = %s", s.Address().Hex())
	}
	d := Domain{Name: "Global Dollar", Version: "1", ChainID: big.NewInt(196), VerifyingContract: common.HexToAddress(usdg)}
	sig, err := s.SignAuthorization(d, fixedAuthorization())
	if err != nil {
		t.Fatal(err)
	}
	// RFC 6979 signatures are deterministic; this pins the bytes so a change in hashing or in the
	// v encoding cannot go unnoticed.
	const want = "0x876e3ad216c418165e16c7face6226c1599c94407e8936a6b2cc464b0d543a87" +
		"0847dd9d0e8ad6999b753a851e8c71fcbf0d03dfabd31f1c4a7eff9b82e5d1ff" + "1b"
	if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
		t.Fatalf("signature %x has bad shape", sig)
	}
	parsed, err := ParseSignature(hexutil.Encode(sig))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := Recover(fixedAuthorization().Digest(d), parsed)
	if err != nil || signer.Hex() != devAddress {
		t.Fatalf("recovered %s, %v", signer.Hex(), err)
	}
	if got := hexutil.Encode(sig); got != want {
		t.Fatalf("signature = %s, want the pinned %s", got, want)
	}
}
