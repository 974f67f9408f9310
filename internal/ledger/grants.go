package ledger

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// GatewayAccess are the statements, run by the ledger's owner (the operator's role) on a
// migrated ledger, that give role exactly what a gateway needs: its rows (claims, outcomes, the
// resolver's updates, retention deletes), the totals summary it keeps in the same statements,
// the deltas the summary's triggers write for other writers, and a read of the schema version
// (its start-up check). The ledger's tables have row-level security with no policy for other
// roles (InsForge grants anon and authenticated DML on public tables), so role also gets a
// policy on each. No DDL is granted. Rerunning them is harmless.
func GatewayAccess(opts Options, role string) ([]string, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	n := newNames(opts)
	r := pgx.Identifier{role}.Sanitize()
	policy := pgx.Identifier{gatewayPolicy(role)}.Sanitize()
	stmts := []string{"GRANT USAGE ON SCHEMA " + n.qSchema + " TO " + r}
	for _, t := range []struct{ table, privileges string }{
		{n.qTable, "SELECT, INSERT, UPDATE, DELETE"},
		{n.qTotals, "SELECT, INSERT, UPDATE"},
		{n.qTotalsDelta, "INSERT"},
	} {
		stmts = append(stmts,
			"GRANT "+t.privileges+" ON "+t.table+" TO "+r,
			"DROP POLICY IF EXISTS "+policy+" ON "+t.table,
			"CREATE POLICY "+policy+" ON "+t.table+" TO "+r+" USING (true) WITH CHECK (true)")
	}
	return append(stmts, "GRANT SELECT ON "+n.qVersions+" TO "+r), nil
}

// ErrNoSuchRole is a gateway role that does not exist in the ledger's database.
var ErrNoSuchRole = errors.New("the role does not exist")

// ErrRoleRefused is a gateway role the ledger's privileges must not go to: one that cannot log
// in (InsForge's anon and authenticated are such roles, and every API client acts as one of
// them) or one that other roles are members of (they would inherit the privileges).
var ErrRoleRefused = errors.New("the role is not a login role of its own: only a LOGIN role that no other role is a member of may be a gateway role")

// EnsureGatewayAccess gives role what GatewayAccess lists unless it holds all of it already:
// one catalog read when nothing is missing, the statements in one transaction otherwise. It
// reports whether it wrote anything. A role that does not exist is ErrNoSuchRole, one that
// must not get them ErrRoleRefused.
func EnsureGatewayAccess(ctx context.Context, pool *pgxpool.Pool, opts Options, role string) (bool, error) {
	stmts, err := GatewayAccess(opts, role)
	if err != nil {
		return false, err
	}
	n := newNames(opts.withDefaults())
	var exists, usable, complete bool
	err = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
	EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = $1 AND r.rolcanlogin
		AND NOT EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.roleid = r.oid)),
	EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)
	AND has_schema_privilege($1, $2, 'USAGE')
	AND has_table_privilege($1, $3, 'SELECT') AND has_table_privilege($1, $3, 'INSERT')
	AND has_table_privilege($1, $3, 'UPDATE') AND has_table_privilege($1, $3, 'DELETE')
	AND has_table_privilege($1, $4, 'SELECT') AND has_table_privilege($1, $4, 'INSERT')
	AND has_table_privilege($1, $4, 'UPDATE') AND has_table_privilege($1, $5, 'INSERT')
	AND has_table_privilege($1, $6, 'SELECT')
	AND (SELECT count(*) FROM pg_policy p WHERE p.polname = $7
		AND p.polrelid IN ($3::regclass, $4::regclass, $5::regclass)) = 3`,
		role, n.schema, n.qTable, n.qTotals, n.qTotalsDelta, n.qVersions, gatewayPolicy(role)).Scan(&exists, &usable, &complete)
	if err != nil {
		return false, fmt.Errorf("ledger: reading the gateway role's privileges: %w", err)
	}
	if !exists {
		return false, ErrNoSuchRole
	}
	if !usable {
		return false, ErrRoleRefused
	}
	if complete {
		return false, nil
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("ledger: granting the gateway role its privileges: %w", err)
	}
	return true, nil
}

// gatewayPolicy names role's policy on each ledger table, cut as PostgreSQL cuts identifiers
// (63 bytes, on a character boundary) so that the catalog check finds it.
func gatewayPolicy(role string) string {
	name := "gateway_" + role
	for len(name) > 63 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}
