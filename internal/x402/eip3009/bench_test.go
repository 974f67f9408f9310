package eip3009

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func BenchmarkVerifyLocal(b *testing.B) {
	s := testSigner(b)
	req := testRequirements()
	p, err := s.Sign(req, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyLocal(p, req, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	d := Domain{Name: "Global Dollar", Version: "1", ChainID: big.NewInt(196), VerifyingContract: common.HexToAddress(usdg)}
	a := fixedAuthorization()
	b.ReportAllocs()
	for b.Loop() {
		_ = a.Digest(d)
	}
}

// Baseline: go-ethereum's generic EIP-712 encoder (apitypes.TypedDataAndHash).
func BenchmarkDigestGethTypedData(b *testing.B) {
	d := Domain{Name: "Global Dollar", Version: "1", ChainID: big.NewInt(196), VerifyingContract: common.HexToAddress(usdg)}
	a := fixedAuthorization()
	b.ReportAllocs()
	for b.Loop() {
		_ = referenceDigest(b, d, a)
	}
}

func BenchmarkSign(b *testing.B) {
	s := testSigner(b)
	s.Rand = nil
	req := testRequirements()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(req, nil); err != nil {
			b.Fatal(err)
		}
	}
}
