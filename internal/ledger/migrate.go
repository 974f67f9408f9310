package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MigrateResult reports what Migrate did.
type MigrateResult struct {
	// From and To are the schema versions before and after.
	From, To int
	// RealtimeChannelCreated is true when the InsForge realtime channel row was inserted.
	RealtimeChannelCreated bool
	// Realtime is true when the database has InsForge's realtime.channels.
	Realtime bool
}

// Changed reports whether Migrate wrote anything.
func (r MigrateResult) Changed() bool { return r.From != r.To || r.RealtimeChannelCreated }

// migrateLockTimeout bounds the wait for the table lock that ALTER TABLE needs, so a migration
// against a busy ledger fails with an error instead of stalling the gateway's writes behind it.
const migrateLockTimeout = "10s"

// Migrate brings the ledger schema to the latest version. It is safe to run concurrently from
// many processes (an advisory lock serialises them) and rerunning it is a no-op that executes
// no DDL: a read-only check comes first.
func Migrate(ctx context.Context, pool *pgxpool.Pool, opts Options) (MigrateResult, error) {
	return migrateTo(ctx, pool, opts, latestVersion())
}

// migrateTo is Migrate up to version target (tests build older schemas with it).
func migrateTo(ctx context.Context, pool *pgxpool.Pool, opts Options, target int) (MigrateResult, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return MigrateResult{}, err
	}
	n := newNames(opts)

	state, err := readSchemaState(ctx, pool, n)
	if err != nil {
		return MigrateResult{}, err
	}
	if state.version >= target && (!state.realtime || state.channel) {
		return MigrateResult{From: state.version, To: state.version, Realtime: state.realtime}, nil
	}

	var res MigrateResult
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", n.lockKey("migrate")); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+migrateLockTimeout+"'"); err != nil {
			return fmt.Errorf("setting lock_timeout: %w", err)
		}
		ddl := "CREATE SCHEMA IF NOT EXISTS " + n.qSchema + ";\n" +
			"CREATE TABLE IF NOT EXISTS " + n.qVersions + ` (
				ledger text NOT NULL,
				version integer NOT NULL,
				name text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now(),
				PRIMARY KEY (ledger, version))`
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("creating the schema version table: %w", err)
		}
		// Re-read under the lock: another process may have migrated meanwhile.
		s, err := readSchemaState(ctx, tx, n)
		if err != nil {
			return err
		}
		res = MigrateResult{From: s.version, To: s.version, Realtime: s.realtime}
		for _, m := range migrations {
			if m.version <= s.version || m.version > target {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql(n)); err != nil {
				return fmt.Errorf("applying ledger migration %d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+n.qVersions+" (ledger, version, name) VALUES ($1, $2, $3)",
				n.table, m.version, m.name); err != nil {
				return fmt.Errorf("recording ledger migration %d: %w", m.version, err)
			}
			res.To = m.version
		}
		if s.realtime && !s.channel {
			if err := createRealtimeChannel(ctx, tx, n); err != nil {
				return err
			}
			res.RealtimeChannelCreated = true
		}
		return nil
	})
	if err != nil {
		return MigrateResult{}, fmt.Errorf("ledger: migrating %s: %w", n.qTable, err)
	}
	return res, nil
}

type schemaState struct {
	version  int
	realtime bool // realtime.channels exists
	channel  bool // our channel row exists in it
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func readSchemaState(ctx context.Context, q queryRower, n names) (schemaState, error) {
	var s schemaState
	var hasVersions bool
	err := q.QueryRow(ctx,
		"SELECT to_regclass($1) IS NOT NULL, to_regclass('realtime.channels') IS NOT NULL",
		n.qVersions).Scan(&hasVersions, &s.realtime)
	if err != nil {
		return s, fmt.Errorf("ledger: reading the schema state: %w", err)
	}
	if hasVersions {
		err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+n.qVersions+" WHERE ledger = $1", n.table).
			Scan(&s.version)
		if err != nil {
			return s, fmt.Errorf("ledger: reading the schema version: %w", err)
		}
	}
	if s.realtime {
		err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM realtime.channels WHERE pattern = $1)", n.table).
			Scan(&s.channel)
		if err != nil {
			return s, fmt.Errorf("ledger: reading realtime.channels: %w", err)
		}
	}
	if s.version > latestVersion() {
		return s, fmt.Errorf("ledger: %s is at schema version %d, newer than this binary's %d: %w",
			n.qTable, s.version, latestVersion(), errNewerSchema)
	}
	return s, nil
}

var errNewerSchema = errors.New("downgrade not supported")

// createRealtimeChannel inserts the channel row InsForge's realtime.publish needs; without it
// publish only raises a warning and the event is dropped.
func createRealtimeChannel(ctx context.Context, tx pgx.Tx, n names) error {
	_, err := tx.Exec(ctx, `INSERT INTO realtime.channels (pattern, description, enabled)
		SELECT $1, $2, true WHERE NOT EXISTS (SELECT 1 FROM realtime.channels WHERE pattern = $1)`,
		n.table, "x402 payment events (settled)")
	if err != nil {
		return fmt.Errorf("creating the realtime channel %q: %w", n.table, err)
	}
	return nil
}

// SchemaVersion returns the applied schema version of the ledger (0 when none).
func SchemaVersion(ctx context.Context, pool *pgxpool.Pool, opts Options) (int, error) {
	opts = opts.withDefaults()
	s, err := readSchemaState(ctx, pool, newNames(opts))
	return s.version, err
}

// LatestSchemaVersion is the version Migrate brings a ledger to.
func LatestSchemaVersion() int { return latestVersion() }
