package rls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
//
// It takes four round trips whatever the number of tables (two after a Reconcile that found
// nothing, see VerifyAfter): the observation (two) and the checks, sent together as one
// simple-protocol query, below pgx's tracers. An insert that fails (a table whose row cannot be
// made of defaults, or a failed isolation) ends that query; the checks go on from the next table.
func Verify(ctx context.Context, db DB, s Spec) (*Verification, error) {
	return verify(ctx, db, s, nil)
}

// VerifyAfter is Verify right after Reconcile returned res for the same spec: when that found
// nothing to change, its observation stands for Verify's own (two round trips and a second read
// of the catalogs fewer, which is most of a drift check that finds nothing).
func VerifyAfter(ctx context.Context, db DB, s Spec, res *Result) (*Verification, error) {
	if res == nil || res.Drifted() {
		return verify(ctx, db, s, nil)
	}
	return verify(ctx, db, s, res.observed)
}

// verify runs the checks against st, or against a new observation when st is nil.
func verify(ctx context.Context, db DB, s Spec, st *State) (*Verification, error) {
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

	if st == nil {
		if st, err = observe(ctx, tx, s, ownedScope{}); err != nil {
			return nil, err
		}
	}
	if len(st.MissingRoles) > 0 {
		return nil, &MissingRoleError{Roles: st.MissingRoles}
	}
	if st.Helper == nil {
		v.Problems = append(v.Problems, "function "+helperCall+" is missing")
	}
	claimsA, err := claimsLiteral(subjectA)
	if err != nil {
		return nil, err
	}
	claimsB, err := claimsLiteral(subjectB)
	if err != nil {
		return nil, err
	}
	checks := verifier{tx: tx, s: s, st: st, a: subjectA, claimsA: claimsA, claimsB: claimsB, v: v}
	v.Tables = make([]TableVerification, len(s.Tables))
	checks.exercised = make([]isolationFacts, len(s.Tables))
	if err := checks.run(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// claimsLiteral is the request.jwt.claims PostgREST would set for subject, as an SQL literal.
func claimsLiteral(subject string) (string, error) {
	claims, err := json.Marshal(map[string]string{"sub": subject, "role": RoleAuthenticated})
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	return literal(string(claims)), nil
}

// verifier runs Verify's checks: the statements of all tables go out as one simple-protocol
// query (no prepared statement per table name, one round trip), and each result is read in order.
type verifier struct {
	tx               pgx.Tx
	s                Spec
	st               *State
	a                string // subject A
	claimsA, claimsB string // SQL literals
	v                *Verification
	// exercised are what the isolation check found per table, beside v.Tables.
	exercised []isolationFacts
}

// isolationFacts are the results of one table's isolation check.
type isolationFacts struct {
	ran           bool     // the row was inserted and counted
	own           int64    // rows subject A sees of its own
	leaks         []string // what subject B could do with A's row: read, update, delete
	insertProblem string   // the insert failed on row-level security
}

// stepKind says what a statement's result means.
type stepKind int

const (
	stepNone      stepKind = iota // SAVEPOINT, SET, set_config: no result to read
	stepHelper                    // the helper's value as subject A
	stepRLSActive                 // row_security_active()
	stepInsert                    // subject A inserts a row of defaults
	stepOwn                       // rows subject A sees of its own
	stepRead                      // rows of A that subject B sees
	stepUpdate                    // rows of A that subject B updates
	stepDelete                    // rows of A that subject B deletes
)

type step struct {
	sql   string
	kind  stepKind
	table int // index in the spec's tables; -1 for none
}

// run sends the checks from the first table on; after an insert failed it sends the rest again
// from the next table.
func (c *verifier) run(ctx context.Context) error {
	steps := []step{
		{sql: "SELECT set_config('request.jwt.claims', " + c.claimsA + ", true)", table: -1},
		{sql: "SET LOCAL ROLE " + ident(RoleAuthenticated), table: -1},
	}
	if c.st.Helper != nil {
		steps = append(steps, step{sql: "SELECT " + helperCall, kind: stepHelper, table: -1})
	}
	for from := 0; ; {
		steps = append(steps, c.tableSteps(from)...)
		failed, err := c.send(ctx, steps)
		if err != nil {
			return err
		}
		if failed < 0 {
			break
		}
		// The table's insert failed; the query ended there. Undo it, go on from the next table.
		if _, err := c.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT rls_verify"); err != nil {
			return fmt.Errorf("verifying %s: %w", c.s.Tables[failed].Ref(), err)
		}
		from, steps = failed+1, nil
	}
	for i, t := range c.s.Tables {
		c.finish(i, t)
	}
	return nil
}

// tableSteps are the statements checking the tables from index from on.
func (c *verifier) tableSteps(from int) []step {
	var out []step
	for i := from; i < len(c.s.Tables); i++ {
		t := c.s.Tables[i]
		ref := t.Ref()
		c.v.Tables[i] = TableVerification{Table: ref, Isolation: IsolationNotRun}
		if ts := c.st.Tables[ref]; ts == nil || !ts.Exists {
			continue
		}
		out = append(out, step{sql: "SELECT row_security_active(" + literal(ref.ident()) + "::regclass)", kind: stepRLSActive, table: i})
		if !t.has(CommandSelect) || !t.has(CommandInsert) {
			continue
		}
		col, a := ident(t.Column()), literal(c.a)
		out = append(out,
			step{sql: "SAVEPOINT rls_verify", table: i},
			step{sql: "INSERT INTO " + ref.ident() + " DEFAULT VALUES", kind: stepInsert, table: i},
			step{sql: "SELECT count(*) FROM " + ref.ident() + " WHERE " + col + " = " + a, kind: stepOwn, table: i},
			step{sql: "SELECT set_config('request.jwt.claims', " + c.claimsB + ", true)", table: i},
			step{sql: "SELECT count(*) FROM " + ref.ident() + " WHERE " + col + " = " + a, kind: stepRead, table: i},
		)
		if t.has(CommandUpdate) {
			out = append(out, step{sql: "WITH u AS (UPDATE " + ref.ident() + " SET " + col + " = " + col + " WHERE " + col + " = " + a +
				" RETURNING 1) SELECT count(*) FROM u", kind: stepUpdate, table: i})
		}
		if t.has(CommandDelete) {
			out = append(out, step{sql: "WITH d AS (DELETE FROM " + ref.ident() + " WHERE " + col + " = " + a +
				" RETURNING 1) SELECT count(*) FROM d", kind: stepDelete, table: i})
		}
		// Rolling back to the savepoint undoes the row and subject B's claims.
		out = append(out, step{sql: "ROLLBACK TO SAVEPOINT rls_verify", table: i})
	}
	return out
}

// send runs steps as one query and records their results. It returns the index of the table
// whose insert failed (the rest of the query did not run), or -1.
func (c *verifier) send(ctx context.Context, steps []step) (int, error) {
	if len(steps) == 0 {
		return -1, nil
	}
	sqls := make([]string, len(steps))
	for i, st := range steps {
		sqls[i] = st.sql
	}
	results, err := c.tx.Conn().PgConn().Exec(ctx, strings.Join(sqls, ";\n")).ReadAll()
	for i, r := range results {
		if i >= len(steps) {
			break
		}
		if err := c.record(steps[i], r); err != nil {
			return -1, err
		}
	}
	if err == nil {
		return -1, nil
	}
	if len(results) >= len(steps) {
		return -1, fmt.Errorf("verifying: %w", err)
	}
	failed := steps[len(results)]
	var pgErr *pgconn.PgError
	if failed.kind != stepInsert || !errors.As(err, &pgErr) {
		what := "verifying"
		if failed.table >= 0 {
			what += " " + c.s.Tables[failed.table].Ref().String()
		}
		return -1, fmt.Errorf("%s: %w", what, err)
	}
	tv := &c.v.Tables[failed.table]
	if strings.Contains(pgErr.Message, "row-level security") {
		tv.Isolation = IsolationFailed
		c.exercised[failed.table].insertProblem = "a user cannot insert its own row into " + tv.Table.String() + ": " + pgErr.Message
	} else {
		tv.Note = "a row with default values cannot be inserted: " + err.Error()
	}
	return failed.table, nil
}

// record keeps one statement's result.
func (c *verifier) record(st step, r *pgconn.Result) error {
	if r.Err != nil {
		return fmt.Errorf("verifying: %w", r.Err)
	}
	if st.kind == stepNone || st.kind == stepInsert {
		return nil
	}
	var value *string
	if len(r.Rows) == 1 && len(r.Rows[0]) == 1 && r.Rows[0][0] != nil {
		s := string(r.Rows[0][0])
		value = &s
	}
	if st.kind == stepHelper {
		c.v.HelperReturnsSubject = value != nil && *value == c.a
		if !c.v.HelperReturnsSubject {
			c.v.Problems = append(c.v.Problems, fmt.Sprintf("%s returned %s, not the subject of request.jwt.claims", helperCall, deref(value)))
		}
		return nil
	}
	tv := &c.v.Tables[st.table]
	if value == nil {
		return fmt.Errorf("verifying %s: no result", tv.Table)
	}
	if st.kind == stepRLSActive {
		tv.RLSActive = *value == "t"
		return nil
	}
	n, err := strconv.ParseInt(*value, 10, 64)
	if err != nil {
		return fmt.Errorf("verifying %s: %w", tv.Table, err)
	}
	iso := &c.exercised[st.table]
	switch st.kind {
	case stepOwn:
		iso.own, iso.ran = n, true
	case stepRead, stepUpdate, stepDelete:
		if n > 0 {
			iso.leaks = append(iso.leaks, map[stepKind]string{stepRead: "read", stepUpdate: "update", stepDelete: "delete"}[st.kind])
		}
	}
	return nil
}

// finish turns what was read about table i into its problems and isolation outcome.
func (c *verifier) finish(i int, t Table) {
	tv := &c.v.Tables[i]
	ref := tv.Table
	ts := c.st.Tables[ref]
	if ts == nil || !ts.Exists {
		tv.Problems = append(tv.Problems, "table "+ref.String()+" does not exist")
		tv.Note = "table missing"
		return
	}
	tv.RLSEnabled = ts.RLSEnabled
	if !ts.RLSEnabled {
		tv.Problems = append(tv.Problems, "row level security disabled on "+ref.String())
	}
	if ts.RLSEnabled && !tv.RLSActive {
		tv.Problems = append(tv.Problems, "row level security does not apply to "+RoleAuthenticated+" on "+ref.String())
	}
	for _, cmd := range t.Cmds() {
		name := c.s.PolicyName(t, cmd)
		j := policyIndex(ts.Policies, name)
		switch {
		case j < 0:
			tv.Problems = append(tv.Problems, "policy "+name+" on "+ref.String()+" is missing")
		case policyMismatch(ts.Policies[j], cmd, t.Column()) != "":
			tv.Problems = append(tv.Problems, "policy "+name+" on "+ref.String()+" was altered: "+policyMismatch(ts.Policies[j], cmd, t.Column()))
		}
		if !ts.Privileges[cmd] {
			tv.Problems = append(tv.Problems, RoleAuthenticated+" lacks "+pgCommand[cmd]+" on "+ref.String())
		}
	}
	iso := c.exercised[i]
	switch {
	case !t.has(CommandSelect) || !t.has(CommandInsert):
		tv.Note = "needs both select and insert policies"
	case iso.insertProblem != "":
		tv.Problems = append(tv.Problems, iso.insertProblem)
	case !iso.ran: // the insert failed for another reason: Note says which
	case iso.own != 1:
		tv.Isolation = IsolationFailed
		tv.Problems = append(tv.Problems, fmt.Sprintf("a user sees %d of the 1 row it inserted into %s", iso.own, ref))
	case len(iso.leaks) > 0:
		tv.Isolation = IsolationFailed
		tv.Problems = append(tv.Problems, fmt.Sprintf("another user could %s a user's row in %s", strings.Join(iso.leaks, ", "), ref))
	default:
		tv.Isolation = IsolationPassed
	}
}

func policyIndex(ps []PolicyState, name string) int {
	for i, p := range ps {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// syntheticSubject is a user id no provider issues, so that checks never meet real rows.
func syntheticSubject() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on supported platforms
	return "insforge-operator-verify-" + hex.EncodeToString(b)
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}
