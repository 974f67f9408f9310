package ledger

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// migration is one schema step. Steps are append-only: never edit a released step, add a new one.
type migration struct {
	version int
	name    string
	sql     func(n names) string
}

// migrations in order. Version 1 adopts a table created by InsForge's x402 guide (CREATE TABLE IF
// NOT EXISTS plus ADD COLUMN IF NOT EXISTS), so fresh and guide-made tables end up identical.
var migrations = []migration{
	{version: 1, name: "two-phase payments table, indexes, RLS, notify trigger", sql: migration1},
	{version: 2, name: "served flag, one payment in flight per route and payer, released retention index", sql: migration2},
	{version: 3, name: "resolver scans through the route index", sql: migration3},
	{version: 4, name: "settled totals per route kept in a summary table", sql: migration4},
	{version: 5, name: "time-ordered payment ids (UUID version 7)", sql: migration5},
}

// latestVersion is the version a fully migrated ledger has.
func latestVersion() int { return migrations[len(migrations)-1].version }

// notifyStatuses are the transitions that notify listeners: the controller's totals change on
// settled, its pending count on pending, and both on failed (pending → failed).
const notifyStatuses = "('settled','pending','failed')"

func migration1(n names) string {
	r := strings.NewReplacer(
		"{T}", n.qTable,
		"{TNAME}", quoteLiteral(n.table),
		"{FN}", n.qNotifyFunc,
		"{UPD_TRIGGER}", n.qUpdateTrigger,
		"{INS_TRIGGER}", n.qInsertTrigger,
		"{PAYER_NONCE}", n.index("payer_nonce_key"),
		"{RESOLVER_IDX}", n.index("resolver_idx"),
		"{ROUTE_IDX}", n.index("route_idx"),
		"{CREATED_IDX}", n.index("created_idx"),
		"{STATUS_CHECK}", n.index("status_check"),
		"{AMOUNT_CHECK}", n.index("amount_check"),
		"{NOTIFY_STATUSES}", notifyStatuses,
	)
	return r.Replace(`
CREATE TABLE IF NOT EXISTS {T} (
	id uuid DEFAULT gen_random_uuid() PRIMARY KEY,
	payer_address text NOT NULL,
	endpoint text NOT NULL,
	amount text NOT NULL,
	tx_hash text UNIQUE,
	chain text,
	status text NOT NULL DEFAULT 'verifying',
	response_summary text,
	created_at timestamptz NOT NULL DEFAULT now()
);
-- The guide's tx_hash is NOT NULL; here it stays NULL until the payment settles.
ALTER TABLE {T} ALTER COLUMN tx_hash DROP NOT NULL;
ALTER TABLE {T} ALTER COLUMN status SET DEFAULT 'verifying';
ALTER TABLE {T}
	ADD COLUMN IF NOT EXISTS nonce text,
	ADD COLUMN IF NOT EXISTS route text,
	ADD COLUMN IF NOT EXISTS resource text,
	ADD COLUMN IF NOT EXISTS network text,
	ADD COLUMN IF NOT EXISTS asset text,
	ADD COLUMN IF NOT EXISTS pay_to text,
	ADD COLUMN IF NOT EXISTS facilitator text,
	ADD COLUMN IF NOT EXISTS mock boolean NOT NULL DEFAULT false,
	ADD COLUMN IF NOT EXISTS failure_reason text,
	ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0,
	ADD COLUMN IF NOT EXISTS claims integer NOT NULL DEFAULT 1,
	ADD COLUMN IF NOT EXISTS payload jsonb,
	ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now(),
	ADD COLUMN IF NOT EXISTS settled_at timestamptz;
-- NOT VALID: rows written by other tools before adoption are not re-checked.
ALTER TABLE {T} ADD CONSTRAINT {STATUS_CHECK}
	CHECK (status IN ('verifying','settling','pending','settled','failed','released')) NOT VALID;
ALTER TABLE {T} ADD CONSTRAINT {AMOUNT_CHECK} CHECK (amount ~ '^[0-9]+$') NOT VALID;

-- The cross-replica replay lock. Guide rows have a NULL nonce and never conflict.
CREATE UNIQUE INDEX IF NOT EXISTS {PAYER_NONCE} ON {T} (payer_address, nonce);
-- The resolver's scan: small, because only unfinished rows are in it.
CREATE INDEX IF NOT EXISTS {RESOLVER_IDX} ON {T} (status, updated_at)
	WHERE status IN ('verifying','settling','pending');
-- Totals per route and the last settlement.
CREATE INDEX IF NOT EXISTS {ROUTE_IDX} ON {T} (route, status, settled_at);
CREATE INDEX IF NOT EXISTS {CREATED_IDX} ON {T} (created_at DESC);

-- InsForge grants anon/authenticated DML on every public table; RLS with no policy shuts them
-- out. The owner and BYPASSRLS roles (project_admin) keep full access.
ALTER TABLE {T} ENABLE ROW LEVEL SECURITY;

-- SECURITY DEFINER: realtime.publish is revoked from PUBLIC, and the gateway's role need not
-- hold it. search_path is pinned and every name qualified, as a definer function must.
CREATE OR REPLACE FUNCTION {FN}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	PERFORM pg_catalog.pg_notify(TG_TABLE_NAME, pg_catalog.jsonb_build_object(
		'id', NEW.id, 'route', NEW.route, 'status', NEW.status, 'amount', NEW.amount,
		'mock', NEW.mock, 'tx_hash', NEW.tx_hash)::text);
	-- Checked per call so a realtime schema installed later is picked up; the lookup is cached.
	IF NEW.status = 'settled' AND pg_catalog.to_regprocedure('realtime.publish(text,text,jsonb)') IS NOT NULL THEN
		BEGIN
			-- Same event name and shape as InsForge's guide, so its dashboards keep working;
			-- the signed payload is left out.
			PERFORM realtime.publish({TNAME}, 'INSERT_' || {TNAME},
				pg_catalog.jsonb_build_object('new', pg_catalog.to_jsonb(NEW) - 'payload'));
		EXCEPTION WHEN OTHERS THEN
			-- A dashboard event must never make recording a settlement fail.
			RAISE WARNING 'x402 ledger: realtime.publish failed: %', SQLERRM;
		END;
	END IF;
	RETURN NULL;
END
$fn$;

-- The guide's trigger published every insert; with two-phase rows that would announce unpaid
-- claims (and the signed payload). It is replaced by the two triggers below.
DROP TRIGGER IF EXISTS x402_payment_realtime ON {T};
DROP TRIGGER IF EXISTS {UPD_TRIGGER} ON {T};
CREATE TRIGGER {UPD_TRIGGER} AFTER UPDATE OF status ON {T} FOR EACH ROW
	WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN {NOTIFY_STATUSES})
	EXECUTE FUNCTION {FN}();
DROP TRIGGER IF EXISTS {INS_TRIGGER} ON {T};
CREATE TRIGGER {INS_TRIGGER} AFTER INSERT ON {T} FOR EACH ROW
	WHEN (NEW.status IN {NOTIFY_STATUSES})
	EXECUTE FUNCTION {FN}();
`)
}

// quoteLiteral quotes s as an SQL string literal, for the few places DDL cannot take parameters
// (function bodies). standard_conforming_strings is on in every supported PostgreSQL.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// migration2 adds the served flag, the in-flight limit and the index the resolver's retention
// reads.
//
// The in-flight index cannot be built while a (route, payer) has two rows verifying or settling,
// which an older gateway allowed; the migration would then fail on every attempt. So, under the
// ACCESS EXCLUSIVE lock the ALTER TABLE takes first (no write can slip in before the index
// exists), each such group keeps one row in flight: a settling row if it has one (the newest),
// else the newest verifying row. The other verifying rows are released (no settle was called; an
// old gateway still working on one fails its MarkSettling and charges nothing). The other
// settling rows become pending, their updated_at kept: money may have moved, so only an outcome
// may follow, and pending is the state the resolver resolves exactly as it does settling (and in
// which the old gateway's own outcome is still accepted).
func migration2(n names) string {
	r := strings.NewReplacer(
		"{T}", n.qTable,
		"{INFLIGHT}", pgx.Identifier{n.inflightIndex}.Sanitize(),
		"{RELEASED_IDX}", n.index("released_idx"),
	)
	return r.Replace(`
-- Rows settled before this version count as served: the old gateway answered its own settled
-- outcome with the content, and every later replay of a settled row too. (A payer whose payment
-- the resolver settled and who never came back is the one it may deny; giving every old payment
-- one more free upstream call would be worse.) A constant default fills the column without
-- rewriting the table; the rows not settled are set back to false below, and new rows default
-- to false.
ALTER TABLE {T} ADD COLUMN IF NOT EXISTS served boolean NOT NULL DEFAULT true;
ALTER TABLE {T} ALTER COLUMN served SET DEFAULT false;
UPDATE {T} SET served = false WHERE status IS DISTINCT FROM 'settled';

WITH ranked AS (
	SELECT id, row_number() OVER (PARTITION BY route, payer_address
		ORDER BY status = 'settling' DESC, updated_at DESC, id) AS n
	FROM {T} WHERE status IN ('verifying', 'settling') AND route IS NOT NULL
)
UPDATE {T} AS p SET
	status = CASE p.status WHEN 'settling' THEN 'pending' ELSE 'released' END,
	failure_reason = CASE p.status
		WHEN 'settling' THEN 'ledger migration 2: another settle of this payer was in flight on this route; outcome unknown'
		ELSE 'ledger migration 2: another payment of this payer was in flight on this route' END,
	updated_at = CASE p.status WHEN 'settling' THEN p.updated_at ELSE now() END
FROM ranked WHERE p.id = ranked.id AND ranked.n > 1;

-- At most one payment verifying or settling per (route, payer), across replicas: one balance
-- cannot buy several upstream calls at once. Claim reports a violation as ErrPayerBusy.
CREATE UNIQUE INDEX IF NOT EXISTS {INFLIGHT} ON {T} (route, payer_address)
	WHERE status IN ('verifying', 'settling');
-- The resolver's retention: a route's released rows by age, without reading the rest.
CREATE INDEX IF NOT EXISTS {RELEASED_IDX} ON {T} (route, updated_at) WHERE status = 'released';
`)
}

// migration3 takes one index off the paid path. Version 1's resolver index covered verifying,
// settling and pending rows, so each payment wrote it twice (the claim and the settling mark),
// on top of the in-flight index version 2 added over the same rows. Since version 2 every
// resolver scan is per route, and the route index (route, status, settled_at) serves them all.
func migration3(n names) string {
	r := strings.NewReplacer("{RESOLVER_IDX}", n.index("resolver_idx"))
	return r.Replace(`
DROP INDEX IF EXISTS {RESOLVER_IDX};
`)
}

// migration4 keeps each route's settled totals in a summary table, so that reading them costs the
// same at ten million payments as at a thousand (the controller reads them on every reconcile).
//
// The ledger's own settled outcomes add to it in the statement that settles them (tallyCTE): one
// upsert per (route, mock) per batch, and nothing on the claim and settling writes. Every other
// writer is counted by row triggers whose WHEN clauses keep them out of the paid path: InsForge's
// guide inserting settled rows, an older gateway still running during a rollout, hand edits of
// amount, route, mock or status, deletes, a COPY or a restore. The ledger's settled statements
// mark their transaction (keptCTE) so that the triggers skip the rows they already counted. A
// trigger only appends its row's change to <table>_totals_delta: updating one summary row once
// per row of a bulk statement would follow an ever longer chain of that row's versions (O(n²)),
// while appending is O(n). Totals folds the deltas into the summary before it reads. Summary rows
// are sharded by the writing backend (pid % 8) so that replicas settling on one route do not
// queue behind one summary row until each other's commits.
//
// The fill runs under a SHARE ROW EXCLUSIVE lock taken before the triggers exist: no write slips
// between the fill and the first trigger. Totals stay exact except after writes with triggers
// disabled (session_replication_role = replica, a data-only restore with --disable-triggers);
// ResyncTotals recomputes a route from its rows then.
func migration4(n names) string {
	r := strings.NewReplacer(
		"{T}", n.qTable,
		"{TOT}", n.qTotals,
		"{FN}", n.qTotalsFunc,
		"{DELTA}", n.qTotalsDelta,
		"{INS}", pgx.Identifier{n.table + "_totals_insert"}.Sanitize(),
		"{UPD}", pgx.Identifier{n.table + "_totals_update"}.Sanitize(),
		"{DEL}", pgx.Identifier{n.table + "_totals_delete"}.Sanitize(),
		"{TRUNC}", pgx.Identifier{n.table + "_totals_truncate"}.Sanitize(),
		"{TRUNC_FN}", pgx.Identifier{n.schema, n.table + "_totals_truncate"}.Sanitize(),
		"{SETTLED_NEW}", strings.ReplaceAll(settledContribution, "amount", "NEW.amount"),
		"{SETTLED_OLD}", strings.ReplaceAll(settledContribution, "amount", "OLD.amount"),
		"{SETTLED}", settledContribution,
		"{NOT_KEPT}", `current_setting('x402.summary', true) IS DISTINCT FROM 'kept'`,
	)
	return r.Replace(`
CREATE TABLE IF NOT EXISTS {TOT} (
	route text NOT NULL,
	mock boolean NOT NULL,
	shard smallint NOT NULL,
	settled_count bigint NOT NULL DEFAULT 0,
	settled_amount numeric NOT NULL DEFAULT 0,
	last_settled_at timestamptz,
	last_tx_hash text,
	PRIMARY KEY (route, mock, shard)
);
-- Changes by other writers, folded into {TOT} when totals are read (see foldTotals).
CREATE TABLE IF NOT EXISTS {DELTA} (
	route text NOT NULL,
	mock boolean NOT NULL,
	settled_count integer NOT NULL,
	settled_amount numeric NOT NULL,
	settled_at timestamptz,
	tx_hash text
);
-- Like the ledger: InsForge's anon/authenticated roles get nothing.
ALTER TABLE {TOT} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {DELTA} ENABLE ROW LEVEL SECURITY;

LOCK TABLE {T} IN SHARE ROW EXCLUSIVE MODE;
DELETE FROM {TOT};
DELETE FROM {DELTA};
INSERT INTO {TOT} (route, mock, shard, settled_count, settled_amount, last_settled_at, last_tx_hash)
SELECT route, mock, 0, count(*), coalesce(sum({SETTLED}), 0),
	max(settled_at), (array_agg(tx_hash ORDER BY settled_at DESC NULLS LAST, tx_hash DESC))[1]
FROM {T} WHERE status = 'settled' AND route IS NOT NULL
GROUP BY route, mock;

-- Records one row's change: OLD's contribution out, NEW's in (either may not count). SECURITY DEFINER: the
-- writers need no privilege on the summary; search_path is pinned and every name qualified.
CREATE OR REPLACE FUNCTION {FN}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'settled' AND OLD.route IS NOT NULL THEN
		INSERT INTO {DELTA} (route, mock, settled_count, settled_amount)
		VALUES (OLD.route, OLD.mock, -1, -{SETTLED_OLD});
	END IF;
	IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status = 'settled' AND NEW.route IS NOT NULL THEN
		INSERT INTO {DELTA} (route, mock, settled_count, settled_amount, settled_at, tx_hash)
		VALUES (NEW.route, NEW.mock, 1, {SETTLED_NEW}, NEW.settled_at, NEW.tx_hash);
	END IF;
	RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION {TRUNC_FN}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	DELETE FROM {TOT};
	DELETE FROM {DELTA};
	RETURN NULL;
END
$fn$;

-- The WHEN clauses are evaluated per row without calling the function: the ledger's claims
-- (inserted verifying), settling marks and released-row retention never fire them.
DROP TRIGGER IF EXISTS {INS} ON {T};
CREATE TRIGGER {INS} AFTER INSERT ON {T} FOR EACH ROW
	WHEN (NEW.status = 'settled' AND {NOT_KEPT})
	EXECUTE FUNCTION {FN}();
DROP TRIGGER IF EXISTS {UPD} ON {T};
CREATE TRIGGER {UPD} AFTER UPDATE ON {T} FOR EACH ROW
	WHEN ((OLD.status = 'settled' OR NEW.status = 'settled')
		AND (OLD.status, OLD.route, OLD.mock, OLD.amount) IS DISTINCT FROM (NEW.status, NEW.route, NEW.mock, NEW.amount)
		AND {NOT_KEPT})
	EXECUTE FUNCTION {FN}();
DROP TRIGGER IF EXISTS {DEL} ON {T};
CREATE TRIGGER {DEL} AFTER DELETE ON {T} FOR EACH ROW
	WHEN (OLD.status = 'settled')
	EXECUTE FUNCTION {FN}();
DROP TRIGGER IF EXISTS {TRUNC} ON {T};
CREATE TRIGGER {TRUNC} AFTER TRUNCATE ON {T} FOR EACH STATEMENT EXECUTE FUNCTION {TRUNC_FN}();
`)
}

// settledContribution is a row's amount as a number; an amount that is not a decimal integer
// (a row another tool wrote before the check constraint) counts as 0, as in the totals before.
const settledContribution = `(CASE WHEN amount ~ '^[0-9]+$' THEN amount::numeric ELSE 0 END)`

// uuidV7 is a UUID version 7 (RFC 9562) from the server's clock and gen_random_uuid's random bits:
// 48 bits of Unix milliseconds, the version 7 nibble, then 74 random bits with the variant.
// PostgreSQL 15 has no uuidv7(); this expression costs less than it saves.
const uuidV7 = `(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7'
	|| substr(replace(gen_random_uuid()::text, '-', ''), 14))::uuid`

// migration5 makes new payment ids time-ordered. Every payment inserts into the primary key, and a
// random key sends each insert to a random leaf page: more pages dirtied and, after each
// checkpoint, written whole to the WAL. Ordered keys land on the rightmost page. In the ledger
// benchmark it took 8-13 % off PostgreSQL's CPU per payment (docs/benchmarks.md, "Ledger at
// scale"). Existing ids, and rows written with an explicit id, are unchanged.
func migration5(n names) string {
	return `ALTER TABLE ` + n.qTable + ` ALTER COLUMN id SET DEFAULT ` + uuidV7 + `;`
}
