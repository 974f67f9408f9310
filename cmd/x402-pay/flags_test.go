package main

import (
	"flag"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// usageDoc is the section of docs/gateway.md that documents the command's flags.
const usageDoc, usageSection = "../../docs/gateway.md", "## Paying from the command line"

// docFlag matches a -flag written in prose or a command line: the dash follows a space, an
// opening bracket, a backtick or a bar, so x402-pay and base-sepolia are not taken for flags.
var docFlag = regexp.MustCompile("(?:^|[\\s\\[(`|])-([A-Za-z][A-Za-z0-9-]*)")

// section returns the text from the heading to the next heading of the same level.
func section(t *testing.T, path, heading string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", path, heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func docFlags(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range docFlag.FindAllStringSubmatch(text, -1) {
		out[m[1]] = true
	}
	return out
}

func TestDocumentedFlagsMatch(t *testing.T) {
	fs := newFlagSet(&flagValues{}, io.Discard)
	doc := section(t, usageDoc, usageSection)
	mentioned := docFlags(doc)
	var defined []string
	fs.VisitAll(func(f *flag.Flag) {
		defined = append(defined, f.Name)
		if !mentioned[f.Name] {
			t.Errorf("flag -%s is not documented in %s (%q)", f.Name, usageDoc, usageSection)
		}
	})
	if len(defined) < 9 {
		t.Fatalf("only %d flags defined: %v", len(defined), defined)
	}
	// Every flag the docs give for x402-pay exists: the usage section, and the paragraph of
	// docs/payments.md that shows the command.
	for _, d := range []struct{ where, text string }{
		{usageDoc, doc},
		{"../../docs/payments.md", paragraphWith(t, "../../docs/payments.md", "x402-pay -")},
	} {
		var unknown []string
		for name := range docFlags(d.text) {
			if fs.Lookup(name) == nil {
				unknown = append(unknown, "-"+name)
			}
		}
		sort.Strings(unknown)
		if len(unknown) > 0 {
			t.Errorf("%s mentions x402-pay flags that do not exist: %v", d.where, unknown)
		}
	}
}

// paragraphWith returns the blank-line separated paragraph of path that contains s.
func paragraphWith(t *testing.T, path, s string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Split(string(b), "\n\n") {
		if strings.Contains(p, s) {
			return p
		}
	}
	t.Fatalf("%s has no paragraph with %q", path, s)
	return ""
}

func TestDocFlagPattern(t *testing.T) {
	got := docFlags("x402-pay [-max 0.25 | -max-atomic 250000] (-X POST) `-H 'A: b'` base-sepolia - item\n-wait")
	want := []string{"H", "X", "max", "max-atomic", "wait"}
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("docFlags = %v, want %v", names, want)
	}
}
