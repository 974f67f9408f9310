package rls

import (
	"strings"
)

// helperSQL defines public.requesting_user_id(). It reads the claims GUC directly instead of
// calling auth.jwt() so that it works on InsForge builds with and without auth.jwt(); the inner
// nullif turns the empty string a GUC holds after a transaction-local set_config back into NULL,
// which a plain ::json cast would reject.
const helperSQL = `CREATE OR REPLACE FUNCTION public.requesting_user_id() RETURNS text LANGUAGE sql STABLE AS $$ ` +
	helperBody + ` $$`

const helperBody = `SELECT nullif(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', '')::text`

// compatibleHelperBodies are bodies InsForge's own guides install; all read the same GUC, so
// finding one is not drift and the operator does not fight a helper a user created by the guide.
var compatibleHelperBodies = []string{
	helperBody,
	`select nullif(auth.jwt() ->> 'sub', '')::text`,
	`select nullif(current_setting('request.jwt.claims', true)::json->>'sub', '')::text`,
}

// helperCall is how policies and defaults call the helper; it is schema-qualified so that it does
// not depend on search_path.
const helperCall = "public.requesting_user_id()"

// item is one desired fact about the database and the statements that establish it. check
// returns "" when the fact holds in the observed state, else a short description of the drift.
type item struct {
	object string
	stmts  []string
	check  func(*State) string
	// fix, when set, chooses the statements for the observed drift; stmts remain the full plan.
	fix func(*State) []string
	// sessionRole runs the statements as the connected role rather than Spec.Role: Better Auth's
	// schema and tables are created outside public, by whoever runs its migrations, so
	// project_admin may not own them.
	sessionRole bool
}

// items lists the desired state in apply order.
func (s Spec) items() []item {
	var out []item
	if s.Provider == ProviderBetterAuth {
		out = append(out, betterAuthItems()...)
	}
	out = append(out, helperItems()...)
	out = append(out, s.schemaItems()...)
	for _, t := range s.Tables {
		out = append(out, s.tableItems(t)...)
	}
	return out
}

func betterAuthItems() []item {
	schema := ident(BetterAuthSchema)
	api := ident(RoleAnon) + ", " + ident(RoleAuthenticated)
	return []item{
		{
			object:      "schema " + BetterAuthSchema,
			stmts:       []string{"CREATE SCHEMA IF NOT EXISTS " + schema},
			sessionRole: true,
			check: func(st *State) string {
				if st.BetterAuth == nil || !st.BetterAuth.Exists {
					return "missing"
				}
				return ""
			},
		},
		{
			// The schema is routable by PostgREST on current InsForge; only missing USAGE keeps
			// Better Auth's sessions and accounts away from the API roles.
			object:      "privileges on schema " + BetterAuthSchema,
			stmts:       []string{"REVOKE ALL ON SCHEMA " + schema + " FROM " + api},
			sessionRole: true,
			check: func(st *State) string {
				if st.BetterAuth == nil || len(st.BetterAuth.SchemaGrants) == 0 {
					return ""
				}
				return "API roles hold " + strings.Join(st.BetterAuth.SchemaGrants, ", ")
			},
		},
		{
			object:      "privileges on relations in schema " + BetterAuthSchema,
			sessionRole: true,
			stmts: []string{
				"REVOKE ALL ON ALL TABLES IN SCHEMA " + schema + " FROM " + api,
				"REVOKE ALL ON ALL SEQUENCES IN SCHEMA " + schema + " FROM " + api,
			},
			check: func(st *State) string {
				if st.BetterAuth == nil || len(st.BetterAuth.ObjectGrants) == 0 {
					return ""
				}
				return "API roles hold " + strings.Join(st.BetterAuth.ObjectGrants, ", ")
			},
		},
	}
}

func helperItems() []item {
	return []item{
		{
			object: "function " + helperCall,
			stmts:  []string{helperSQL},
			check: func(st *State) string {
				h := st.Helper
				switch {
				case h == nil:
					return "missing"
				case h.Language != "sql" || h.Volatility != "s" || !compatibleHelper(h.Body):
					return "definition differs from the generated one"
				}
				return ""
			},
		},
		{
			object: "EXECUTE on " + helperCall,
			stmts:  []string{"GRANT EXECUTE ON FUNCTION " + helperCall + " TO " + ident(RoleAuthenticated)},
			check: func(st *State) string {
				if st.Helper == nil || !st.Helper.AuthenticatedCanExecute {
					return "authenticated cannot execute it"
				}
				return ""
			},
		},
	}
}

func compatibleHelper(body string) bool {
	got := squash(body, false)
	for _, b := range compatibleHelperBodies {
		if got == squash(b, false) {
			return true
		}
	}
	return false
}

// schemaItems makes every schema holding managed tables usable by authenticated, and creates it
// when a table in it is to be created.
func (s Spec) schemaItems() []item {
	var out []item
	seen := map[string]bool{}
	for _, t := range s.Tables {
		name := t.Ref().Schema
		if seen[name] {
			continue
		}
		seen[name] = true
		if s.createsIn(name) && name != DefaultSchema {
			out = append(out, item{
				object: "schema " + name,
				stmts:  []string{"CREATE SCHEMA IF NOT EXISTS " + ident(name)},
				check: func(st *State) string {
					if !st.Schemas[name].Exists {
						return "missing"
					}
					return ""
				},
			})
		}
		out = append(out, item{
			object: "USAGE on schema " + name,
			stmts:  []string{"GRANT USAGE ON SCHEMA " + ident(name) + " TO " + ident(RoleAuthenticated)},
			check: func(st *State) string {
				if !st.Schemas[name].AuthenticatedUsage {
					return "authenticated lacks USAGE"
				}
				return ""
			},
		})
	}
	return out
}

func (s Spec) createsIn(schema string) bool {
	for _, t := range s.Tables {
		if t.Create && t.Ref().Schema == schema {
			return true
		}
	}
	return false
}

func (s Spec) tableItems(t Table) []item {
	ref, col := t.Ref(), t.Column()
	table := func(st *State) *TableState {
		if ts := st.Tables[ref]; ts != nil {
			return ts
		}
		return &TableState{}
	}
	var out []item
	if t.Create {
		out = append(out, item{
			object: "table " + ref.String(),
			stmts: []string{"CREATE TABLE IF NOT EXISTS " + ref.ident() + " (" +
				"id text PRIMARY KEY DEFAULT gen_random_uuid()::text, " +
				ident(col) + " text NOT NULL DEFAULT " + helperCall + ", " +
				"created_at timestamptz NOT NULL DEFAULT now())"},
			check: func(st *State) string {
				if !table(st).Exists {
					return "missing"
				}
				return ""
			},
		})
	}
	if t.ManageColumn {
		out = append(out, item{
			object: "column " + col + " of " + ref.String(),
			stmts:  []string{"ALTER TABLE " + ref.ident() + " ADD COLUMN IF NOT EXISTS " + ident(col) + " text"},
			check: func(st *State) string {
				if table(st).Column == nil {
					return "missing"
				}
				return ""
			},
		})
	}
	out = append(out,
		item{
			object: "default of column " + col + " of " + ref.String(),
			stmts:  []string{"ALTER TABLE " + ref.ident() + " ALTER COLUMN " + ident(col) + " SET DEFAULT " + helperCall},
			check: func(st *State) string {
				c := table(st).Column
				switch {
				case c == nil:
					return "missing"
				case c.Default == "":
					return "no default, want " + helperCall
				case squash(c.Default, true) != squash(helperCall, true):
					return "is " + c.Default + ", want " + helperCall
				}
				return ""
			},
		},
		item{
			object: "index on " + ref.String() + " (" + col + ")",
			stmts:  []string{"CREATE INDEX IF NOT EXISTS " + ident(IndexName(t)) + " ON " + ref.ident() + " (" + ident(col) + ")"},
			check: func(st *State) string {
				if !table(st).Indexed {
					return "missing"
				}
				return ""
			},
		},
		item{
			object: "row level security on " + ref.String(),
			stmts:  []string{"ALTER TABLE " + ref.ident() + " ENABLE ROW LEVEL SECURITY"},
			check: func(st *State) string {
				if !table(st).RLSEnabled {
					return "disabled"
				}
				return ""
			},
		},
	)
	for _, c := range t.Cmds() {
		out = append(out, s.policyItem(t, c, table))
	}
	out = append(out, grantItem(t, table))
	return out
}

func grantItem(t Table, table func(*State) *TableState) item {
	ref := t.Ref()
	var privs []string
	for _, c := range t.Cmds() {
		privs = append(privs, pgCommand[c])
	}
	return item{
		object: "privileges of authenticated on " + ref.String(),
		stmts:  []string{"GRANT " + strings.Join(privs, ", ") + " ON " + ref.ident() + " TO " + ident(RoleAuthenticated)},
		check: func(st *State) string {
			ts := table(st)
			var missing []string
			for _, c := range t.Cmds() {
				if !ts.Privileges[c] {
					missing = append(missing, pgCommand[c])
				}
			}
			if len(missing) > 0 {
				return "missing " + strings.Join(missing, ", ")
			}
			return ""
		},
	}
}

// notifySQL makes PostgREST reload its schema cache after a change.
const notifySQL = "NOTIFY pgrst, 'reload schema'"

// Plan returns every statement that establishes the spec on an empty database, in order. Each is
// rerun-safe, so the whole list may be replayed; Reconcile runs only the part that differs.
func Plan(s Spec) ([]string, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var out []string
	for _, it := range s.items() {
		out = append(out, it.stmts...)
	}
	return append(out, notifySQL), nil
}
