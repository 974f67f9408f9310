package caip2

import (
	"math/big"
	"strings"
	"testing"
)

func TestParseEVM(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"eip155:196", 196, ""},
		{"eip155:1952", 1952, ""},
		{"eip155:1337", 1337, ""},
		{"eip155:0", 0, "positive"},
		{"eip155:0196", 0, "decimal"},
		{"eip155:abc", 0, "decimal"},
		{"eip155:", 0, "reference"},
		{"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", 0, "not an EVM"},
		{"EIP155:196", 0, "namespace"},
		{"ei:1", 0, "namespace"},
		{"196", 0, "namespace:reference"},
		{"eip155:" + strings.Repeat("1", 33), 0, "reference"},
		{"eip155:1 ", 0, "reference"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEVM(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Int64() != tt.want {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

func TestParseAndFormat(t *testing.T) {
	c, err := Parse("bip122:000000000019d6689c085ae165831e93")
	if err != nil || c.Namespace != "bip122" || c.String() != "bip122:000000000019d6689c085ae165831e93" {
		t.Fatalf("got %+v, %v", c, err)
	}
	if got := EIP155(big.NewInt(196)); got != "eip155:196" {
		t.Fatalf("EIP155 = %s", got)
	}
}
