package eip3009

import (
	"testing"

	"github.com/insforge/integrations-operator/internal/x402"
)

func FuzzParseSignature(f *testing.F) {
	f.Add("0x" + "11" + "00000000000000000000000000000000000000000000000000000000000000" + "22" + "00000000000000000000000000000000000000000000000000000000000000" + "1b")
	f.Add("0x")
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignature(s)
		if err != nil {
			return
		}
		if len(sig) != SignatureLen || sig[64] > 1 {
			t.Fatalf("accepted signature %x has a bad shape", sig)
		}
	})
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "10000", "0", "1750000300",
		"0x0101010101010101010101010101010101010101010101010101010101010101")
	f.Fuzz(func(t *testing.T, from, to, value, after, before, nonce string) {
		a, err := ParseAuthorization(x402.Authorization{From: from, To: to, Value: value, ValidAfter: after, ValidBefore: before, Nonce: nonce})
		if err != nil {
			return
		}
		back, err := ParseAuthorization(a.Wire())
		if err != nil || back.StructHash() != a.StructHash() {
			t.Fatalf("wire round trip changed the authorization: %v", err)
		}
	})
}
