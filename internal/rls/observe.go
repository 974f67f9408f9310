package rls

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

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
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// ownedScope says where observe looks for the policies commented for the spec's owner
// (State.Owned). Those on the spec's tables are read anyway; searching every policy comment in
// the database reads every integration's, so its cost grows with the fleet.
type ownedScope struct {
	// everywhere searches every policy comment in the database.
	everywhere bool
	// also are tables besides the spec's to search.
	also []TableRef
}

// Observe reads the state relevant to a spec in a read-only transaction. It changes nothing.
func Observe(ctx context.Context, db DB, s Spec) (*State, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return observeReadOnly(ctx, db, s, ownedScope{everywhere: true})
}

func observeReadOnly(ctx context.Context, db DB, s Spec, owned ownedScope) (*State, error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("beginning the observation: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	return observe(ctx, tx, s, owned)
}

// observe reads the catalogs in two round trips: the API roles first (the privilege functions
// fail on unknown roles), then everything else in one pipelined batch of a few statements that
// each cover all of the spec's tables.
func observe(ctx context.Context, q querier, s Spec, owned ownedScope) (*State, error) {
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

	// The spec's tables, then the other tables searched for the owner's policies.
	var refs []TableRef
	var schemas, names, columns []string
	for _, t := range s.Tables {
		ref := t.Ref()
		refs = append(refs, ref)
		schemas, names, columns = append(schemas, ref.Schema), append(names, ref.Name), append(columns, t.Column())
		if _, ok := st.Schemas[ref.Schema]; !ok {
			st.Schemas[ref.Schema] = SchemaState{}
		}
		st.Tables[ref] = &TableState{Privileges: map[Command]bool{}}
	}
	policyRefs := slices.Clone(refs)
	if !owned.everywhere {
		for _, ref := range owned.also {
			if !slices.Contains(policyRefs, ref) {
				policyRefs = append(policyRefs, ref)
			}
		}
	}
	var polSchemas, polNames []string
	for _, ref := range policyRefs {
		polSchemas, polNames = append(polSchemas, ref.Schema), append(polNames, ref.Name)
	}
	other := map[TableRef][]PolicyState{} // policies on the extra tables, for Owned only

	b := &pgx.Batch{}
	b.Queue(helperQuery, RoleAuthenticated).QueryRow(func(row pgx.Row) error {
		var h HelperState
		err := row.Scan(&h.Body, &h.ReturnType, &h.Language, &h.Volatility, &h.AuthenticatedCanExecute)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return fmt.Errorf("reading %s: %w", helperCall, err)
		default:
			st.Helper = &h
		}
		return nil
	})
	b.Queue(schemasQuery, slices.Sorted(maps.Keys(st.Schemas)), RoleAuthenticated).Query(func(rows pgx.Rows) error {
		var name string
		var usage bool
		_, err := pgx.ForEachRow(rows, []any{&name, &usage}, func() error {
			st.Schemas[name] = SchemaState{Exists: true, AuthenticatedUsage: usage}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading schemas: %w", err)
		}
		return nil
	})
	b.Queue(tablesQuery, schemas, names, RoleAuthenticated).Query(func(rows pgx.Rows) error {
		var i int
		var rls, sel, ins, upd, del bool
		_, err := pgx.ForEachRow(rows, []any{&i, &rls, &sel, &ins, &upd, &del}, func() error {
			ts := st.Tables[refs[i-1]]
			ts.Exists, ts.RLSEnabled = true, rls
			ts.Privileges[CommandSelect], ts.Privileges[CommandInsert] = sel, ins
			ts.Privileges[CommandUpdate], ts.Privileges[CommandDelete] = upd, del
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading tables: %w", err)
		}
		return nil
	})
	b.Queue(columnsQuery, schemas, names, columns).Query(func(rows pgx.Rows) error {
		var i int
		var indexed bool
		var col ColumnState
		_, err := pgx.ForEachRow(rows, []any{&i, &col.Type, &col.Default, &indexed, &col.ForeignKeys}, func() error {
			ts := st.Tables[refs[i-1]]
			c := col
			ts.Column, ts.Indexed = &c, indexed
			col = ColumnState{}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading the user id columns: %w", err)
		}
		return nil
	})
	b.Queue(policiesQuery, polSchemas, polNames).Query(func(rows pgx.Rows) error {
		var i int
		var cmd, comment string
		var p PolicyState
		_, err := pgx.ForEachRow(rows, []any{&i, &p.Name, &cmd, &p.Permissive, &p.Roles, &p.Using, &p.Check, &comment}, func() error {
			p.Command = polcmd[cmd]
			p.Owner = ownerFromComment(comment)
			if ref := policyRefs[i-1]; i <= len(refs) {
				st.Tables[ref].Policies = append(st.Tables[ref].Policies, p)
			} else {
				other[ref] = append(other[ref], p)
			}
			p = PolicyState{}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading policies: %w", err)
		}
		return nil
	})
	if owned.everywhere {
		b.Queue(ownedQuery, ownerComment(s.Owner)).Query(func(rows pgx.Rows) error {
			var err error
			st.Owned, err = scanOwned(rows)
			if err != nil {
				return fmt.Errorf("reading policies owned by %s: %w", s.Owner, err)
			}
			return nil
		})
	}
	if s.Provider == ProviderBetterAuth {
		st.BetterAuth = &BetterAuthState{}
		queueBetterAuth(b, st.BetterAuth)
	}
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	// A table missing from the catalogs has no column; an existing one without it, none either.
	for _, ts := range st.Tables {
		if !ts.Exists {
			ts.Column, ts.Indexed, ts.Policies = nil, false, nil
		}
	}
	if !owned.everywhere {
		st.Owned = ownedOn(s.Owner, policyRefs, st.Tables, other)
	}
	return st, nil
}

// ownedOn lists the owner's policies among those read, in the order the database-wide search
// returns them.
func ownedOn(owner string, refs []TableRef, tables map[TableRef]*TableState, other map[TableRef][]PolicyState) []OwnedPolicy {
	var out []OwnedPolicy
	for _, ref := range refs {
		ps := other[ref]
		if ts := tables[ref]; ts != nil {
			ps = ts.Policies
		}
		for _, p := range ps {
			if p.Owner == owner {
				out = append(out, OwnedPolicy{Table: ref, Name: p.Name})
			}
		}
	}
	slices.SortFunc(out, func(a, b OwnedPolicy) int {
		return cmp.Or(strings.Compare(a.Table.Schema, b.Table.Schema), strings.Compare(a.Table.Name, b.Table.Name),
			strings.Compare(a.Name, b.Name))
	})
	return out
}

const helperQuery = `
SELECT p.prosrc, format_type(p.prorettype, NULL), l.lanname, p.provolatile::text,
       has_function_privilege($1, p.oid, 'EXECUTE')
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = 'public' AND p.proname = 'requesting_user_id' AND p.pronargs = 0`

const schemasQuery = `
SELECT n.nspname::text, has_schema_privilege($2, n.oid, 'USAGE')
FROM unnest($1::text[]) AS s(name) JOIN pg_namespace n ON n.nspname = s.name`

// The per-table queries take parallel arrays (schema, name[, column]) and return the 1-based
// position of each table they found. They use pg_attribute rather than
// information_schema.columns, which hides columns the connected role has no privilege on.
const tablesQuery = `
SELECT t.i::int, c.relrowsecurity,
       has_table_privilege($3, c.oid, 'SELECT'), has_table_privilege($3, c.oid, 'INSERT'),
       has_table_privilege($3, c.oid, 'UPDATE'), has_table_privilege($3, c.oid, 'DELETE')
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(schema, name, i)
JOIN pg_namespace n ON n.nspname = t.schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind IN ('r', 'p')`

const columnsQuery = `
SELECT t.i::int, format_type(a.atttypid, a.atttypmod), coalesce(pg_get_expr(d.adbin, d.adrelid), ''),
       EXISTS (SELECT 1 FROM pg_index x
               WHERE x.indrelid = a.attrelid AND x.indisvalid AND x.indpred IS NULL AND x.indkey[0] = a.attnum),
       ARRAY(SELECT con.conname || ' -> ' || con.confrelid::regclass::text FROM pg_constraint con
             WHERE con.conrelid = a.attrelid AND con.contype = 'f' AND a.attnum = ANY (con.conkey)
             ORDER BY con.conname)
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(schema, name, col, i)
JOIN pg_namespace n ON n.nspname = t.schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind IN ('r', 'p')
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = t.col AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum`

const policiesQuery = `
SELECT t.i::int, pol.polname::text, pol.polcmd::text, pol.polpermissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END
             FROM unnest(pol.polroles) AS r ORDER BY 1),
       coalesce(pg_get_expr(pol.polqual, pol.polrelid), ''),
       coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), ''),
       coalesce(d.description, '')
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(schema, name, i)
JOIN pg_namespace n ON n.nspname = t.schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind IN ('r', 'p')
JOIN pg_policy pol ON pol.polrelid = c.oid
LEFT JOIN pg_description d ON d.objoid = pol.oid AND d.classoid = 'pg_policy'::regclass AND d.objsubid = 0
ORDER BY t.i, pol.polname`

// ownedQuery reads every policy comment in the database: its cost grows with the number of
// integrations, so observe runs it only when the owner's earlier tables are unknown.
const ownedQuery = `
SELECT n.nspname, c.relname, pol.polname
FROM pg_policy pol
JOIN pg_class c ON c.oid = pol.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_description d ON d.objoid = pol.oid AND d.classoid = 'pg_policy'::regclass AND d.objsubid = 0
WHERE d.description = $1
ORDER BY 1, 2, 3`

// polcmd maps pg_policy.polcmd to commands; '*' (ALL) maps to "".
var polcmd = map[string]Command{"r": CommandSelect, "a": CommandInsert, "w": CommandUpdate, "d": CommandDelete}

// observeOwned searches every policy comment in the database for the owner's (Teardown).
func observeOwned(ctx context.Context, q querier, owner string) ([]OwnedPolicy, error) {
	rows, err := q.Query(ctx, ownedQuery, ownerComment(owner))
	if err != nil {
		return nil, fmt.Errorf("reading policies owned by %s: %w", owner, err)
	}
	out, err := scanOwned(rows)
	if err != nil {
		return nil, fmt.Errorf("reading policies owned by %s: %w", owner, err)
	}
	return out, nil
}

func scanOwned(rows pgx.Rows) ([]OwnedPolicy, error) {
	var out []OwnedPolicy
	var p OwnedPolicy
	_, err := pgx.ForEachRow(rows, []any{&p.Table.Schema, &p.Table.Name, &p.Name}, func() error {
		out = append(out, p)
		return nil
	})
	return out, err
}

// queueBetterAuth reads the better_auth schema and the API roles' privileges in it.
func queueBetterAuth(b *pgx.Batch, ba *BetterAuthState) {
	api := []string{RoleAnon, RoleAuthenticated}
	b.Queue(`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, BetterAuthSchema).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&ba.Exists); err != nil {
			return fmt.Errorf("reading schema %s: %w", BetterAuthSchema, err)
		}
		return nil
	})
	b.Queue(`
SELECT r.rolname || ' ' || a.privilege_type
FROM pg_namespace n, aclexplode(n.nspacl) AS a
JOIN pg_roles r ON r.oid = a.grantee
WHERE n.nspname = $1 AND r.rolname = ANY ($2)
ORDER BY 1`, BetterAuthSchema, api).Query(func(rows pgx.Rows) error {
		var err error
		if ba.SchemaGrants, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("reading privileges on schema %s: %w", BetterAuthSchema, err)
		}
		return nil
	})
	b.Queue(`
SELECT r.rolname || ' ' || a.privilege_type || ' on ' || quote_ident(c.relname)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) AS a
JOIN pg_roles r ON r.oid = a.grantee
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND r.rolname = ANY ($2)
ORDER BY 1`, BetterAuthSchema, api).Query(func(rows pgx.Rows) error {
		var err error
		if ba.ObjectGrants, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("reading privileges in schema %s: %w", BetterAuthSchema, err)
		}
		return nil
	})
}

// collect runs a query returning one column.
func collect[T any](ctx context.Context, q querier, sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[T])
}
