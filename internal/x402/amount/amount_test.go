package amount

import (
	"math/big"
	"strings"
	"testing"
)

func TestParseAtomic(t *testing.T) {
	max := MaxUint256().String()
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"0", "0", ""},
		{"10000", "10000", ""},
		{max, max, ""},
		{"", "", "empty"},
		{"01", "", "leading zero"},
		{"-1", "", "not a non-negative integer"},
		{"+1", "", "not a non-negative integer"},
		{"1.5", "", "not a non-negative integer"},
		{"1e6", "", "not a non-negative integer"},
		{" 1", "", "not a non-negative integer"},
		{"115792089237316195423570985008687907853269984665640564039457584007913129639936", "", "exceeds"},
		{strings.Repeat("9", 79), "", "digits"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAtomic(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || FormatAtomic(got) != tt.want {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

func TestDecimalConversions(t *testing.T) {
	tests := []struct {
		dec      string
		decimals uint8
		atomic   string
		canon    string // FormatDecimal of atomic
	}{
		{"0.01", 6, "10000", "0.01"},
		{"1", 6, "1000000", "1"},
		{"1.000000", 6, "1000000", "1"},
		{"0.000001", 6, "1", "0.000001"},
		{"0", 6, "0", "0"},
		{"00.5", 6, "500000", "0.5"},
		{"123456789.123456", 6, "123456789123456", "123456789.123456"},
		{"7", 0, "7", "7"},
		{"1.5", 18, "1500000000000000000", "1.5"},
	}
	for _, tt := range tests {
		t.Run(tt.dec, func(t *testing.T) {
			got, err := ParseDecimal(tt.dec, tt.decimals)
			if err != nil || got.String() != tt.atomic {
				t.Fatalf("ParseDecimal = %v, %v; want %s", got, err, tt.atomic)
			}
			if s := FormatDecimal(got, tt.decimals); s != tt.canon {
				t.Fatalf("FormatDecimal = %s, want %s", s, tt.canon)
			}
		})
	}
	if s := FormatDecimal(big.NewInt(-1500), 3); s != "-1.5" {
		t.Fatalf("negative: %s", s)
	}
}

func TestParseDecimalErrors(t *testing.T) {
	for _, in := range []string{"", ".5", "1.", "1.0000001", "-1", "1e3", "1,5", "1.2.3", " 1", "0x10"} {
		t.Run(in, func(t *testing.T) {
			if v, err := ParseDecimal(in, 6); err == nil {
				t.Fatalf("ParseDecimal(%q) = %v, want error", in, v)
			}
		})
	}
	if _, err := ParseDecimal("1", MaxDecimals+1); err == nil {
		t.Fatal("huge decimals accepted")
	}
}
