package ledger

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Defaults for Options.
const (
	DefaultSchema = "public"
	DefaultTable  = "x402_payments"
)

// versionTable records applied migrations per ledger table in the ledger's schema.
const versionTable = "x402_ledger_schema"

// maxTableLen leaves room for the suffixes of derived index and function names within
// PostgreSQL's 63-byte identifier limit, so names are never silently truncated.
const maxTableLen = 40

// Options name the ledger table. The table name is also the NOTIFY channel and the InsForge
// realtime channel pattern, so the default matches InsForge's guide (x402_payments).
type Options struct {
	// Schema holds the table; default "public".
	Schema string
	// Table is the payments table; default "x402_payments".
	Table string
}

func (o Options) withDefaults() Options {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	return o
}

func (o Options) validate() error {
	if len(o.Table) > maxTableLen {
		return fmt.Errorf("ledger: table name %q is longer than %d bytes", o.Table, maxTableLen)
	}
	if len(o.Schema) > 63 {
		return fmt.Errorf("ledger: schema name %q is longer than 63 bytes", o.Schema)
	}
	if strings.ContainsRune(o.Table+o.Schema, 0) {
		return errors.New("ledger: schema and table names must not contain NUL")
	}
	return nil
}

// names are the quoted SQL identifiers derived from Options.
type names struct {
	schema, table  string // raw
	qSchema        string
	qTable         string // schema-qualified
	qVersions      string
	qNotifyFunc    string
	qUpdateTrigger string
	qInsertTrigger string
	// qTotals is the per-route summary table, qTotalsFunc the trigger function that keeps it.
	qTotals, qTotalsFunc, qTotalsDelta string
	// inflightIndex is the raw name of the in-flight index, as a unique violation reports it.
	inflightIndex string
}

func newNames(o Options) names {
	q := func(parts ...string) string { return pgx.Identifier(parts).Sanitize() }
	return names{
		schema:         o.Schema,
		table:          o.Table,
		qSchema:        q(o.Schema),
		qTable:         q(o.Schema, o.Table),
		qVersions:      q(o.Schema, versionTable),
		qNotifyFunc:    q(o.Schema, o.Table+"_notify"),
		qUpdateTrigger: q(o.Table + "_notify_update"),
		qInsertTrigger: q(o.Table + "_notify_insert"),
		inflightIndex:  o.Table + "_inflight_key",
		qTotals:        q(o.Schema, o.Table+"_totals"),
		qTotalsFunc:    q(o.Schema, o.Table+"_totals_apply"),
		qTotalsDelta:   q(o.Schema, o.Table+"_totals_delta"),
	}
}

// index returns the quoted name of a derived index.
func (n names) index(suffix string) string { return pgx.Identifier{n.table + "_" + suffix}.Sanitize() }

// lockKey derives a stable advisory-lock key per purpose and table, so two ledgers in one
// database do not serialise on each other.
func (n names) lockKey(purpose string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("x402-ledger/" + purpose + "/" + n.schema + "." + n.table))
	return int64(h.Sum64())
}

// routeLockKey derives a lock key per purpose, table and route, so each route's resolver leads
// on its own. The parts are length-prefixed, so no two (schema, table, route) share a key text.
func (n names) routeLockKey(purpose, route string) int64 {
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "x402-ledger/%s/%d:%s/%d:%s/%d:%s", purpose, len(n.schema), n.schema,
		len(n.table), n.table, len(route), route)
	return int64(h.Sum64())
}
