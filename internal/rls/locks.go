package rls

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// lockKey maps a name to a 64-bit advisory lock key. The namespace prefix keeps the keys clear of
// other users of advisory locks in the same database.
func lockKey(kind, name string) int64 {
	sum := sha256.Sum256([]byte("insforge-integrations-operator/rls/" + kind + "\x00" + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// IntegrationLockKey is the pg_advisory_xact_lock key held while an integration is applied or
// torn down.
func IntegrationLockKey(owner string) int64 { return lockKey("integration", owner) }

func tableLockKey(r TableRef) int64 { return lockKey("table", r.Schema+"\x00"+r.Name) }

// helperLockKey serialises changes to the helper shared by all integrations; it is always taken
// last, after the integration and table keys, so that lock order is the same in every transaction.
var helperLockKey = lockKey("helper", helperCall)

// lockSpec takes the integration's key and one key per managed table, in ascending order. The
// table keys serialise two integrations that claim the same table, so that the later one sees the
// earlier one's policies and reports a conflict instead of racing it.
func lockSpec(ctx context.Context, tx pgx.Tx, s Spec) error {
	keys := []int64{IntegrationLockKey(s.Owner)}
	for _, t := range s.Tables {
		keys = append(keys, tableLockKey(t.Ref()))
	}
	slices.Sort(keys)
	// Pipelined: one round trip, the locks still taken one after the other in key order.
	b := &pgx.Batch{}
	for _, k := range slices.Compact(keys) {
		b.Queue("SELECT pg_advisory_xact_lock($1)", k)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("taking the advisory locks of %s: %w", s.Owner, err)
	}
	return nil
}

func advisoryLock(ctx context.Context, tx pgx.Tx, key int64) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", key); err != nil {
		return fmt.Errorf("taking advisory lock %d: %w", key, err)
	}
	return nil
}
