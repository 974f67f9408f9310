package rls

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func todos() Table { return Table{Name: "todos", ManageColumn: true} }

// goldenSpecs are the specs whose plans are pinned in testdata/<name>.golden.sql.
var goldenSpecs = map[string]Spec{
	"clerk":      {Name: "myapp", Owner: "default/myapp", Provider: ProviderClerk, Tables: []Table{todos()}},
	"auth0":      {Name: "myapp", Owner: "default/myapp", Provider: ProviderAuth0, Tables: []Table{todos()}},
	"workos":     {Name: "myapp", Owner: "default/myapp", Provider: ProviderWorkOS, Tables: []Table{todos()}},
	"kinde":      {Name: "myapp", Owner: "default/myapp", Provider: ProviderKinde, Tables: []Table{todos()}},
	"stytch":     {Name: "myapp", Owner: "default/myapp", Provider: ProviderStytch, Tables: []Table{todos()}},
	"betterauth": {Name: "myapp", Owner: "default/myapp", Provider: ProviderBetterAuth, Tables: []Table{{Name: "notes", Create: true}}},
	// Quoting: a schema, table, column and owner that need it; a subset of commands; creation in
	// a non-public schema; a table whose column is not managed.
	"quoting": {Name: "crm", Owner: "team-a/crm's", Provider: ProviderClerk, Tables: []Table{
		{Schema: "Sales App", Name: `Deals "2026"`, UserIDColumn: "Owner Id", Commands: []Command{CommandSelect, CommandUpdate}, Create: true},
		{Name: "contacts", UserIDColumn: "owner"},
	}},
	// Names longer than PostgreSQL's 63-byte limit are shortened deterministically.
	"longnames": {Name: strings.Repeat("integration", 5), Owner: "ns/long", Provider: ProviderKinde, Tables: []Table{
		{Name: strings.Repeat("t", 60), Commands: []Command{CommandDelete}},
	}},
}

func TestPlanGolden(t *testing.T) {
	for name, spec := range goldenSpecs {
		t.Run(name, func(t *testing.T) {
			stmts, err := Plan(spec)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(stmts, ";\n") + ";\n"
			path := filepath.Join("testdata", name+".golden.sql")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestPlanGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("plan differs from %s (run with -update if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}

func TestPlanShape(t *testing.T) {
	spec := goldenSpecs["clerk"]
	stmts, err := Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	if last := stmts[len(stmts)-1]; last != "NOTIFY pgrst, 'reload schema'" {
		t.Errorf("last statement = %q, want the PostgREST reload", last)
	}
	if !strings.HasPrefix(stmts[0], "CREATE OR REPLACE FUNCTION public.requesting_user_id() RETURNS text") {
		t.Errorf("first statement = %q, want the helper", stmts[0])
	}
	for _, c := range AllCommands {
		name := spec.PolicyName(todos(), c)
		if name != "myapp_todos_"+string(c) {
			t.Errorf("policy name = %q", name)
		}
		if !containsPrefix(stmts, `CREATE POLICY "`+name+`" ON "public"."todos" AS PERMISSIVE FOR `+strings.ToUpper(string(c))+` TO "authenticated"`) {
			t.Errorf("no CREATE POLICY for %s", c)
		}
	}
	for _, s := range stmts {
		if strings.Contains(s, "better_auth") {
			t.Errorf("clerk plan touches better_auth: %s", s)
		}
	}
	ba, err := Plan(goldenSpecs["betterauth"])
	if err != nil {
		t.Fatal(err)
	}
	if !containsPrefix(ba, `REVOKE ALL ON SCHEMA "better_auth" FROM "anon", "authenticated"`) {
		t.Errorf("better auth plan lacks the schema REVOKE:\n%s", strings.Join(ba, "\n"))
	}
}

func TestLongNamesFitAndStayDistinct(t *testing.T) {
	spec := goldenSpecs["longnames"]
	tbl := spec.Tables[0]
	seen := map[string]bool{}
	for _, c := range AllCommands {
		n := spec.PolicyName(tbl, c)
		if len(n) > maxIdentifier {
			t.Errorf("%q is %d bytes", n, len(n))
		}
		if seen[n] {
			t.Errorf("%q generated twice", n)
		}
		seen[n] = true
	}
	if n := fitIdentifier(strings.Repeat("é", 40)); len(n) > maxIdentifier || !strings.HasPrefix(n, "é") || strings.ContainsRune(n, '\uFFFD') {
		t.Errorf("multi-byte name shortened badly: %q", n)
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]Spec{
		"no name":          {Owner: "a/b", Provider: ProviderClerk},
		"no owner":         {Name: "a", Provider: ProviderClerk},
		"unknown provider": {Name: "a", Owner: "a/b", Provider: "okta"},
		"duplicate table":  {Name: "a", Owner: "a/b", Provider: ProviderClerk, Tables: []Table{{Name: "t"}, {Schema: "public", Name: "t"}}},
		"bad command":      {Name: "a", Owner: "a/b", Provider: ProviderClerk, Tables: []Table{{Name: "t", Commands: []Command{"truncate"}}}},
		"long column":      {Name: "a", Owner: "a/b", Provider: ProviderClerk, Tables: []Table{{Name: "t", UserIDColumn: strings.Repeat("c", 64)}}},
		"better_auth":      {Name: "a", Owner: "a/b", Provider: ProviderBetterAuth, Tables: []Table{{Schema: "better_auth", Name: "user"}}},
	}
	for name, spec := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Plan(spec)
			var se *SpecError
			if !errors.As(err, &se) || !IsTerminal(err) {
				t.Fatalf("err = %v, want a terminal *SpecError", err)
			}
		})
	}
}

func TestLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      "'plain'",
		"it's":       "'it''s'",
		`back\slash`: `E'back\\slash'`,
		"nul\x00":    "'nul'",
	} {
		if got := literal(in); got != want {
			t.Errorf("literal(%q) = %s, want %s", in, got, want)
		}
	}
}

func containsPrefix(stmts []string, prefix string) bool {
	for _, s := range stmts {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
