package ledger

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

func TestMigrateTwiceIsANoOp(t *testing.T) {
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t)
	pool := db.Pool(t)

	first, err := Migrate(ctx, pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if first.From != 0 || first.To != LatestSchemaVersion() || !first.Changed() {
		t.Fatalf("first migration: %+v", first)
	}
	var appliedAt time.Time
	if err := pool.QueryRow(ctx, "SELECT applied_at FROM x402_ledger_schema WHERE ledger = 'x402_payments' AND version = 1").
		Scan(&appliedAt); err != nil {
		t.Fatal(err)
	}

	second, err := Migrate(ctx, pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Changed() || second.From != LatestSchemaVersion() {
		t.Fatalf("second migration changed something: %+v", second)
	}
	var rows int
	var again time.Time
	if err := pool.QueryRow(ctx, "SELECT count(*), max(applied_at) FROM x402_ledger_schema").Scan(&rows, &again); err != nil {
		t.Fatal(err)
	}
	if rows != len(migrations) || !again.Equal(appliedAt) {
		t.Fatalf("version table has %d rows (applied %v, first %v), want %d untouched", rows, again, appliedAt, len(migrations))
	}
	if v, err := SchemaVersion(ctx, pool, Options{}); err != nil || v != LatestSchemaVersion() {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}

	var rls bool
	if err := pool.QueryRow(ctx, "SELECT relrowsecurity FROM pg_class WHERE oid = 'public.x402_payments'::regclass").Scan(&rls); err != nil || !rls {
		t.Fatalf("row level security enabled = %v (%v), want true", rls, err)
	}
}

func TestMigrateConcurrentlyAppliesOnce(t *testing.T) {
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t)
	pool := db.Pool(t)
	errs := make(chan error, 4)
	results := make(chan MigrateResult, 4)
	for range 4 {
		go func() {
			r, err := Migrate(ctx, pool, Options{})
			results <- r
			errs <- err
		}()
	}
	applied := 0
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if r := <-results; r.From == 0 && r.To == LatestSchemaVersion() {
			applied++
		}
	}
	if applied != 1 {
		t.Fatalf("%d concurrent migrations applied version 1, want exactly 1", applied)
	}
}

func TestMigrateCustomSchemaAndTable(t *testing.T) {
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t)
	pool := db.Pool(t)
	opts := Options{Schema: "Pay Ments", Table: `odd"name`}
	if _, err := Migrate(ctx, pool, opts); err != nil {
		t.Fatal(err)
	}
	l, err := New(pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := settle(t, l, intent("ns/r", "5"))
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM "Pay Ments"."odd""name" WHERE id = $1 AND status = 'settled'`, id).Scan(&n); err != nil || n != 1 {
		t.Fatalf("settled row in the custom table: %d, %v", n, err)
	}
	if l.Channel() != `odd"name` {
		t.Fatalf("channel = %q", l.Channel())
	}
	// The default table in public was not created.
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('public.x402_payments') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Fatalf("public.x402_payments exists = %v (%v)", exists, err)
	}
}

func TestOptionsRejectLongTableName(t *testing.T) {
	if _, err := New(nil, Options{Table: strings.Repeat("t", maxTableLen+1)}); err == nil {
		t.Fatal("a table name that would truncate derived names was accepted")
	}
}

// guideSQL is InsForge's x402 guide table as users have it (see research/insforge-auth.md §4),
// without the realtime part.
const guideSQL = `
create table if not exists x402_payments (
  id uuid default gen_random_uuid() primary key,
  payer_address text not null,
  endpoint text not null,
  amount text not null,
  tx_hash text not null unique,
  chain text default 'xlayer',
  status text default 'settled',
  response_summary text,
  created_at timestamptz default now());
insert into x402_payments (payer_address, endpoint, amount, tx_hash) values ('0xold', '/old', '7', '0xoldtx');`

func TestMigrateAdoptsTheGuideTable(t *testing.T) {
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t)
	db.Exec(t, guideSQL)
	pool := db.Pool(t)
	if _, err := Migrate(ctx, pool, Options{}); err != nil {
		t.Fatal(err)
	}
	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A claim has no tx hash yet: the guide's NOT NULL had to go.
	in := intent("ns/r", "10")
	id, _ := settle(t, l, in)
	mustStatus(t, l, id, StatusSettled)
	var old string
	if err := pool.QueryRow(ctx, "SELECT status FROM x402_payments WHERE tx_hash = '0xoldtx'").Scan(&old); err != nil || old != "settled" {
		t.Fatalf("the guide's row: %q, %v", old, err)
	}
}

// realtimeSQL is a minimal stand-in for InsForge's realtime schema (migration 017): publish
// finds an enabled channel by pattern and stores a message, or warns and returns NULL.
const realtimeSQL = `
CREATE SCHEMA realtime;
CREATE TABLE realtime.channels (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	pattern text UNIQUE NOT NULL,
	description text,
	enabled boolean NOT NULL DEFAULT true);
CREATE TABLE realtime.messages (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	event_name text NOT NULL,
	channel_id uuid REFERENCES realtime.channels(id),
	channel_name text NOT NULL,
	payload jsonb NOT NULL,
	sender_type text NOT NULL DEFAULT 'system',
	created_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION realtime.publish(p_channel_name text, p_event_name text, p_payload jsonb) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE ch uuid; mid uuid;
BEGIN
	SELECT id INTO ch FROM realtime.channels
	WHERE enabled AND (pattern = p_channel_name OR p_channel_name LIKE pattern)
	ORDER BY (pattern = p_channel_name) DESC LIMIT 1;
	IF ch IS NULL THEN
		RAISE WARNING 'no channel for %', p_channel_name;
		RETURN NULL;
	END IF;
	INSERT INTO realtime.messages (event_name, channel_id, channel_name, payload)
	VALUES (p_event_name, ch, p_channel_name, p_payload) RETURNING id INTO mid;
	RETURN mid;
END $$;
REVOKE ALL ON FUNCTION realtime.publish(text, text, jsonb) FROM PUBLIC;`

func TestRealtimePublishesOnSettle(t *testing.T) {
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t)
	db.Exec(t, realtimeSQL)
	pool := db.Pool(t)
	res, err := Migrate(ctx, pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Realtime || !res.RealtimeChannelCreated {
		t.Fatalf("migration on a realtime database: %+v", res)
	}
	if again, err := Migrate(ctx, pool, Options{}); err != nil || again.Changed() {
		t.Fatalf("second migration: %+v, %v", again, err)
	}
	var channels int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM realtime.channels WHERE pattern = 'x402_payments' AND enabled").Scan(&channels); err != nil || channels != 1 {
		t.Fatalf("channel rows: %d, %v", channels, err)
	}

	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A claim and a release publish nothing; a settlement publishes one INSERT_ event.
	c := claimWon(t, l, intent("ns/r", "1"))
	if err := l.Release(ctx, c.Ticket, "upstream 500"); err != nil {
		t.Fatal(err)
	}
	id, tx := settle(t, l, intent("ns/r", "42"))

	rows, err := pool.Query(ctx, "SELECT event_name, payload FROM realtime.messages")
	if err != nil {
		t.Fatal(err)
	}
	type msg struct {
		Event   string
		Payload map[string]map[string]any
	}
	msgs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[msg])
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("realtime messages: %+v, want exactly one", msgs)
	}
	m := msgs[0]
	if m.Event != "INSERT_x402_payments" || m.Payload["new"]["id"] != id || m.Payload["new"]["tx_hash"] != tx ||
		m.Payload["new"]["status"] != "settled" || m.Payload["new"]["amount"] != "42" {
		t.Fatalf("realtime message: %+v", m)
	}
	if _, ok := m.Payload["new"]["payload"]; ok {
		t.Fatal("the signed payment payload was published")
	}
}

func TestRealtimeFailureDoesNotBlockSettlement(t *testing.T) {
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t)
	db.Exec(t, realtimeSQL)
	pool := db.Pool(t)
	if _, err := Migrate(ctx, pool, Options{}); err != nil {
		t.Fatal(err)
	}
	db.Exec(t, `CREATE OR REPLACE FUNCTION realtime.publish(p_channel_name text, p_event_name text, p_payload jsonb) RETURNS uuid
		LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'realtime is broken'; END $$`)
	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := settle(t, l, intent("ns/r", "3"))
	mustStatus(t, l, id, StatusSettled)
}

func TestMigrateRefusesANewerSchema(t *testing.T) {
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t)
	pool := db.Pool(t)
	if _, err := Migrate(ctx, pool, Options{}); err != nil {
		t.Fatal(err)
	}
	db.Exec(t, "INSERT INTO x402_ledger_schema (ledger, version, name) VALUES ('x402_payments', 999, 'future')")
	_, err := Migrate(ctx, pool, Options{})
	if !errors.Is(err, errNewerSchema) {
		t.Fatalf("migrating a newer schema: %v", err)
	}
}

// An older gateway let a payer have several payments in flight on a route. Migration 2's
// in-flight index cannot be built over them, so the migration first leaves one in flight per
// (route, payer): a settling row if there is one (the others become pending: money may have
// moved), else the newest verifying row (the others are released: no settle was called). Rows
// settled before the migration count as served; the rest do not.
func TestMigration2UpgradesATableWithSeveralPaymentsInFlight(t *testing.T) {
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t)
	pool := db.Pool(t)
	if res, err := migrateTo(ctx, pool, Options{}, 1); err != nil || res.To != 1 {
		t.Fatalf("migrating to version 1: %+v, %v", res, err)
	}
	type row struct{ payer, route, status, age string }
	rows := map[string]row{
		"p1 old verifying": {"0xp1", "ns/r", "verifying", "10 minutes"},
		"p1 new verifying": {"0xp1", "ns/r", "verifying", "1 minute"},
		"p1 other route":   {"0xp1", "ns/other", "verifying", "5 minutes"},
		"p2 settling":      {"0xp2", "ns/r", "settling", "10 minutes"},
		"p2 verifying":     {"0xp2", "ns/r", "verifying", "1 minute"},
		"p3 old settling":  {"0xp3", "ns/r", "settling", "10 minutes"},
		"p3 new settling":  {"0xp3", "ns/r", "settling", "5 minutes"},
		"p4 settled":       {"0xp4", "ns/r", "settled", "1 day"},
		"p4 pending":       {"0xp4", "ns/r", "pending", "1 hour"},
		"p4 verifying":     {"0xp4", "ns/r", "verifying", "1 minute"},
	}
	ids := map[string]string{}
	updated := map[string]time.Time{}
	for name, r := range rows {
		var id string
		var at time.Time
		if err := pool.QueryRow(ctx, `INSERT INTO x402_payments (payer_address, nonce, route, endpoint, amount, status, tx_hash, updated_at)
VALUES ($1, $2, $3, '/weather', '1', $4, CASE WHEN $4 = 'settled' THEN $2 END, now() - $5::interval) RETURNING id::text, updated_at`,
			r.payer, newNonce(), r.route, r.status, r.age).Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		ids[name], updated[name] = id, at
	}

	res, err := Migrate(ctx, pool, Options{})
	if err != nil || res.From != 1 || res.To != LatestSchemaVersion() {
		t.Fatalf("migration 2 over payments in flight: %+v, %v", res, err)
	}
	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Status{
		"p1 old verifying": StatusReleased, "p1 new verifying": StatusVerifying, "p1 other route": StatusVerifying,
		"p2 settling": StatusSettling, "p2 verifying": StatusReleased,
		"p3 old settling": StatusPending, "p3 new settling": StatusSettling,
		"p4 settled": StatusSettled, "p4 pending": StatusPending, "p4 verifying": StatusVerifying,
	}
	for name, status := range want {
		p := mustStatus(t, l, ids[name], status)
		if p.Served != (status == StatusSettled) {
			t.Errorf("%s: served = %v", name, p.Served)
		}
		if name == "p3 old settling" && (!p.UpdatedAt.Equal(updated[name]) || !strings.Contains(p.FailureReason, "migration 2")) {
			t.Errorf("a settling row made pending must keep its resolver clock and say why: %+v", p)
		}
	}
	// The limit now holds, and a second migration does nothing.
	in := intent("ns/r", "1")
	in.Payer = "0xp1"
	if _, err := l.Claim(ctx, in); !errors.Is(err, ErrPayerBusy) {
		t.Fatalf("claim of a payer in flight after the migration: %v, want ErrPayerBusy", err)
	}
	if again, err := Migrate(ctx, pool, Options{}); err != nil || again.Changed() {
		t.Fatalf("second migration: %+v, %v", again, err)
	}
}

// Version 5 changes only how new ids are made: a version 4 ledger's rows keep theirs, and new ids
// are UUID version 7, in the order the rows were written.
func TestMigration5MakesNewIDsTimeOrdered(t *testing.T) {
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t)
	pool := db.Pool(t)
	if res, err := migrateTo(ctx, pool, Options{}, 4); err != nil || res.To != 4 {
		t.Fatalf("migrating to version 4: %+v, %v", res, err)
	}
	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := settle(t, l, intent("ns/r", "1000"))
	if res, err := Migrate(ctx, pool, Options{}); err != nil || res.From != 4 || res.To != LatestSchemaVersion() {
		t.Fatalf("migrating a version 4 ledger: %+v, %v", res, err)
	}
	mustStatus(t, l, old, StatusSettled)
	var ids []string
	for range 50 {
		c, err := l.ClaimSettling(ctx, intent("ns/r", "1000"))
		if err != nil || !c.Won {
			t.Fatalf("claim: %+v, %v", c, err)
		}
		ids = append(ids, c.Ticket.ID)
	}
	for i, id := range ids {
		if len(id) != 36 || id[14] != '7' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("id %s is not a UUID version 7 (RFC 9562 variant)", id)
		}
		if i > 0 && id[:13] < ids[i-1][:13] {
			t.Fatalf("ids not in time order: %s after %s", id, ids[i-1])
		}
	}
	var distinct int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT id) FROM x402_payments`).Scan(&distinct); err != nil || distinct != len(ids)+1 {
		t.Fatalf("distinct ids = %d, %v", distinct, err)
	}
}
