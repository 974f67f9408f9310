package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func printOf(t *testing.T, method, target, body string) requestPrint {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	}
	p, err := fingerprint(r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		if b, _ := io.ReadAll(r.Body); string(b) != body {
			t.Fatalf("body not restored for the upstream: %q", b)
		}
	}
	return p
}

func TestFingerprintSeparatesMethodPathQueryAndBody(t *testing.T) {
	base := printOf(t, "GET", "/reports/weekly?q=1", "")
	if base != printOf(t, "GET", "/reports/weekly?q=1", "") {
		t.Fatal("the same request printed differently")
	}
	for name, other := range map[string]requestPrint{
		"method": printOf(t, "HEAD", "/reports/weekly?q=1", ""),
		"path":   printOf(t, "GET", "/reports/weekly2?q=1", ""),
		"query":  printOf(t, "GET", "/reports/weekly?q=2", ""),
		"body":   printOf(t, "GET", "/reports/weekly?q=1", "x"),
		// Boundaries move between parts: length prefixes keep them apart.
		"shifted": printOf(t, "GET", "/reports/weekly?q=", "1"),
	} {
		if other == base {
			t.Errorf("a request differing in %s has the same print", name)
		}
	}
}

func TestReplayCacheServesTheSameRequestWithinTheWindowOnly(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	c := newReplayCache(clock.now, 1<<20)
	p := printOf(t, "GET", "/a", "")
	resp := &buffered{status: 200, header: http.Header{"Content-Type": {"text/plain"}}, body: []byte("paid")}
	c.store("id-1", p, time.Minute, resp)
	if got := c.lookup("id-1", p); got == nil || string(got.body) != "paid" {
		t.Fatalf("lookup = %+v", got)
	}
	if c.lookup("id-1", printOf(t, "GET", "/a?x=1", "")) != nil {
		t.Fatal("a different request got the stored response")
	}
	if c.lookup("id-2", p) != nil {
		t.Fatal("another payment got the stored response")
	}
	clock.advance(time.Minute)
	if c.lookup("id-1", p) != nil {
		t.Fatal("served after the window closed")
	}
	if c.size != 0 || c.order.Len() != 0 {
		t.Fatalf("expired entry still held: size %d, entries %d", c.size, c.order.Len())
	}
}

func TestReplayCacheStaysWithinItsBudget(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	const budget = 64 << 10
	c := newReplayCache(clock.now, budget)
	body := make([]byte, 4<<10)
	p := printOf(t, "GET", "/a", "")
	for i := range 100 {
		c.store(string(rune('a'+i%26))+strings.Repeat("x", i), p, time.Minute, &buffered{status: 200, header: http.Header{}, body: body})
		if c.size > budget {
			t.Fatalf("after %d stores the cache holds %d bytes, budget %d", i+1, c.size, budget)
		}
	}
	c.store("huge", p, time.Minute, &buffered{status: 200, header: http.Header{}, body: make([]byte, budget/4)})
	if c.lookup("huge", p) != nil {
		t.Fatal("a response larger than an eighth of the budget was kept")
	}
}
