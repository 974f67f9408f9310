package rls

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// ident quotes a possibly qualified identifier. Every identifier in generated SQL goes through it.
func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

// literal quotes a string constant for the few places SQL cannot take a parameter (COMMENT ON is
// a utility statement). It uses the E'...' form when backslashes are present so that the result does
// not depend on standard_conforming_strings.
func literal(s string) string {
	s = strings.ReplaceAll(s, "\x00", "")
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}
