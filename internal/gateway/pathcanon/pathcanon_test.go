package pathcanon

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/reports/weekly", "/reports/weekly"},
		// Repeated slashes.
		{"//reports/weekly", "/reports/weekly"},
		{"/reports//weekly", "/reports/weekly"},
		{"/reports///", "/reports/"},
		{"//", "/"},
		// Dot segments, plain and encoded, in any case of hex.
		{"/./reports/weekly", "/reports/weekly"},
		{"/x/../reports/weekly", "/reports/weekly"},
		{"/x/%2e%2e/reports/weekly", "/reports/weekly"},
		{"/x/%2E%2E/reports/weekly", "/reports/weekly"},
		{"/x/.%2e/reports/weekly", "/reports/weekly"},
		{"/%2e/reports", "/reports"},
		{"/reports/weekly/.", "/reports/weekly/"},
		{"/reports/weekly/..", "/reports/"},
		{"/reports/..", "/"},
		{"/a/b/../../c", "/c"},
		{"/...", "/..."},
		{"/a/.b/..c", "/a/.b/..c"},
		// Path parameters, on any segment, before dot segments are resolved.
		{"/reports/weekly;x=1", "/reports/weekly"},
		{"/reports;a/weekly;b=2;c", "/reports/weekly"},
		{"/;x/reports", "/reports"},
		{"/x/..;y/reports", "/reports"},
		{"/reports/weekly/;x", "/reports/weekly/"},
		{"/a%3Bb", "/a%3Bb"}, // an encoded semicolon is data
		// Escapes: unreserved decoded, the rest kept with upper-case hex.
		{"/%41%42c", "/ABc"},
		{"/%7euser/%2d%5f", "/~user/-_"},
		{"/caf%c3%a9", "/caf%C3%A9"},
		{"/a%2fb", "/a%2Fb"},
		{"/a%2Fb/..", "/"},
		{"/a%5cb", "/a%5Cb"},
		{"/100%25", "/100%25"},
		{"/a%3a%40", "/a%3A%40"},
		// Characters that may not appear raw are escaped.
		{"/a b", "/a%20b"},
		{"/caf\xc3\xa9", "/caf%C3%A9"},
		{`/"<>[]{}|^` + "`", "/%22%3C%3E%5B%5D%7B%7D%7C%5E%60"},
		{"/a?b#c", "/a%3Fb%23c"},
		{"/reports/*", "/reports/*"},
		{"/!$&'()*+,=:@", "/!$&'()*+,=:@"},
	} {
		got, err := Canonical(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCanonicalRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/..", "above the root"},
		{"/../reports", "above the root"},
		{"/a/../..", "above the root"},
		{"/%2e%2e/reports", "above the root"},
		{"/..;x/reports", "above the root"},
		{`/reports\weekly`, "backslash"},
		{"/a\x00b", "control character"},
		{"/a\nb", "control character"},
		{"/a\x7fb", "control character"},
		{"/a%00b", "encoded NUL"},
		{"/a%0Ab", "encoded control character"},
		{"/a%0db", "encoded control character"},
		{"/a%7F", "encoded control character"},
		{"/a%zz", "malformed percent-escape"},
		{"/a%4", "malformed percent-escape"},
		{"/a%", "malformed percent-escape"},
		{"/a%g0", "malformed percent-escape"},
		{"/a;%zz", "malformed percent-escape"}, // params are checked too
		{"reports", "does not start with /"},
		{"*", "does not start with /"},
	} {
		got, err := Canonical(tc.in)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Canonical(%q) = %q, %v; want an error about %q", tc.in, got, err, tc.want)
		}
		// The error is sent to clients: it must not carry the path.
		if err != nil && len(tc.in) > 3 && strings.Contains(err.Error(), tc.in) {
			t.Errorf("Canonical(%q): error %q quotes the path", tc.in, err)
		}
	}
}

func TestCanonicalDoesNotAllocateForCanonicalPaths(t *testing.T) {
	p := "/api/reports/weekly-2024_05~x"
	if n := testing.AllocsPerRun(100, func() {
		if q, err := Canonical(p); err != nil || q != p {
			t.Fatal(q, err)
		}
	}); n != 0 {
		t.Errorf("%v allocations for a canonical path", n)
	}
}

func TestKey(t *testing.T) {
	same := [][2]string{
		{"/a:b", "/a%3Ab"},
		{"/caf%C3%A9", "/caf%C3%A9"},
		{"/a%20b", "/a%20b"},
	}
	for _, s := range same {
		if Key(s[0], false) != Key(s[1], false) {
			t.Errorf("Key(%q) != Key(%q)", s[0], s[1])
		}
	}
	differ := [][2]string{
		{"/a/b", "/a%2Fb"}, // an encoded slash is not a separator
		{"/a%5Cb", "/a/b"}, // nor is an encoded backslash
		{"/a%2541", "/aA"}, // %25 stays: its decoding is not an escape
		{"/Reports", "/reports"},
	}
	for _, d := range differ {
		if Key(d[0], false) == Key(d[1], false) {
			t.Errorf("Key(%q) == Key(%q) = %q", d[0], d[1], Key(d[0], false))
		}
	}
	folded := [][2]string{
		{"/Reports/Weekly", "/reports/weekly"},
		{"/REPORTS", "/reports"},
		{"/CAF%C3%89", "/caf%C3%A9"},       // É and é
		{"/wee%E2%84%AAly", "/weekly"},     // Kelvin sign K and k
		{"/cla%C5%BFs", "/class"},          // long s and s
		{"/%CE%A3%CF%82", "/%CF%83%CF%83"}, // Σς and σσ
		{"/a%2Fb", "/A%2fB"},               // a kept escape folds like itself
	}
	for _, f := range folded {
		if a, b := Key(f[0], true), Key(f[1], true); a != b {
			t.Errorf("folded Key(%q) = %q, Key(%q) = %q", f[0], a, f[1], b)
		}
	}
	if Key("/A%2Fb", true) == Key("/a/b", true) {
		t.Error("folding turned an encoded slash into a separator")
	}
	if Key("/a%FF", true) == Key("/a%FE", true) {
		t.Error("invalid UTF-8 bytes folded together")
	}
	p := "/plain/lower/path"
	if n := testing.AllocsPerRun(100, func() { _ = Key(p, true) }); n != 0 {
		t.Errorf("%v allocations for a plain lower-case path", n)
	}
}

func TestDecodeSlashes(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		changed  bool
		err      bool
	}{
		{"/reports/weekly", "/reports/weekly", false, false},
		{"/reports%2Fweekly", "/reports/weekly", true, false},
		{"/x%2F..%2Freports/weekly", "/reports/weekly", true, false},
		{"/x/..%5Creports", "/reports", true, false},
		{"/a%2F%2Fb", "/a/b", true, false},
		{"/%2F..%2F..", "", true, true},
		{"/a%252F", "/a%252F", false, false}, // an encoded percent sign, not a slash
	} {
		lit, got, changed, err := DecodeSlashes(tc.in)
		if want := strings.NewReplacer("%2F", "/", "%5C", "/").Replace(tc.in); lit != want {
			t.Errorf("DecodeSlashes(%q) literal = %q, want %q", tc.in, lit, want)
		}
		if changed != tc.changed || (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("DecodeSlashes(%q) = %q, %v, %v; want %q, %v, error %v", tc.in, got, changed, err, tc.want, tc.changed, tc.err)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		"/", "", "//reports/weekly", "/./reports/weekly", "/x/../reports/weekly", "/reports//weekly",
		"/reports/weekly;x=1", "/Reports/weekly", "/reports/weekly/", "/x/%2e%2e/reports", "/a%2Fb",
		"/%41", "/caf%c3%a9", "/..", `/a\b`, "/a%00", "/a%zz", "/a b", "/a/.;x/../b", "/;/;/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := Canonical(p)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Canonical(%q): error %v does not wrap ErrInvalid", p, err)
			}
			return
		}
		again, err := Canonical(c)
		if err != nil || again != c {
			t.Fatalf("not idempotent: Canonical(%q) = %q, then %q, %v", p, c, again, err)
		}
		if !strings.HasPrefix(c, "/") {
			t.Fatalf("Canonical(%q) = %q is not absolute", p, c)
		}
		for _, bad := range []string{"//", "/./", "/../", ";", "\\"} {
			if strings.Contains(c, bad) {
				t.Fatalf("Canonical(%q) = %q contains %q", p, c, bad)
			}
		}
		if strings.HasSuffix(c, "/.") || strings.HasSuffix(c, "/..") {
			t.Fatalf("Canonical(%q) = %q ends in a dot segment", p, c)
		}
		for i := 0; i < len(c); i++ {
			if ch := c[i]; ch != '%' && !pathChar(ch) {
				t.Fatalf("Canonical(%q) = %q has the raw byte %q", p, c, ch)
			}
			if c[i] == '%' {
				v := c[i+1 : i+3]
				if strings.ToUpper(v) != v || unreserved(unhex(v[0])<<4|unhex(v[1])) {
					t.Fatalf("Canonical(%q) = %q has the escape %%%s", p, c, v)
				}
			}
		}
		if _, alt, _, err := DecodeSlashes(c); err == nil {
			if again, err := Canonical(alt); err != nil || again != alt {
				t.Fatalf("DecodeSlashes(%q) = %q is not canonical", c, alt)
			}
		}
		if k := Key(c, true); k != Key(k, true) {
			t.Fatalf("Key not idempotent for %q: %q", c, k)
		}
	})
}
