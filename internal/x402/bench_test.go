package x402

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/insforge/integrations-operator/internal/testutil/cpustat"
)

func BenchmarkDecodePaymentSignature(b *testing.B) {
	h, err := EncodePaymentSignature(samplePayload(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	for b.Loop() {
		if _, err := DecodePaymentSignature(h); err != nil {
			b.Fatal(err)
		}
	}
}

// Baseline: base64 + one json.Unmarshal, without the checks DecodePaymentSignature makes.
func BenchmarkDecodePaymentSignatureBaseline(b *testing.B) {
	h, err := EncodePaymentSignature(samplePayload(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	for b.Loop() {
		raw, err := base64.StdEncoding.DecodeString(h)
		if err != nil {
			b.Fatal(err)
		}
		var p PaymentPayload
		if err := json.Unmarshal(raw, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	own := sampleRequirements()
	offered := []PaymentRequirements{own, own, own}
	offered[0].Amount, offered[1].Network = "1", "eip155:1"
	b.ReportAllocs()
	defer cpustat.ReportPerOp(b)()
	for b.Loop() {
		if _, err := Match(own, offered); err != nil {
			b.Fatal(err)
		}
	}
}
