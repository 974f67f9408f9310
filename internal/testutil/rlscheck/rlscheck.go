// Package rlscheck shows row-level security at work the way an InsForge API request meets it:
// as the `authenticated` role with the JWT claims in `request.jwt.claims`, one user writes a row
// and another user cannot see or change it. The e2e suite and `make demo` use it.
package rlscheck

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Result is what each user saw. Everything runs in one rolled-back transaction.
type Result struct {
	Table string
	// OwnerSees is how many rows the owner sees after inserting one.
	OwnerSees int
	// OtherSees and OtherUpdated are what the second user saw and changed: 0 and 0 when RLS holds.
	OtherSees, OtherUpdated int
}

// Isolated reports whether the second user was kept out.
func (r Result) Isolated() bool { return r.OwnerSees == 1 && r.OtherSees == 0 && r.OtherUpdated == 0 }

// String is a one-line summary for people.
func (r Result) String() string {
	verdict := "isolated"
	if !r.Isolated() {
		verdict = "NOT ISOLATED"
	}
	return fmt.Sprintf("%s: owner inserted 1 row and sees %d; another user sees %d and updates %d → %s",
		r.Table, r.OwnerSees, r.OtherSees, r.OtherUpdated, verdict)
}

// Check inserts a row into schema.table (whose other columns must have defaults or be nullable)
// as owner, then counts and updates as other, all as `authenticated`, and rolls back.
// userColumn is the owner column the policies compare with the JWT subject.
func Check(ctx context.Context, databaseURL, schema, table, userColumn, owner, other string) (Result, error) {
	res := Result{Table: schema + "." + table}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return res, fmt.Errorf("rlscheck: connecting: %w", err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("rlscheck: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE authenticated`); err != nil {
		return res, fmt.Errorf("rlscheck: SET ROLE authenticated: %w", err)
	}
	as := func(sub string) error {
		_, err := tx.Exec(ctx, `SELECT set_config('request.jwt.claims', $1, true)`,
			fmt.Sprintf(`{"sub":%q,"role":"authenticated"}`, sub))
		return err
	}
	ident := pgx.Identifier{schema, table}.Sanitize()
	count := func(dst *int) error { return tx.QueryRow(ctx, `SELECT count(*) FROM `+ident).Scan(dst) }

	if err := as(owner); err != nil {
		return res, fmt.Errorf("rlscheck: claims: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+ident+` DEFAULT VALUES`); err != nil {
		return res, fmt.Errorf("rlscheck: inserting as %s: %w", owner, err)
	}
	if err := count(&res.OwnerSees); err != nil {
		return res, fmt.Errorf("rlscheck: counting as %s: %w", owner, err)
	}
	if err := as(other); err != nil {
		return res, fmt.Errorf("rlscheck: claims: %w", err)
	}
	if err := count(&res.OtherSees); err != nil {
		return res, fmt.Errorf("rlscheck: counting as %s: %w", other, err)
	}
	col := pgx.Identifier{userColumn}.Sanitize()
	tag, err := tx.Exec(ctx, `UPDATE `+ident+` SET `+col+` = `+col)
	if err != nil {
		return res, fmt.Errorf("rlscheck: updating as %s: %w", other, err)
	}
	res.OtherUpdated = int(tag.RowsAffected())
	return res, nil
}
