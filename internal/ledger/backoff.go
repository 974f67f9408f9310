package ledger

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential delay with jitter for reconnect loops.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(minDelay, maxDelay time.Duration) *backoff {
	return &backoff{min: minDelay, max: maxDelay, cur: minDelay}
}

// next returns the delay to wait now and doubles the following one. Jitter (up to +50 %) keeps
// replicas that lost the same server from reconnecting in lockstep.
func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(b.cur*2, b.max)
	return d + rand.N(d/2+1)
}

func (b *backoff) reset() { b.cur = b.min }

// sleep waits d or until ctx ends; it reports whether the full delay passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
