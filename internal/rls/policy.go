package rls

import (
	"fmt"
	"strings"
)

// ownerCommentPrefix starts the comment that marks a policy as managed by the operator for one
// owner; the rest of the comment is the owner.
const ownerCommentPrefix = "insforge-integrations-operator owner="

func ownerComment(owner string) string { return ownerCommentPrefix + owner }

// ownerFromComment returns the owner named in a policy comment, or "" for other comments.
func ownerFromComment(c string) string {
	owner, ok := strings.CutPrefix(c, ownerCommentPrefix)
	if !ok {
		return ""
	}
	return owner
}

// pgCommand spells commands as SQL does.
var pgCommand = map[Command]string{
	CommandSelect: "SELECT", CommandInsert: "INSERT", CommandUpdate: "UPDATE", CommandDelete: "DELETE",
}

// ownerCheck is the expression every policy compares the user id column with; the sub-select lets
// the planner evaluate the helper once per statement instead of once per row.
func ownerCheck(column string) string {
	return ident(column) + " = (SELECT " + helperCall + ")"
}

// policyClauses returns the USING and WITH CHECK expressions for a command ("" when absent).
func policyClauses(c Command, column string) (using, check string) {
	expr := ownerCheck(column)
	switch c {
	case CommandSelect, CommandDelete:
		return expr, ""
	case CommandInsert:
		return "", expr
	default:
		return expr, expr
	}
}

func createPolicySQL(name string, ref TableRef, c Command, column string) string {
	using, check := policyClauses(c, column)
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE POLICY %s ON %s AS PERMISSIVE FOR %s TO %s", ident(name), ref.ident(), pgCommand[c], ident(RoleAuthenticated))
	if using != "" {
		b.WriteString(" USING (" + using + ")")
	}
	if check != "" {
		b.WriteString(" WITH CHECK (" + check + ")")
	}
	return b.String()
}

// policyItem keeps one command's policy: recreated (drop, create, comment) when missing or
// altered, only re-commented when just the ownership comment is missing.
func (s Spec) policyItem(t Table, c Command, table func(*State) *TableState) item {
	ref, name := t.Ref(), s.PolicyName(t, c)
	comment := "COMMENT ON POLICY " + ident(name) + " ON " + ref.ident() + " IS " + literal(ownerComment(s.Owner))
	recreate := []string{
		"DROP POLICY IF EXISTS " + ident(name) + " ON " + ref.ident(),
		createPolicySQL(name, ref, c, t.Column()),
		comment,
	}
	find := func(st *State) *PolicyState {
		ps := table(st).Policies
		for i := range ps {
			if ps[i].Name == name {
				return &ps[i]
			}
		}
		return nil
	}
	return item{
		object: "policy " + name + " on " + ref.String(),
		stmts:  recreate,
		check: func(st *State) string {
			p := find(st)
			switch {
			case p == nil:
				return "missing"
			case policyMismatch(*p, c, t.Column()) != "":
				return policyMismatch(*p, c, t.Column())
			case p.Owner != s.Owner:
				return "ownership comment missing"
			}
			return ""
		},
		fix: func(st *State) []string {
			if p := find(st); p != nil && policyMismatch(*p, c, t.Column()) == "" {
				return []string{comment}
			}
			return recreate
		},
	}
}

// policyMismatch explains how an observed policy differs from the generated one ("" if it does not).
func policyMismatch(p PolicyState, c Command, column string) string {
	using, check := policyClauses(c, column)
	var diffs []string
	if p.Command != c {
		diffs = append(diffs, fmt.Sprintf("command is %s, want %s", cmdLabel(p.Command), pgCommand[c]))
	}
	if !p.Permissive {
		diffs = append(diffs, "is RESTRICTIVE, want PERMISSIVE")
	}
	if len(p.Roles) != 1 || p.Roles[0] != RoleAuthenticated {
		diffs = append(diffs, fmt.Sprintf("applies to %s, want %s", strings.Join(p.Roles, ", "), RoleAuthenticated))
	}
	if squash(p.Using, true) != squash(using, true) {
		diffs = append(diffs, fmt.Sprintf("USING is %q, want %q", p.Using, using))
	}
	if squash(p.Check, true) != squash(check, true) {
		diffs = append(diffs, fmt.Sprintf("WITH CHECK is %q, want %q", p.Check, check))
	}
	return strings.Join(diffs, "; ")
}

func cmdLabel(c Command) string {
	if c == "" {
		return "ALL"
	}
	return pgCommand[c]
}
