package kit

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// A thousand objects checked at the same instant (a manager start) get their next checks
// spread over the interval, and each then comes back exactly one interval later.
func TestUntilSlotSpreadsChecksOverTheInterval(t *testing.T) {
	const n, buckets = 1000, 10
	interval := 10 * time.Minute
	now := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	var hist [buckets]int
	for i := range n {
		uid := types.UID(fmt.Sprintf("3f8e1c2a-%04d-4b7e-9a51-6d0c2f7b8e%02d", i, i%97))
		d := UntilSlot(now, interval, uid)
		if d <= 0 || d > interval {
			t.Fatalf("UntilSlot = %s, want (0, %s]", d, interval)
		}
		hist[int(d*buckets/(interval+1))]++
		if again := UntilSlot(now.Add(d), interval, uid); again != interval {
			t.Fatalf("at its slot, the next check is %s away, want %s", again, interval)
		}
	}
	for b, c := range hist {
		if c < n/buckets/2 || c > 2*n/buckets {
			t.Errorf("bucket %d of the interval holds %d of %d checks: %v", b, c, n, hist)
		}
	}
	if UntilSlot(now, 0, "x") != 0 {
		t.Error("a zero interval is not passed through")
	}
}
