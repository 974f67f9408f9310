package gateway

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/insforge/integrations-operator/internal/x402"
)

// Refused payments are cheap to send and dear to answer: each costs a signature recovery, and
// one that passes the local check a ledger row and a facilitator verify. These limits are per
// replica and in memory: they bound what one client or one payer can make a replica spend, they
// are not a quota.
const (
	// refusalBurst refused payments per client address or payer are answered in full; past it
	// the client gets 429 until the bucket refills at refusalBurst per refusalPeriod.
	refusalBurst  = 20
	refusalPeriod = time.Minute
	// unfundedTTL is how long a payer the facilitator found without funds is answered from
	// memory: a wallet is rarely topped up within seconds, and an empty one costs nothing to sign with.
	unfundedTTL = 10 * time.Second
	// maxTrackedKeys bounds each table; past it, settled-down entries are dropped first.
	maxTrackedKeys = 100_000
)

// limits holds the refusal buckets and the unfunded-payer cache of one gateway.
type limits struct {
	now func() time.Time

	mu       sync.Mutex
	buckets  map[string]*bucket // "ip:…" or "payer:…"
	unfunded map[string]refusal // lower-case payer address
}

type bucket struct {
	tokens float64
	at     time.Time
}

// refusal is a remembered verify verdict.
type refusal struct {
	reason x402.Reason
	msg    string
	until  time.Time
}

func newLimits(now func() time.Time) *limits {
	return &limits{now: now, buckets: map[string]*bucket{}, unfunded: map[string]refusal{}}
}

// refill brings b up to date; a full bucket is as good as no entry.
func (b *bucket) refill(now time.Time) {
	b.tokens = min(refusalBurst, b.tokens+now.Sub(b.at).Seconds()*refusalBurst/refusalPeriod.Seconds())
	b.at = now
}

// allowed reports whether key may still be answered in full, and if not, when to retry.
func (l *limits) allowed(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return true, 0
	}
	b.refill(l.now())
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(refusalPeriod) / refusalBurst)
}

// refused counts one refused payment against each non-empty key.
func (l *limits) refused(keys ...string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, key := range keys {
		if key == "" {
			continue
		}
		b := l.buckets[key]
		if b == nil {
			if len(l.buckets) >= maxTrackedKeys {
				l.pruneBuckets(now)
			}
			b = &bucket{tokens: refusalBurst, at: now}
			l.buckets[key] = b
		}
		b.refill(now)
		b.tokens = max(0, b.tokens-1)
	}
}

// pruneBuckets drops full buckets and, if that frees too little, any half: a flood of distinct
// addresses must not grow the table without bound (they each get a fresh bucket instead).
func (l *limits) pruneBuckets(now time.Time) {
	for k, b := range l.buckets {
		if b.refill(now); b.tokens >= refusalBurst {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxTrackedKeys/2 {
			break
		}
		delete(l.buckets, k)
	}
}

// rememberUnfunded keeps a funds verdict on payer for unfundedTTL.
func (l *limits) rememberUnfunded(payer string, reason x402.Reason, msg string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.unfunded) >= maxTrackedKeys {
		for k, r := range l.unfunded {
			if !now.Before(r.until) || len(l.unfunded) >= maxTrackedKeys {
				delete(l.unfunded, k)
			}
		}
	}
	l.unfunded[strings.ToLower(payer)] = refusal{reason: reason, msg: msg, until: now.Add(unfundedTTL)}
}

// unfundedVerdict returns a live funds verdict on payer.
func (l *limits) unfundedVerdict(payer string) (refusal, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.unfunded[strings.ToLower(payer)]
	if ok && !l.now().Before(r.until) {
		delete(l.unfunded, strings.ToLower(payer))
		return refusal{}, false
	}
	return r, ok
}

// fundsReason reports verdicts that only a deposit can change.
func fundsReason(r x402.Reason) bool {
	return r == x402.ReasonInsufficientFunds || r == x402.ReasonInsufficientBalance
}

// clientKey is the refusal bucket of the client that sent r: its address, or, behind a trusted
// proxy, the last X-Forwarded-For hop (the one that proxy appended; earlier hops are the
// client's own word).
func clientKey(r *http.Request, trustForwarded bool) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if trustForwarded {
		if v := r.Header.Values("X-Forwarded-For"); len(v) > 0 {
			hops := strings.Split(v[len(v)-1], ",")
			if last := strings.TrimSpace(hops[len(hops)-1]); net.ParseIP(last) != nil {
				host = last
			}
		}
	}
	return "ip:" + host
}

func payerLimitKey(payer string) string { return "payer:" + strings.ToLower(payer) }
