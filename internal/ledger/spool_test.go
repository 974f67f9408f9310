package ledger

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

func TestSpoolRecoversASettlementWhenTheDatabaseIsDown(t *testing.T) {
	ctx := testCtx(t)
	srv := pgtest.StartServer(t, pgtest.Options{})
	db := srv.NewDatabase(t)
	pool := db.Pool(t)
	if _, err := Migrate(ctx, pool, Options{}); err != nil {
		t.Fatal(err)
	}
	l, err := New(pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spool, err := OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}

	id := toSettling(t, l, intent("ns/r", "10"))
	tk := Ticket{ID: id, Seq: 1}
	// Settle succeeded at the facilitator; now the database goes away.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	tx := newTxHash()
	spooled, err := l.ApplyOrSpool(ctx, spool, tk, Outcome{Status: StatusSettled, TxHash: tx, ResponseSummary: "200", Served: true})
	if err != nil || !spooled {
		t.Fatalf("ApplyOrSpool with the database down: spooled=%v err=%v", spooled, err)
	}
	if n, err := spool.Len(); err != nil || n != 1 {
		t.Fatalf("spool holds %d records (%v), want 1", n, err)
	}
	// The gateway restarts too: a new Spool on the same directory finds the record.
	if err := spool.Close(); err != nil {
		t.Fatal(err)
	}
	spool, err = OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}

	// A replay while the database is still down keeps the record.
	if res, err := spool.Replay(ctx, l); err == nil || res.Applied != 0 {
		t.Fatalf("replay with the database down: %+v, %v", res, err)
	}
	if n, err := spool.Len(); err != nil || n != 1 {
		t.Fatalf("after a failed replay the spool holds %d records (%v), want 1", n, err)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// The pool may hand out a connection broken by the restart first; retry as RunReplay would.
	var applied int
	eventually(t, "the spool to replay", func() bool {
		res, err := spool.Replay(ctx, l)
		applied += res.Applied
		return err == nil
	})
	if applied != 1 {
		t.Fatalf("applied %d records, want 1", applied)
	}
	p := mustStatus(t, l, id, StatusSettled)
	if p.TxHash != tx || p.ResponseSummary != "200" {
		t.Fatalf("replayed row: %+v", p)
	}
	res, err := spool.Replay(ctx, l)
	if err != nil || res != (ReplayResult{}) {
		t.Fatalf("second replay: %+v, %v; want a no-op", res, err)
	}
	if n, _ := spool.Len(); n != 0 {
		t.Fatalf("spool still holds %d records", n)
	}
}

func TestSpoolReplayIsIdempotentAndSortsOutBadRecords(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	spool, err := OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The same outcome twice (the gateway retried), one for an unknown payment, one settled
	// with a tx hash that contradicts the row, and a torn last line.
	id := toSettling(t, l, intent("ns/r", "1"))
	tx := newTxHash()
	otherID, otherTx := settle(t, l, intent("ns/r", "1"))
	for _, rec := range []SpoolRecord{
		{ID: id, Outcome: Outcome{Status: StatusSettled, TxHash: tx}},
		{ID: id, Outcome: Outcome{Status: StatusSettled, TxHash: tx}},
		{ID: "00000000-0000-0000-0000-000000000000", Outcome: Outcome{Status: StatusSettled, TxHash: newTxHash()}},
		{ID: otherID, Outcome: Outcome{Status: StatusSettled, TxHash: newTxHash()}},
	} {
		if err := spool.Append(ctx, Ticket{ID: rec.ID, Seq: rec.Seq}, rec.Outcome); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, spoolActive), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"id":"torn`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	res, err := spool.Replay(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if res != (ReplayResult{Applied: 2, Rejected: 2, Corrupt: 1}) {
		t.Fatalf("replay: %+v", res)
	}
	if p := mustStatus(t, l, id, StatusSettled); p.TxHash != tx {
		t.Fatalf("row settled with %q, want %q", p.TxHash, tx)
	}
	if p := mustStatus(t, l, otherID, StatusSettled); p.TxHash != otherTx {
		t.Fatal("a contradicting spooled outcome overwrote a settled row")
	}
	rejected, err := os.ReadFile(filepath.Join(dir, spoolRejected))
	if err != nil || bytes.Count(rejected, []byte{'\n'}) != 2 {
		t.Fatalf("rejected.jsonl: %q, %v", rejected, err)
	}
	// Appends after a replay go to a fresh file and replay on their own.
	if err := spool.Append(ctx, Ticket{ID: id, Seq: 1}, Outcome{Status: StatusSettled, TxHash: tx}); err != nil {
		t.Fatal(err)
	}
	if res, err := spool.Replay(ctx, l); err != nil || res.Applied != 1 {
		t.Fatalf("replay of a later append: %+v, %v", res, err)
	}
}

func TestApplyOrSpoolDoesNotSpoolRefusedOutcomes(t *testing.T) {
	l, _, _ := newLedger(t)
	spool, err := OpenSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := claimWon(t, l, intent("ns/r", "1")) // verifying: no settle was called, so it cannot have failed
	spooled, err := l.ApplyOrSpool(context.Background(), spool, c.Ticket, Outcome{Status: StatusFailed, Reason: "reverted"})
	if err == nil || spooled {
		t.Fatalf("ApplyOrSpool on a verifying row: spooled=%v err=%v", spooled, err)
	}
	if n, _ := spool.Len(); n != 0 {
		t.Fatalf("a refused outcome was spooled (%d records)", n)
	}
}
