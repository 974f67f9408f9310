package rls

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Mode says whether Reconcile may change the database.
type Mode string

// Modes.
const (
	// ModeApply executes the statements that fix the differences.
	ModeApply Mode = "apply"
	// ModeObserve only reports differences; it runs in a read-only transaction.
	ModeObserve Mode = "observe"
)

// DefaultLockTimeout bounds how long an apply waits for a table lock held by the application, so
// that a long-running transaction makes the reconcile fail (and retry) instead of queueing every
// query on the table behind it.
const DefaultLockTimeout = 10 * time.Second

// Options tune Reconcile.
type Options struct {
	// Mode defaults to ModeApply.
	Mode Mode
	// LockTimeout defaults to DefaultLockTimeout.
	LockTimeout time.Duration
	// OwnedOn, when not nil, are the tables besides the spec's where the owner may still have
	// policies (those it managed before, e.g. the tables its resource last reported): only they
	// are searched for policies the spec no longer asks for. Nil searches every policy comment in
	// the database, which reads every integration's: right when the earlier tables are unknown
	// (a new resource), too costly for every drift check of a large fleet. Observe mode, which
	// leaves such policies in place, always searches everywhere.
	OwnedOn []TableRef
}

// owned is where the options say to search for the owner's policies.
func (o Options) owned() ownedScope {
	if o.OwnedOn == nil || o.Mode == ModeObserve {
		return ownedScope{everywhere: true}
	}
	return ownedScope{also: o.OwnedOn}
}

// Result is the outcome of a reconcile.
type Result struct {
	// Differences found before applying, in apply order; empty means in sync.
	Differences []Difference
	// Executed are the statements run to fix them: nil in observe mode and when nothing differs.
	Executed []string
	// observed is the state the differences were found in; VerifyAfter uses it when there were
	// none.
	observed *State
}

// Drifted reports whether the database differed from the spec.
func (r *Result) Drifted() bool { return len(r.Differences) > 0 }

// Summary lists the differences for a Drifted condition message; empty when in sync.
func (r *Result) Summary() string {
	parts := make([]string, len(r.Differences))
	for i, d := range r.Differences {
		parts[i] = d.String()
	}
	return strings.Join(parts, "; ")
}

// StatementCount is the number of statements executed; 0 for a reconcile without drift.
func (r *Result) StatementCount() int { return len(r.Executed) }

// Reconcile observes the database, compares it with the spec and, in ModeApply, executes only the
// statements that fix the differences: in one transaction, under the integration's advisory lock
// (and one per table), as s.Role when set. Guard-rail errors are returned before anything is
// changed; see IsTerminal.
func Reconcile(ctx context.Context, db DB, s Spec, opts Options) (*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if opts.Mode == ModeObserve {
		st, err := observeReadOnly(ctx, db, s, opts.owned())
		if err != nil {
			return nil, err
		}
		diffs, err := Diff(s, st)
		if err != nil {
			return nil, err
		}
		return &Result{Differences: diffs, observed: st}, nil
	}
	if opts.Mode != "" && opts.Mode != ModeApply {
		return nil, &SpecError{Err: fmt.Errorf("unknown mode %q", opts.Mode)}
	}

	var res *Result
	err := inTx(ctx, db, s.Role, opts.LockTimeout, func(tx pgx.Tx) error {
		if err := lockSpec(ctx, tx, s); err != nil {
			return err
		}
		st, err := observe(ctx, tx, s, opts.owned())
		if err != nil {
			return err
		}
		diffs, err := Diff(s, st)
		if err != nil {
			return err
		}
		res = &Result{Differences: diffs, observed: st}
		if len(diffs) == 0 {
			return nil
		}
		if touchesHelper(diffs) {
			if err := advisoryLock(ctx, tx, helperLockKey); err != nil {
				return err
			}
		}
		res.Executed, err = fix(ctx, tx, s, diffs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// fix executes the differences' statements and the PostgREST notify as one simple-protocol query:
// one round trip however many there are (a first apply has about 50). The statements go through
// pgconn, below pgx's tracers. It returns the statements executed; a failing one ends the query
// and is named in the error with its difference.
func fix(ctx context.Context, tx pgx.Tx, s Spec, diffs []Difference) ([]string, error) {
	type stmt struct {
		sql  string
		diff int // the difference it fixes; -1 for a role switch or the notify
	}
	var script []stmt
	asRole := s.Role != ""
	for i, d := range diffs {
		if s.Role != "" && asRole == d.sessionRole {
			// Switch between the configured role and the connected one (see item.sessionRole).
			sql := "SET LOCAL ROLE NONE"
			if !d.sessionRole {
				sql = "SET LOCAL ROLE " + ident(s.Role)
			}
			script = append(script, stmt{sql: sql, diff: -1})
			asRole = !d.sessionRole
		}
		for _, sql := range d.Statements {
			script = append(script, stmt{sql: sql, diff: i})
		}
	}
	script = append(script, stmt{sql: notifySQL, diff: -1})
	sqls := make([]string, len(script))
	for i, st := range script {
		sqls[i] = st.sql
	}
	results, err := tx.Conn().PgConn().Exec(ctx, strings.Join(sqls, ";\n")).ReadAll()
	var executed []string
	for i := range min(len(results), len(script)) {
		if script[i].diff >= 0 || script[i].sql == notifySQL {
			executed = append(executed, script[i].sql)
		}
	}
	if err == nil {
		return executed, nil
	}
	if len(results) < len(script) {
		switch failed := script[len(results)]; {
		case failed.diff >= 0:
			return executed, fmt.Errorf("fixing %s: %w", diffs[failed.diff], err)
		case failed.sql == notifySQL:
			return executed, fmt.Errorf("notifying PostgREST: %w", err)
		default:
			return executed, fmt.Errorf("assuming role %s: %w", s.Role, err)
		}
	}
	return executed, fmt.Errorf("fixing the differences: %w", err)
}

func touchesHelper(diffs []Difference) bool {
	for _, d := range diffs {
		if d.Object == "function "+helperCall || d.Object == "EXECUTE on "+helperCall {
			return true
		}
	}
	return false
}

// inTx runs fn in a read-write transaction, as role when set, and commits when fn succeeds.
func inTx(ctx context.Context, db DB, role string, lockTimeout time.Duration, fn func(pgx.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	defer func() {
		if err != nil {
			// The transaction is useless after an error; its own rollback error adds nothing.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	// One round trip for the role and the timeout.
	b := &pgx.Batch{}
	if role != "" {
		b.Queue("SET LOCAL ROLE " + ident(role))
	}
	b.Queue("SELECT set_config('lock_timeout', $1, true)", fmt.Sprintf("%dms", lockTimeout.Milliseconds()))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		if role != "" {
			return fmt.Errorf("assuming role %s and setting lock_timeout: %w", role, err)
		}
		return fmt.Errorf("setting lock_timeout: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}
