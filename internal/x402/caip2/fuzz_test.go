package caip2

import "testing"

func FuzzParse(f *testing.F) {
	for _, s := range []string{"eip155:196", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "eip155:0196", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if c.String() != s {
			t.Fatalf("Parse(%q).String() = %q", s, c.String())
		}
		if id, err := c.EVMChainID(); err == nil && EIP155(id) != s {
			t.Fatalf("EIP155(%s) = %q, want %q", id, EIP155(id), s)
		}
	})
}
