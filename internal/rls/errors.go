package rls

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/insforge/integrations-operator/internal/pgpool"
)

// The errors below are guard rails: the controller maps them to Stalled=True, because retrying
// without a change to the spec or the database cannot succeed. Several may be joined with
// errors.Join; use errors.As to find each.

// SpecError is an invalid Spec.
type SpecError struct{ Err error }

func (e *SpecError) Error() string { return "invalid spec: " + e.Err.Error() }
func (e *SpecError) Unwrap() error { return e.Err }

// MissingRoleError says the database lacks InsForge's API roles.
type MissingRoleError struct{ Roles []string }

func (e *MissingRoleError) Error() string {
	return fmt.Sprintf("role(s) %s do not exist: this does not look like an InsForge database (it creates anon and authenticated)",
		strings.Join(e.Roles, ", "))
}

// TableMissingError names a managed table that does not exist and was not asked to be created.
type TableMissingError struct{ Table TableRef }

func (e *TableMissingError) Error() string {
	return fmt.Sprintf("table %s does not exist: create it, or set createIfMissing on the table to let the operator create it", e.Table)
}

// ColumnMissingError names a user id column that does not exist and is not managed.
type ColumnMissingError struct {
	Table  TableRef
	Column string
}

func (e *ColumnMissingError) Error() string {
	return fmt.Sprintf("column %s of %s does not exist: add it as text, or set manageColumn to let the operator add it", e.Column, e.Table)
}

// ColumnTypeError says the user id column has a type that cannot hold provider user ids.
type ColumnTypeError struct {
	Table  TableRef
	Column string
	Type   string
	// ForeignKeys are constraints on the column that must be dropped before migrating.
	ForeignKeys []string
}

// IsUUID reports whether the column is a uuid, the common mistake carried over from InsForge's
// native auth (auth.users.id is a uuid).
func (e *ColumnTypeError) IsUUID() bool { return e.Type == "uuid" }

func (e *ColumnTypeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "column %s of %s is %s, but third-party providers issue string user ids (Clerk user_2x…, Auth0 auth0|…, Kinde kp_…) that a %s cannot hold; migrate it to text: ",
		e.Column, e.Table, e.Type, e.Type)
	if len(e.ForeignKeys) > 0 {
		fmt.Fprintf(&b, "first drop the foreign keys %s (user ids no longer live in auth.users), then ", strings.Join(e.ForeignKeys, ", "))
	}
	fmt.Fprintf(&b, "ALTER TABLE %s ALTER COLUMN %s TYPE text USING %s::text",
		e.Table.ident(), ident(e.Column), ident(e.Column))
	return b.String()
}

// ConflictError says another integration already owns policies for a table and command.
type ConflictError struct {
	Table   TableRef
	Command Command
	Policy  string
	// Owner is the other integration's owner key.
	Owner string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s on %s is already managed by integration %s (policy %s): two integrations cannot own the same table's policies",
		pgCommand[e.Command], e.Table, e.Owner, e.Policy)
}

// IncompatibleHelperError says public.requesting_user_id() exists with a return type that
// CREATE OR REPLACE cannot change.
type IncompatibleHelperError struct{ ReturnType string }

func (e *IncompatibleHelperError) Error() string {
	return fmt.Sprintf("function %s exists and returns %s, not text: drop it (and the policies using it) so that it can be recreated", helperCall, e.ReturnType)
}

// IsTerminal reports whether err cannot be cured by retrying: a guard rail, an invalid spec, bad
// credentials, a missing database or role, or missing privileges. The controller sets Stalled=True
// for these and Ready=False with backoff for everything else (IsTransient).
func IsTerminal(err error) bool {
	if err == nil {
		return false
	}
	var (
		spec     *SpecError
		role     *MissingRoleError
		table    *TableMissingError
		column   *ColumnMissingError
		colType  *ColumnTypeError
		conflict *ConflictError
		helper   *IncompatibleHelperError
		parse    *pgconn.ParseConfigError
	)
	if errors.As(err, &spec) || errors.As(err, &role) || errors.As(err, &table) || errors.As(err, &column) ||
		errors.As(err, &colType) || errors.As(err, &conflict) || errors.As(err, &helper) || errors.Is(err, pgpool.ErrInvalidDSN) || errors.As(err, &parse) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgpool.IsAuthFailure(err): // bad password, no pg_hba entry
			return true
		case pgErr.Code == "3D000", // database does not exist
			pgErr.Code == "42501", // insufficient privilege, e.g. not the table owner
			pgErr.Code == "22023", // invalid parameter, e.g. SET ROLE to an unknown role
			pgErr.Code == "42704": // undefined object
			return true
		}
	}
	return false
}

// IsTransient reports whether err may go away on retry (unreachable server, too many connections,
// serialization failures, cancelled contexts). It is the complement of IsTerminal for non-nil
// errors: unknown errors are retried, with backoff, rather than stalled.
func IsTransient(err error) bool {
	return err != nil && !IsTerminal(err)
}
