package eip3009

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/insforge/integrations-operator/internal/testutil/cpustat"
)

func BenchmarkVerifyLocal(b *testing.B) {
	s := testSigner(b)
	req := testRequirements()
	p, err := s.Sign(req, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	for b.Loop() {
		if _, err := VerifyLocal(p, req, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// The same payment checked again with a shared RecoverCache (what a settle after a verify costs).
func BenchmarkVerifyLocalCached(b *testing.B) {
	s := testSigner(b)
	req := testRequirements()
	p, err := s.Sign(req, nil)
	if err != nil {
		b.Fatal(err)
	}
	vf := Verifier{Cache: NewRecoverCache(1024)}
	if _, err := vf.Verify(p, req, testNow); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	for b.Loop() {
		if _, err := vf.Verify(p, req, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	d := Domain{Name: "Global Dollar", Version: "1", ChainID: big.NewInt(196), VerifyingContract: common.HexToAddress(usdg)}
	a := fixedAuthorization()
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	for b.Loop() {
		_ = a.Digest(d)
	}
}

// Baseline: go-ethereum's generic EIP-712 encoder (apitypes.TypedDataAndHash).
func BenchmarkDigestGethTypedData(b *testing.B) {
	d := Domain{Name: "Global Dollar", Version: "1", ChainID: big.NewInt(196), VerifyingContract: common.HexToAddress(usdg)}
	a := fixedAuthorization()
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	for b.Loop() {
		_ = referenceDigest(b, d, a)
	}
}

func BenchmarkSign(b *testing.B) {
	s := testSigner(b)
	s.Rand = nil
	req := testRequirements()
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	for b.Loop() {
		if _, err := s.Sign(req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// Baseline: the signer recovery alone (go-ethereum crypto.SigToPub, pure Go without cgo), the
// floor of any EIP-3009 signature check.
func BenchmarkRecoverBaseline(b *testing.B) {
	s := testSigner(b)
	d := Domain{Name: "Global Dollar", Version: "1", ChainID: big.NewInt(196), VerifyingContract: common.HexToAddress(usdg)}
	a := fixedAuthorization()
	sig, err := s.SignAuthorization(d, a)
	if err != nil {
		b.Fatal(err)
	}
	sig[64] -= 27
	digest := a.Digest(d)
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	for b.Loop() {
		if _, err := crypto.SigToPub(digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}
