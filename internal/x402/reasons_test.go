package x402

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestEveryReasonConstantIsKnown reads this package's source for every constant of type Reason,
// so that a reason code added later cannot be left out of Known (a metric would count it as
// "other").
func TestEveryReasonConstantIsKnown(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		for name, value := range reasonConstants(t, file) {
			found++
			if !Reason(value).Known() {
				t.Errorf("%s (%q) is not Known", name, value)
			}
		}
	}
	if found < 20 || found != len(knownReasons) {
		t.Errorf("%d Reason constants in the source, %d known reasons", found, len(knownReasons))
	}
}

// reasonConstants returns the constants of type Reason declared in file, by name.
func reasonConstants(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s: want a string literal", name.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[name.Name] = v
			}
		}
	}
	return out
}

func TestUnknownReasonsAreNotKnown(t *testing.T) {
	for _, r := range []Reason{"", "other", "Insufficient_Funds", "insufficient_funds ", "execution reverted: ERC20: transfer amount exceeds balance"} {
		if r.Known() {
			t.Errorf("%q is Known", r)
		}
	}
}
