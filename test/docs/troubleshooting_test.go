package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

// apiImportPath is the package holding the condition reasons shared by both kinds.
const apiImportPath = "github.com/insforge/integrations-operator/api/v1alpha1"

// notAProblem lists the reasons that never reach a Stalled or a Ready=False condition: they
// describe success, another condition, or only an event. Every other reason must have an entry in
// docs/troubleshooting.md. A reason added to this list must not be passed to a stall or to
// MarkStalled/MarkReconciling (TestTroubleshootingCoversEveryProblem checks).
var notAProblem = map[string]string{
	"Reconciled":             "Ready=True",
	"ObserveOnly":            "Ready=True in observe mode; SQLApplied/RLSVerified=False",
	"InSync":                 "SQLApplied=True, Drifted=False",
	"DriftDetected":          "Drifted=True (observe mode)",
	"DriftCorrected":         "Drifted=True, corrected",
	"Verified":               "RLSVerified=True",
	"SecretGenerated":        "SecretReady=True, and an event",
	"SecretAdopted":          "SecretReady=True",
	"SecretRotated":          "an event",
	"PreviousKeyRemoved":     "an event",
	"TornDown":               "an event",
	"TeardownSkipped":        "an event (documented under Deleting)",
	"MockFacilitatorAllowed": "MockFacilitator=True",
	"Available":              "GatewayAvailable=True",
	"SchemaApplied":          "LedgerReady=True",
	"UnresolvedPayments":     "SettlementsResolved=False; Ready is unaffected",
	"AllResolved":            "SettlementsResolved=True",
	"Synced":                 "ProviderSynced=True, and an event",
	"KeyPropagated":          "KeyPropagated=True",
}

// problemCalls are the functions whose constant reason arguments end up in a Stalled or a
// Ready=False condition: kit.Stall and the PaymentRoute decide helper stall, the status
// helpers, and the PaymentRoute act helper fail(err, reason).
var problemCalls = map[string]bool{"Stall": true, "stall": true, "MarkStalled": true, "MarkReconciling": true, "fail": true}

// reasonConst is a condition reason declared as a constant.
type reasonConst struct {
	value string
	at    string // file:line of the declaration
}

// reasonCode is what the code declares and does with reasons.
type reasonCode struct {
	// all maps every reason value to where it is declared.
	all map[string]reasonConst
	// problems are the reasons passed as constants to problemCalls, assigned to a *Reason
	// variable or field, or returned by a classify function, with where.
	problems map[string]string
}

// TestTroubleshootingCoversEveryProblem: every condition reason in api/v1alpha1 (Reason*) and in
// the controllers (reason* constants) has an entry in docs/troubleshooting.md, unless it is one of
// notAProblem; none of notAProblem is used as a problem; and every entry is a reason that exists.
func TestTroubleshootingCoversEveryProblem(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	code := scanReasons(t, root)
	raw, err := os.ReadFile(filepath.Join(root, "docs", "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	entries := troubleshootingEntries(string(raw))

	if len(code.all) < 10 || len(code.problems) < 10 {
		t.Fatalf("found only %d reasons and %d problem uses: the scan no longer matches the code", len(code.all), len(code.problems))
	}
	for _, v := range sortedKeys(code.all) {
		_, documented := entries[v]
		_, exempt := notAProblem[v]
		if !documented && !exempt {
			t.Errorf("reason %s (%s) has no entry in docs/troubleshooting.md: add a \"### `%s`\" section (what it means, how to see it, how to fix it), or list it in notAProblem if it never makes Stalled or Ready=False", v, code.all[v].at, v)
		}
	}
	for _, v := range sortedKeys(code.problems) {
		if why, exempt := notAProblem[v]; exempt {
			t.Errorf("reason %s is listed in notAProblem (%s) but is used as a problem at %s", v, why, code.problems[v])
		}
	}
	for _, v := range sortedKeys(notAProblem) {
		if _, ok := code.all[v]; !ok {
			t.Errorf("notAProblem lists %s, which the code no longer declares: remove it", v)
		}
	}
	for _, v := range sortedKeys(entries) {
		if _, ok := code.all[v]; !ok {
			t.Errorf("docs/troubleshooting.md:%d has an entry for %s, which the code does not declare", entries[v], v)
		}
	}
}

// entryHeading is a reason's entry: a level-3 heading that is only the reason in backticks.
var entryHeading = regexp.MustCompile("^### `([A-Za-z0-9]+)`\\s*$")

// troubleshootingEntries maps each reason with an entry to the line of its heading.
func troubleshootingEntries(md string) map[string]int {
	out := map[string]int{}
	for i, line := range strings.Split(md, "\n") {
		if m := entryHeading.FindStringSubmatch(line); m != nil {
			out[m[1]] = i + 1
		}
	}
	return out
}

// scanReasons parses api/v1alpha1 and internal/controller (without tests).
func scanReasons(t *testing.T, root string) reasonCode {
	t.Helper()
	code := reasonCode{all: map[string]reasonConst{}, problems: map[string]string{}}
	fset := token.NewFileSet()

	// api/v1alpha1: the exported Reason* constants.
	api := map[string]string{} // constant name → value
	for _, f := range parseDir(t, fset, filepath.Join(root, "api", "v1alpha1")) {
		for name, c := range stringConsts(fset, f, "Reason") {
			api[name] = c.value
			code.all[c.value] = c
		}
	}

	// internal/controller/...: the package's own reason* constants, then their uses.
	err := filepath.WalkDir(filepath.Join(root, "internal", "controller"), func(dir string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		files := parseDir(t, fset, dir)
		local := map[string]string{}
		for _, f := range files {
			for name, c := range stringConsts(fset, f, "reason") {
				local[name] = c.value
				code.all[c.value] = c
			}
		}
		for _, f := range files {
			collectProblems(fset, f, api, local, code.problems)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// parseDir parses the non-test Go files of one directory.
func parseDir(t *testing.T, fset *token.FileSet, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// stringConsts returns the string constants of a file whose names start with prefix followed by
// an upper-case letter (ReasonX, reasonX).
func stringConsts(fset *token.FileSet, f *ast.File, prefix string) map[string]reasonConst {
	out := map[string]reasonConst{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				rest, ok := strings.CutPrefix(name.Name, prefix)
				if !ok || rest == "" || rest[0] < 'A' || rest[0] > 'Z' || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					continue
				}
				pos := fset.Position(name.Pos())
				out[name.Name] = reasonConst{value: v, at: filepath.Base(pos.Filename) + ":" + strconv.Itoa(pos.Line)}
			}
		}
	}
	return out
}

// collectProblems records the reasons that f uses as problems: constant arguments of
// problemCalls, constants assigned to a variable or field named *Reason (transientReason), and
// constants returned by a function named classify.
func collectProblems(fset *token.FileSet, f *ast.File, api, local map[string]string, out map[string]string) {
	apiNames := map[string]bool{} // the names f imports api/v1alpha1 as
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == apiImportPath {
			name := "v1alpha1"
			if imp.Name != nil {
				name = imp.Name.Name
			}
			apiNames[name] = true
		}
	}
	// reason returns the value of e if it is a reason constant.
	reason := func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.SelectorExpr:
			if x, ok := e.X.(*ast.Ident); ok && apiNames[x.Name] {
				v, ok := api[e.Sel.Name]
				return v, ok
			}
		case *ast.Ident:
			v, ok := local[e.Name]
			return v, ok
		}
		return "", false
	}
	record := func(e ast.Expr) {
		if v, ok := reason(e); ok {
			if _, seen := out[v]; !seen {
				pos := fset.Position(e.Pos())
				out[v] = filepath.Base(pos.Filename) + ":" + strconv.Itoa(pos.Line)
			}
		}
	}
	calleeName := func(fun ast.Expr) string {
		switch fun := fun.(type) {
		case *ast.Ident:
			return fun.Name
		case *ast.SelectorExpr:
			return fun.Sel.Name
		}
		return ""
	}
	lhsName := func(e ast.Expr) string {
		switch e := e.(type) {
		case *ast.Ident:
			return e.Name
		case *ast.SelectorExpr:
			return e.Sel.Name
		}
		return ""
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if problemCalls[calleeName(n.Fun)] {
				for _, arg := range n.Args {
					record(arg)
				}
			}
		case *ast.AssignStmt:
			for i, lhs := range n.Lhs {
				if i < len(n.Rhs) && strings.HasSuffix(lhsName(lhs), "Reason") {
					record(n.Rhs[i])
				}
			}
		case *ast.FuncDecl:
			if n.Name.Name == "classify" && n.Body != nil {
				ast.Inspect(n.Body, func(m ast.Node) bool {
					if ret, ok := m.(*ast.ReturnStmt); ok {
						for _, r := range ret.Results {
							record(r)
						}
					}
					return true
				})
			}
		}
		return true
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
