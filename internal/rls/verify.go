package rls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Isolation is the outcome of the row isolation check on one table.
type Isolation string

// Isolation outcomes.
const (
	// IsolationPassed: a row inserted by one subject was visible to it and invisible (and, where
	// those commands are managed, not updatable or deletable) to another.
	IsolationPassed Isolation = "Passed"
	// IsolationFailed: the second subject could see or change the first one's row, or the first
	// could not insert its own row.
	IsolationFailed Isolation = "Failed"
	// IsolationNotRun: the check needs both select and insert policies, and a row that can be
	// inserted with default values; see TableVerification.Note.
	IsolationNotRun Isolation = "NotRun"
)

// Verification is the result of Verify.
type Verification struct {
	// Subject is the synthetic user id the checks ran as.
	Subject string
	// HelperReturnsSubject is true when requesting_user_id() returned Subject.
	HelperReturnsSubject bool
	// Problems found outside any table.
	Problems []string
	// Tables holds one result per managed table, in spec order.
	Tables []TableVerification
}

// OK reports whether every check passed (a NotRun isolation check does not fail it).
func (v *Verification) OK() bool {
	if !v.HelperReturnsSubject || len(v.Problems) > 0 {
		return false
	}
	for _, t := range v.Tables {
		if !t.OK() {
			return false
		}
	}
	return true
}

// Summary lists every problem, for a condition message.
func (v *Verification) Summary() string {
	all := append([]string(nil), v.Problems...)
	for _, t := range v.Tables {
		all = append(all, t.Problems...)
	}
	return strings.Join(all, "; ")
}

// TableVerification is the result for one table.
type TableVerification struct {
	Table TableRef
	// RLSEnabled is pg_class.relrowsecurity.
	RLSEnabled bool
	// RLSActive is row_security_active() as authenticated: false when the role bypasses RLS.
	RLSActive bool
	// Isolation is the behavioural check's outcome; Note says why it did not run.
	Isolation Isolation
	Note      string
	// Problems lists what is wrong; empty when OK.
	Problems []string
}

// OK reports whether the table is protected as the spec says.
func (t TableVerification) OK() bool { return len(t.Problems) == 0 }

// Verify proves the applied state works, as PostgREST would run a signed-in user's request: in a
// transaction that is always rolled back it sets request.jwt.claims for a synthetic subject, assumes
// authenticated, checks that requesting_user_id() returns the subject and, per table, that RLS is
// enabled and in force, the policies are present and unaltered, and that a row inserted by the
// subject is invisible to a second subject. Nothing it writes survives; sequences used by a
// table's defaults may advance. The connected role must be allowed to SET ROLE authenticated.
func Verify(ctx context.Context, db DB, s Spec) (*Verification, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	subjectA, subjectB := syntheticSubject(), syntheticSubject()
	v := &Verification{Subject: subjectA}

	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, fmt.Errorf("beginning verification: %w", err)
	}
	// Verification must never leave anything behind, whatever happens.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	st, err := observe(ctx, tx, s)
	if err != nil {
		return nil, err
	}
	if len(st.MissingRoles) > 0 {
		return nil, &MissingRoleError{Roles: st.MissingRoles}
	}
	if err := setClaims(ctx, tx, subjectA); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+ident(RoleAuthenticated)); err != nil {
		return nil, fmt.Errorf("assuming %s: %w", RoleAuthenticated, err)
	}
	if st.Helper == nil {
		v.Problems = append(v.Problems, "function "+helperCall+" is missing")
	} else {
		var got *string
		if err := tx.QueryRow(ctx, "SELECT "+helperCall).Scan(&got); err != nil {
			return nil, fmt.Errorf("calling %s as %s: %w", helperCall, RoleAuthenticated, err)
		}
		v.HelperReturnsSubject = got != nil && *got == subjectA
		if !v.HelperReturnsSubject {
			v.Problems = append(v.Problems, fmt.Sprintf("%s returned %s, not the subject of request.jwt.claims", helperCall, deref(got)))
		}
	}
	for _, t := range s.Tables {
		tv, err := verifyTable(ctx, tx, s, t, st.Tables[t.Ref()], subjectA, subjectB)
		if err != nil {
			return nil, err
		}
		v.Tables = append(v.Tables, tv)
	}
	return v, nil
}

func verifyTable(ctx context.Context, tx pgx.Tx, s Spec, t Table, ts *TableState, a, b string) (TableVerification, error) {
	ref := t.Ref()
	tv := TableVerification{Table: ref, Isolation: IsolationNotRun}
	if ts == nil || !ts.Exists {
		tv.Problems = append(tv.Problems, "table "+ref.String()+" does not exist")
		tv.Note = "table missing"
		return tv, nil
	}
	tv.RLSEnabled = ts.RLSEnabled
	if !ts.RLSEnabled {
		tv.Problems = append(tv.Problems, "row level security disabled on "+ref.String())
	}
	if err := tx.QueryRow(ctx, "SELECT row_security_active($1::regclass)", ref.ident()).Scan(&tv.RLSActive); err != nil {
		return tv, fmt.Errorf("checking row security on %s: %w", ref, err)
	}
	if ts.RLSEnabled && !tv.RLSActive {
		tv.Problems = append(tv.Problems, "row level security does not apply to "+RoleAuthenticated+" on "+ref.String())
	}
	for _, c := range t.Cmds() {
		name := s.PolicyName(t, c)
		i := policyIndex(ts.Policies, name)
		switch {
		case i < 0:
			tv.Problems = append(tv.Problems, "policy "+name+" on "+ref.String()+" is missing")
		case policyMismatch(ts.Policies[i], c, t.Column()) != "":
			tv.Problems = append(tv.Problems, "policy "+name+" on "+ref.String()+" was altered: "+policyMismatch(ts.Policies[i], c, t.Column()))
		}
		if !ts.Privileges[c] {
			tv.Problems = append(tv.Problems, RoleAuthenticated+" lacks "+pgCommand[c]+" on "+ref.String())
		}
	}
	if !t.has(CommandSelect) || !t.has(CommandInsert) {
		tv.Note = "needs both select and insert policies"
		return tv, nil
	}
	if err := isolation(ctx, tx, t, a, b, &tv); err != nil {
		return tv, err
	}
	return tv, nil
}

// isolation inserts a row as subject a inside a savepoint and checks what subject b can do with it.
func isolation(ctx context.Context, tx pgx.Tx, t Table, a, b string, tv *TableVerification) error {
	ref, col := t.Ref(), ident(t.Column())
	if _, err := tx.Exec(ctx, "SAVEPOINT rls_verify"); err != nil {
		return fmt.Errorf("verifying %s: %w", ref, err)
	}
	defer func() { _, _ = tx.Exec(ctx, "ROLLBACK TO SAVEPOINT rls_verify") }()

	if _, err := tx.Exec(ctx, "INSERT INTO "+ref.ident()+" DEFAULT VALUES"); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && strings.Contains(pgErr.Message, "row-level security") {
			tv.Isolation = IsolationFailed
			tv.Problems = append(tv.Problems, "a user cannot insert its own row into "+ref.String()+": "+pgErr.Message)
			return nil
		}
		if isConnErr(err) {
			return fmt.Errorf("verifying %s: %w", ref, err)
		}
		tv.Note = "a row with default values cannot be inserted: " + err.Error()
		return nil
	}
	count := func(sql string) (int64, error) {
		var n int64
		err := tx.QueryRow(ctx, sql, a).Scan(&n)
		return n, err
	}
	own, err := count("SELECT count(*) FROM " + ref.ident() + " WHERE " + col + " = $1")
	if err != nil {
		return fmt.Errorf("verifying %s: %w", ref, err)
	}
	if err := setClaims(ctx, tx, b); err != nil {
		return err
	}
	defer func() { _ = setClaims(ctx, tx, a) }()
	var leaks []string
	if n, err := count("SELECT count(*) FROM " + ref.ident() + " WHERE " + col + " = $1"); err != nil {
		return fmt.Errorf("verifying %s: %w", ref, err)
	} else if n > 0 {
		leaks = append(leaks, "read")
	}
	for _, c := range []struct {
		cmd Command
		sql string
	}{
		{CommandUpdate, "WITH u AS (UPDATE " + ref.ident() + " SET " + col + " = " + col + " WHERE " + col + " = $1 RETURNING 1) SELECT count(*) FROM u"},
		{CommandDelete, "WITH d AS (DELETE FROM " + ref.ident() + " WHERE " + col + " = $1 RETURNING 1) SELECT count(*) FROM d"},
	} {
		if !t.has(c.cmd) {
			continue
		}
		if n, err := count(c.sql); err != nil {
			return fmt.Errorf("verifying %s: %w", ref, err)
		} else if n > 0 {
			leaks = append(leaks, strings.ToLower(pgCommand[c.cmd]))
		}
	}
	switch {
	case own != 1:
		tv.Isolation = IsolationFailed
		tv.Problems = append(tv.Problems, fmt.Sprintf("a user sees %d of the 1 row it inserted into %s", own, ref))
	case len(leaks) > 0:
		tv.Isolation = IsolationFailed
		tv.Problems = append(tv.Problems, fmt.Sprintf("another user could %s a user's row in %s", strings.Join(leaks, ", "), ref))
	default:
		tv.Isolation = IsolationPassed
	}
	return nil
}

func policyIndex(ps []PolicyState, name string) int {
	for i, p := range ps {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// setClaims sets request.jwt.claims for the rest of the transaction, as PostgREST does.
func setClaims(ctx context.Context, tx pgx.Tx, subject string) error {
	claims, err := json.Marshal(map[string]string{"sub": subject, "role": RoleAuthenticated})
	if err != nil {
		return fmt.Errorf("encoding claims: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('request.jwt.claims', $1, true)", string(claims)); err != nil {
		return fmt.Errorf("setting request.jwt.claims: %w", err)
	}
	return nil
}

// syntheticSubject is a user id no provider issues, so that checks never meet real rows.
func syntheticSubject() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on supported platforms
	return "insforge-operator-verify-" + hex.EncodeToString(b)
}

func isConnErr(err error) bool {
	var pgErr *pgconn.PgError
	return !errors.As(err, &pgErr)
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}
