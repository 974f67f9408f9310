package rls

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TeardownResult says what Teardown removed and what it kept.
type TeardownResult struct {
	// DroppedPolicies are "name on schema.table" for every policy removed.
	DroppedPolicies []string
	// HelperDropped is true when public.requesting_user_id() was removed.
	HelperDropped bool
	// HelperUsers explains why the helper was kept: the objects that still use it.
	HelperUsers []string
	// Executed are the statements run.
	Executed []string
}

// Teardown undoes an integration for deletionPolicy Delete: it drops every policy commented for
// s.Owner (wherever it is, so tables removed from the spec earlier are covered), then drops the
// shared helper only when nothing but the spec's own column defaults uses it (those defaults are
// dropped with it). Row level security stays enabled: disabling it would open the tables to the
// API roles, which InsForge grants full DML on public by default. Tables, columns, indexes and the
// better_auth schema hold user data and are kept.
func Teardown(ctx context.Context, db DB, s Spec) (*TeardownResult, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	res := &TeardownResult{}
	exec := func(tx pgx.Tx, stmt string) error {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("tearing down %s: %q: %w", s.Owner, stmt, err)
		}
		res.Executed = append(res.Executed, stmt)
		return nil
	}
	err := inTx(ctx, db, s.Role, 0, func(tx pgx.Tx) error {
		if err := lockSpec(ctx, tx, s); err != nil {
			return err
		}
		owned, err := observeOwned(ctx, tx, s.Owner)
		if err != nil {
			return err
		}
		for _, p := range owned {
			if err := exec(tx, "DROP POLICY IF EXISTS "+ident(p.Name)+" ON "+p.Table.ident()); err != nil {
				return err
			}
			res.DroppedPolicies = append(res.DroppedPolicies, p.Name+" on "+p.Table.String())
		}
		if err := advisoryLock(ctx, tx, helperLockKey); err != nil {
			return err
		}
		users, ours, exists, err := helperDependents(ctx, tx, s)
		if err != nil {
			return err
		}
		res.HelperUsers = users
		if exists && len(users) == 0 {
			for _, stmt := range ours {
				if err := exec(tx, stmt); err != nil {
					return err
				}
			}
			if err := exec(tx, "DROP FUNCTION IF EXISTS "+helperCall); err != nil {
				return err
			}
			res.HelperDropped = true
		}
		if len(res.Executed) > 0 {
			return exec(tx, notifySQL)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// helperDependents lists what still uses the helper: catalog dependencies (policies, column
// defaults, views) and functions whose body names it (SQL and PL/pgSQL bodies record no
// dependency). The spec's own user id column defaults are returned separately, as the statements
// that drop them.
func helperDependents(ctx context.Context, q querier, s Spec) (users, ownDefaults []string, exists bool, err error) {
	var oid *uint32
	if err := q.QueryRow(ctx, `SELECT to_regprocedure('public.requesting_user_id()')::oid`).Scan(&oid); err != nil {
		return nil, nil, false, fmt.Errorf("looking up %s: %w", helperCall, err)
	}
	if oid == nil {
		return nil, nil, false, nil
	}
	mine := map[[3]string]bool{}
	for _, t := range s.Tables {
		mine[[3]string{t.Ref().Schema, t.Ref().Name, t.Column()}] = true
	}
	rows, err := q.Query(ctx, `
SELECT pg_describe_object(d.classid, d.objid, d.objsubid),
       coalesce(n.nspname, ''), coalesce(c.relname, ''), coalesce(a.attname, '')
FROM pg_depend d
LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
LEFT JOIN pg_class c ON c.oid = ad.adrelid
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
WHERE d.refclassid = 'pg_proc'::regclass AND d.refobjid = $1 AND d.deptype = 'n'
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text, '', '', ''
FROM pg_proc p WHERE p.oid <> $1 AND p.prosrc LIKE '%requesting_user_id%'
ORDER BY 1`, *oid)
	if err != nil {
		return nil, nil, true, fmt.Errorf("reading what uses %s: %w", helperCall, err)
	}
	var desc, schema, table, column string
	_, err = pgx.ForEachRow(rows, []any{&desc, &schema, &table, &column}, func() error {
		if column != "" && mine[[3]string{schema, table, column}] {
			ref := TableRef{Schema: schema, Name: table}
			ownDefaults = append(ownDefaults, "ALTER TABLE "+ref.ident()+" ALTER COLUMN "+ident(column)+" DROP DEFAULT")
			return nil
		}
		users = append(users, desc)
		return nil
	})
	if err != nil {
		return nil, nil, true, fmt.Errorf("reading what uses %s: %w", helperCall, err)
	}
	return users, ownDefaults, true, nil
}
