package ledger

import "strings"

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
