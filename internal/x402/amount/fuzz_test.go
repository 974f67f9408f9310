package amount

import "testing"

func FuzzParseAtomic(f *testing.F) {
	for _, s := range []string{"0", "10000", "01", "-1", "1e6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseAtomic(s)
		if err != nil {
			return
		}
		if FormatAtomic(v) != s {
			t.Fatalf("ParseAtomic(%q) = %s: not canonical", s, v)
		}
	})
}

func FuzzParseDecimal(f *testing.F) {
	f.Add("0.01", uint8(6))
	f.Add("1.5", uint8(18))
	f.Fuzz(func(t *testing.T, s string, decimals uint8) {
		v, err := ParseDecimal(s, decimals)
		if err != nil {
			return
		}
		back, err := ParseDecimal(FormatDecimal(v, decimals), decimals)
		if err != nil || back.Cmp(v) != 0 {
			t.Fatalf("%q (%d decimals) → %s → %q → %v, %v", s, decimals, v, FormatDecimal(v, decimals), back, err)
		}
	})
}
