package ledger

import (
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// The claim and the release commit asynchronously; ClaimSettling's claims, MarkSettling and
// every outcome commit synchronously (see asyncCommitCTE). A test trigger records the synchronous_commit in force
// when each row version is written, on a session whose default is on.
func TestOnlyClaimAndReleaseCommitAsynchronously(t *testing.T) {
	db := pgtest.NewDatabase(t)
	ctx := testCtx(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	// One connection, so that a setting leaking from a statement would reach the next one.
	cfg.MaxConns = 1
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := Migrate(ctx, pool, Options{}); err != nil {
		t.Fatal(err)
	}
	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE commit_modes (n serial, status text, mode text);
CREATE FUNCTION record_commit_mode() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO commit_modes (status, mode) VALUES (NEW.status, current_setting('synchronous_commit'));
	RETURN NULL;
END $$;
CREATE TRIGGER record_commit_mode AFTER INSERT OR UPDATE ON x402_payments
	FOR EACH ROW EXECUTE FUNCTION record_commit_mode();`); err != nil {
		t.Fatal(err)
	}

	// A: claim, settling, settled.
	settle(t, l, intent("ns/r", "1000"))
	// B: claim, release, claimed again in place, settling, pending, failed.
	in := intent("ns/r", "1000")
	c := claimWon(t, l, in)
	if err := l.Release(ctx, c.Ticket, "verify failed"); err != nil {
		t.Fatal(err)
	}
	c = claimWon(t, l, in)
	if err := l.MarkSettling(ctx, c.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkPending(ctx, c.Ticket, "", "timeout"); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkFailed(ctx, c.Ticket, "", "reverted"); err != nil {
		t.Fatal(err)
	}
	// A claim that loses (the row is in flight) writes nothing and must not leak the setting.
	if c, err := l.Claim(ctx, in); err != nil {
		t.Fatal(err)
	} else if !c.Won {
		t.Fatalf("a failed payment must be claimable again: %+v", c)
	}
	if c, err := l.Claim(ctx, in); err != nil || c.Won {
		t.Fatalf("second claim of an in-flight payment = %+v, %v", c, err)
	}
	// C: ClaimSettling, released before settle, claimed again in place, settled.
	in = intent("ns/r", "1000")
	c, err = l.ClaimSettling(ctx, in)
	if err != nil || !c.Won {
		t.Fatalf("ClaimSettling = %+v, %v", c, err)
	}
	if err := l.Release(ctx, c.Ticket, "upstream 500"); err != nil {
		t.Fatal(err)
	}
	if c, err = l.ClaimSettling(ctx, in); err != nil || !c.Won || c.Ticket.Seq != 2 {
		t.Fatalf("ClaimSettling after release = %+v, %v", c, err)
	}
	if err := l.MarkSettled(ctx, c.Ticket, newTxHash(), "200", true); err != nil {
		t.Fatal(err)
	}

	rows, err := pool.Query(ctx, `SELECT status || ':' || mode FROM commit_modes ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"verifying:off", "settling:on", "settled:on",
		"verifying:off", "released:off", "verifying:off", "settling:on", "pending:on", "failed:on",
		"verifying:off",
		"settling:on", "released:off", "settling:on", "settled:on",
	}
	if !slices.Equal(got, want) {
		t.Errorf("synchronous_commit per write:\n got %v\nwant %v", got, want)
	}
	var session string
	if err := pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&session); err != nil {
		t.Fatal(err)
	}
	if session != "on" {
		t.Errorf("synchronous_commit after the ledger's statements = %q, want the session's on", session)
	}
}
