package rls

import (
	"strings"
	"unicode"
)

// squash reduces an SQL expression to a form in which the server's deparsed text (from
// pg_get_expr, which drops redundant qualification, adds parentheses and aliases sub-selects)
// compares equal to the text this package generates. It removes white space, and with
// deparsed=true also parentheses, double quotes, "public." and the sub-select alias the server
// adds. It is a comparison key only, never SQL.
func squash(s string, deparsed bool) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsSpace(r) {
			continue
		}
		if deparsed && (r == '(' || r == ')' || r == '"') {
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	if !deparsed {
		return strings.ToLower(out)
	}
	out = strings.ReplaceAll(out, "public.", "")
	return strings.ReplaceAll(out, "ASrequesting_user_id", "")
}
