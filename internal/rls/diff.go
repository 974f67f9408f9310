package rls

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Difference is one named way the database differs from the spec, with the statements that fix
// exactly it.
type Difference struct {
	// Object names what differs, e.g. "policy myapp_todos_select on public.todos".
	Object string
	// Problem says how, e.g. "missing" or "disabled".
	Problem string
	// Statements fix it; they are rerun-safe.
	Statements []string
	// sessionRole: see item.sessionRole.
	sessionRole bool
}

// String renders the difference for conditions and events.
func (d Difference) String() string { return d.Object + ": " + d.Problem }

// Diff compares a spec with an observed state. It returns the differences in apply order, or the
// guard-rail errors (joined) that make applying pointless. It is pure.
func Diff(s Spec, st *State) ([]Difference, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := guard(s, st); err != nil {
		return nil, err
	}
	var out []Difference
	for _, it := range s.items() {
		if problem := it.check(st); problem != "" {
			stmts := it.stmts
			if it.fix != nil {
				stmts = it.fix(st)
			}
			out = append(out, Difference{Object: it.object, Problem: problem, Statements: stmts, sessionRole: it.sessionRole})
		}
	}
	out = append(out, orphans(s, st)...)
	return out, nil
}

// Statements flattens differences into the statements to execute, ending with the PostgREST
// schema reload when anything changes.
func Statements(diffs []Difference) []string {
	if len(diffs) == 0 {
		return nil
	}
	var out []string
	for _, d := range diffs {
		out = append(out, d.Statements...)
	}
	return append(out, notifySQL)
}

// guard returns the guard-rail errors for an observed state.
func guard(s Spec, st *State) error {
	var errs []error
	if len(st.MissingRoles) > 0 {
		return &MissingRoleError{Roles: st.MissingRoles}
	}
	if h := st.Helper; h != nil && h.ReturnType != "text" {
		errs = append(errs, &IncompatibleHelperError{ReturnType: h.ReturnType})
	}
	for _, t := range s.Tables {
		ref := t.Ref()
		ts := st.Tables[ref]
		if ts == nil || !ts.Exists {
			if !t.Create {
				errs = append(errs, &TableMissingError{Table: ref})
			}
			continue
		}
		switch c := ts.Column; {
		case c == nil && !t.ManageColumn:
			errs = append(errs, &ColumnMissingError{Table: ref, Column: t.Column()})
		case c != nil && !textLike(c.Type):
			errs = append(errs, &ColumnTypeError{Table: ref, Column: t.Column(), Type: c.Type, ForeignKeys: c.ForeignKeys})
		}
		errs = append(errs, conflicts(s, t, ts)...)
	}
	return errors.Join(errs...)
}

// textLike accepts the types a provider id fits in and that compare with the text helper.
func textLike(typ string) bool {
	return typ == "text" || typ == "character varying" || strings.HasPrefix(typ, "character varying(")
}

// conflicts finds policies commented for another owner on the same table that cover one of the
// spec's commands (a FOR ALL policy covers every command), or that hold one of this spec's names.
func conflicts(s Spec, t Table, ts *TableState) []error {
	var errs []error
	for _, c := range t.Cmds() {
		name := s.PolicyName(t, c)
		for _, p := range ts.Policies {
			if p.Owner == "" || p.Owner == s.Owner {
				continue
			}
			if p.Command == c || p.Command == "" || p.Name == name {
				errs = append(errs, &ConflictError{Table: t.Ref(), Command: c, Policy: p.Name, Owner: p.Owner})
				break
			}
		}
	}
	return errs
}

// orphans are policies this owner created that the spec no longer asks for (a table or command
// was removed from it); they are dropped.
func orphans(s Spec, st *State) []Difference {
	want := map[OwnedPolicy]bool{}
	for _, t := range s.Tables {
		for _, c := range t.Cmds() {
			want[OwnedPolicy{Table: t.Ref(), Name: s.PolicyName(t, c)}] = true
		}
	}
	var out []Difference
	owned := slices.Clone(st.Owned)
	slices.SortFunc(owned, func(a, b OwnedPolicy) int {
		return strings.Compare(a.Table.String()+"\x00"+a.Name, b.Table.String()+"\x00"+b.Name)
	})
	for _, p := range owned {
		if want[p] {
			continue
		}
		out = append(out, Difference{
			Object:     fmt.Sprintf("policy %s on %s", p.Name, p.Table),
			Problem:    "no longer in the spec",
			Statements: []string{"DROP POLICY IF EXISTS " + ident(p.Name) + " ON " + p.Table.ident()},
		})
	}
	return out
}
