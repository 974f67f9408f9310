package rls

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DB is what the engine needs from a connection: *pgxpool.Pool and *pgx.Conn both satisfy it.
type DB interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// querier is the read side of a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Observe reads the state relevant to a spec in a read-only transaction. It changes nothing.
func Observe(ctx context.Context, db DB, s Spec) (*State, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("beginning the observation: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	return observe(ctx, tx, s)
}

func observe(ctx context.Context, q querier, s Spec) (*State, error) {
	st := &State{Schemas: map[string]SchemaState{}, Tables: map[TableRef]*TableState{}}
	missing, err := collect[string](ctx, q,
		`SELECT r FROM unnest($1::text[]) AS r WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) ORDER BY r`,
		[]string{RoleAnon, RoleAuthenticated})
	if err != nil {
		return nil, fmt.Errorf("reading roles: %w", err)
	}
	if st.MissingRoles = missing; len(missing) > 0 {
		// The privilege functions below fail on unknown roles; the guard reports this instead.
		return st, nil
	}
	if st.Helper, err = observeHelper(ctx, q); err != nil {
		return nil, err
	}
	for _, t := range s.Tables {
		ref := t.Ref()
		if _, ok := st.Schemas[ref.Schema]; !ok {
			var ss SchemaState
			err := q.QueryRow(ctx, `SELECT has_schema_privilege($2, oid, 'USAGE') FROM pg_namespace WHERE nspname = $1`,
				ref.Schema, RoleAuthenticated).Scan(&ss.AuthenticatedUsage)
			switch {
			case err == nil:
				ss.Exists = true
			case !errors.Is(err, pgx.ErrNoRows):
				return nil, fmt.Errorf("reading schema %s: %w", ref.Schema, err)
			}
			st.Schemas[ref.Schema] = ss
		}
		if st.Tables[ref], err = observeTable(ctx, q, ref, t.Column()); err != nil {
			return nil, err
		}
	}
	owned, err := observeOwned(ctx, q, s.Owner)
	if err != nil {
		return nil, err
	}
	st.Owned = owned
	if s.Provider == ProviderBetterAuth {
		if st.BetterAuth, err = observeBetterAuth(ctx, q); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func observeHelper(ctx context.Context, q querier) (*HelperState, error) {
	var h HelperState
	err := q.QueryRow(ctx, `
SELECT p.prosrc, format_type(p.prorettype, NULL), l.lanname, p.provolatile::text,
       has_function_privilege($1, p.oid, 'EXECUTE')
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = 'public' AND p.proname = 'requesting_user_id' AND p.pronargs = 0`, RoleAuthenticated).
		Scan(&h.Body, &h.ReturnType, &h.Language, &h.Volatility, &h.AuthenticatedCanExecute)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", helperCall, err)
	}
	return &h, nil
}

// observeTable reads one table. It uses pg_attribute rather than information_schema.columns,
// which hides columns the connected role has no privilege on.
func observeTable(ctx context.Context, q querier, ref TableRef, column string) (*TableState, error) {
	ts := &TableState{Privileges: map[Command]bool{}}
	var (
		oid                            uint32
		canSel, canIns, canUpd, canDel bool
	)
	err := q.QueryRow(ctx, `
SELECT c.oid, c.relrowsecurity,
       has_table_privilege($3, c.oid, 'SELECT'), has_table_privilege($3, c.oid, 'INSERT'),
       has_table_privilege($3, c.oid, 'UPDATE'), has_table_privilege($3, c.oid, 'DELETE')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, ref.Schema, ref.Name, RoleAuthenticated).
		Scan(&oid, &ts.RLSEnabled, &canSel, &canIns, &canUpd, &canDel)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ts, nil
	case err != nil:
		return nil, fmt.Errorf("reading table %s: %w", ref, err)
	}
	ts.Exists = true
	ts.Privileges[CommandSelect], ts.Privileges[CommandInsert] = canSel, canIns
	ts.Privileges[CommandUpdate], ts.Privileges[CommandDelete] = canUpd, canDel

	var col ColumnState
	err = q.QueryRow(ctx, `
SELECT format_type(a.atttypid, a.atttypmod), coalesce(pg_get_expr(d.adbin, d.adrelid), ''),
       EXISTS (SELECT 1 FROM pg_index i
               WHERE i.indrelid = a.attrelid AND i.indisvalid AND i.indpred IS NULL AND i.indkey[0] = a.attnum),
       ARRAY(SELECT con.conname || ' -> ' || con.confrelid::regclass::text FROM pg_constraint con
             WHERE con.conrelid = a.attrelid AND con.contype = 'f' AND a.attnum = ANY (con.conkey)
             ORDER BY con.conname)
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, oid, column).
		Scan(&col.Type, &col.Default, &ts.Indexed, &col.ForeignKeys)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("reading column %s of %s: %w", column, ref, err)
	default:
		ts.Column = &col
	}

	rows, err := q.Query(ctx, `
SELECT pol.polname, pol.polcmd::text, pol.polpermissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END
             FROM unnest(pol.polroles) AS r ORDER BY 1),
       coalesce(pg_get_expr(pol.polqual, pol.polrelid), ''),
       coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), ''),
       coalesce(obj_description(pol.oid, 'pg_policy'), '')
FROM pg_policy pol WHERE pol.polrelid = $1 ORDER BY pol.polname`, oid)
	if err != nil {
		return nil, fmt.Errorf("reading policies of %s: %w", ref, err)
	}
	var cmd, comment string
	var p PolicyState
	_, err = pgx.ForEachRow(rows, []any{&p.Name, &cmd, &p.Permissive, &p.Roles, &p.Using, &p.Check, &comment}, func() error {
		p.Command = polcmd[cmd]
		p.Owner = ownerFromComment(comment)
		ts.Policies = append(ts.Policies, p)
		p = PolicyState{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading policies of %s: %w", ref, err)
	}
	return ts, nil
}

// polcmd maps pg_policy.polcmd to commands; '*' (ALL) maps to "".
var polcmd = map[string]Command{"r": CommandSelect, "a": CommandInsert, "w": CommandUpdate, "d": CommandDelete}

func observeOwned(ctx context.Context, q querier, owner string) ([]OwnedPolicy, error) {
	rows, err := q.Query(ctx, `
SELECT n.nspname, c.relname, pol.polname
FROM pg_policy pol
JOIN pg_class c ON c.oid = pol.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_description d ON d.objoid = pol.oid AND d.classoid = 'pg_policy'::regclass AND d.objsubid = 0
WHERE d.description = $1
ORDER BY 1, 2, 3`, ownerComment(owner))
	if err != nil {
		return nil, fmt.Errorf("reading policies owned by %s: %w", owner, err)
	}
	var out []OwnedPolicy
	var p OwnedPolicy
	_, err = pgx.ForEachRow(rows, []any{&p.Table.Schema, &p.Table.Name, &p.Name}, func() error {
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading policies owned by %s: %w", owner, err)
	}
	return out, nil
}

func observeBetterAuth(ctx context.Context, q querier) (*BetterAuthState, error) {
	ba := &BetterAuthState{}
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, BetterAuthSchema).Scan(&ba.Exists); err != nil {
		return nil, fmt.Errorf("reading schema %s: %w", BetterAuthSchema, err)
	}
	if !ba.Exists {
		return ba, nil
	}
	api := []string{RoleAnon, RoleAuthenticated}
	var err error
	ba.SchemaGrants, err = collect[string](ctx, q, `
SELECT r.rolname || ' ' || a.privilege_type
FROM pg_namespace n, aclexplode(n.nspacl) AS a
JOIN pg_roles r ON r.oid = a.grantee
WHERE n.nspname = $1 AND r.rolname = ANY ($2)
ORDER BY 1`, BetterAuthSchema, api)
	if err != nil {
		return nil, fmt.Errorf("reading privileges on schema %s: %w", BetterAuthSchema, err)
	}
	ba.ObjectGrants, err = collect[string](ctx, q, `
SELECT r.rolname || ' ' || a.privilege_type || ' on ' || quote_ident(c.relname)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) AS a
JOIN pg_roles r ON r.oid = a.grantee
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND r.rolname = ANY ($2)
ORDER BY 1`, BetterAuthSchema, api)
	if err != nil {
		return nil, fmt.Errorf("reading privileges in schema %s: %w", BetterAuthSchema, err)
	}
	return ba, nil
}

// collect runs a query returning one column.
func collect[T any](ctx context.Context, q querier, sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[T])
}
