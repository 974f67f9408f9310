package x402

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	own := sampleRequirements()
	other := own
	other.Amount = "20000"
	offered := []PaymentRequirements{other, own}

	tests := []struct {
		name      string
		mutate    func(*PaymentRequirements)
		wantField string // "" means a match with own
	}{
		{"exact copy", func(*PaymentRequirements) {}, ""},
		{"checksummed addresses", func(r *PaymentRequirements) {
			r.Asset = strings.ToUpper(r.Asset[:2]) + strings.ToUpper(r.Asset[2:])
			r.Asset = "0x" + r.Asset[2:]
		}, ""},
		{"client extra ignored", func(r *PaymentRequirements) { r.Extra = map[string]any{"name": "evil"} }, ""},
		{"amount", func(r *PaymentRequirements) { r.Amount = "1" }, "amount"},
		{"amount leading zero", func(r *PaymentRequirements) { r.Amount = "010000" }, "amount"},
		{"payTo", func(r *PaymentRequirements) { r.PayTo = "0x3333333333333333333333333333333333333333" }, "payTo"},
		{"asset", func(r *PaymentRequirements) { r.Asset = "0x3333333333333333333333333333333333333333" }, "asset"},
		{"network", func(r *PaymentRequirements) { r.Network = "eip155:1" }, "network"},
		{"scheme", func(r *PaymentRequirements) { r.Scheme = "upto" }, "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accepted := sampleRequirements()
			tt.mutate(&accepted)
			got, err := Match(accepted, offered)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got.Extra["name"] != "Global Dollar" || got.Amount != own.Amount {
					t.Fatalf("Match returned %+v, want the server's own requirement", got)
				}
				return
			}
			if ReasonOf(err) != ReasonNoMatchingRequirement || !strings.Contains(err.Error(), "accepted "+tt.wantField+" ") {
				t.Fatalf("err = %v, want mismatch naming %s", err, tt.wantField)
			}
		})
	}
	if _, err := Match(own, nil); ReasonOf(err) != ReasonNoMatchingRequirement {
		t.Fatalf("empty offer: %v", err)
	}
}

func TestSupports(t *testing.T) {
	s := SupportedResponse{Kinds: []SupportedKind{{X402Version: 2, Scheme: "exact", Network: "eip155:196"}}}
	if !s.Supports(2, "exact", "eip155:196") || s.Supports(1, "exact", "eip155:196") || s.Supports(2, "exact", "eip155:1") {
		t.Fatal("Supports answered wrongly")
	}
}
