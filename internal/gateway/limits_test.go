package gateway

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/x402"
)

// fakeClock is a settable clock for the in-memory limits.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestRefusalsPastTheBurstAreLimitedUntilTheBucketRefills(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l := newLimits(clock.now)
	for i := range refusalBurst {
		if ok, _ := l.allowed("ip:192.0.2.1"); !ok {
			t.Fatalf("refused after %d refusals, burst is %d", i, refusalBurst)
		}
		l.refused("ip:192.0.2.1", "payer:0xabc")
	}
	ok, wait := l.allowed("ip:192.0.2.1")
	if ok || wait <= 0 || wait > refusalPeriod/refusalBurst {
		t.Fatalf("after the burst: allowed=%v wait=%s", ok, wait)
	}
	if ok, _ := l.allowed("payer:0xabc"); ok {
		t.Fatal("the payer's bucket was not charged")
	}
	if ok, _ := l.allowed("ip:192.0.2.2"); !ok {
		t.Fatal("another client is limited by this one's refusals")
	}
	clock.advance(wait)
	if ok, _ := l.allowed("ip:192.0.2.1"); !ok {
		t.Fatalf("still limited after waiting the advertised %s", wait)
	}
}

func TestUnfundedPayerIsRememberedForItsTTLOnly(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l := newLimits(clock.now)
	l.rememberUnfunded("0xAbC", x402.ReasonInsufficientFunds, "balance 0")
	v, ok := l.unfundedVerdict("0xabc")
	if !ok || v.reason != x402.ReasonInsufficientFunds {
		t.Fatalf("verdict = %+v, %v", v, ok)
	}
	clock.advance(unfundedTTL)
	if _, ok := l.unfundedVerdict("0xabc"); ok {
		t.Fatal("verdict outlived its TTL")
	}
}

func TestLimitTablesStayBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l := newLimits(clock.now)
	for i := range maxTrackedKeys + 10 {
		l.refused(fmt.Sprintf("ip:10.%d.%d.%d", i>>16, (i>>8)&255, i&255))
		l.rememberUnfunded(fmt.Sprintf("0x%040x", i), x402.ReasonInsufficientFunds, "")
	}
	if len(l.buckets) > maxTrackedKeys || len(l.unfunded) > maxTrackedKeys {
		t.Fatalf("tables grew to %d buckets and %d verdicts, bound %d", len(l.buckets), len(l.unfunded), maxTrackedKeys)
	}
}

func TestClientKeyTrustsOnlyTheLastForwardedHopAndOnlyWhenTold(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Add("X-Forwarded-For", "203.0.113.9, 198.51.100.4")
	if got := clientKey(r, false); got != "ip:192.0.2.7" {
		t.Errorf("untrusted: %s", got)
	}
	if got := clientKey(r, true); got != "ip:198.51.100.4" {
		t.Errorf("trusted: %s, want the hop the proxy appended", got)
	}
	r.Header.Set("X-Forwarded-For", "not-an-ip")
	if got := clientKey(r, true); got != "ip:192.0.2.7" {
		t.Errorf("garbage hop: %s", got)
	}
}
