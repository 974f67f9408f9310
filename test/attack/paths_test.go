package attack

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/insforge/integrations-operator/internal/x402"
)

// Prices of the main gateway's routes, atomic.
const (
	priceReports = "10000" // /reports/*
	priceLive    = "50000" // /reports/live
	priceWeather = "10000" // GET /weather
	priceDocs    = "20000" // /docs/a%20b
)

// mainRoutes are the main gateway's priced routes. Every option is left at its default, so that
// today's gateway (which knows none of the new ones) accepts the same file.
var mainRoutes = []map[string]any{
	{"path": "/reports/*", "price": "0.01"},
	{"path": "/reports/live", "price": "0.05"},
	{"path": "/weather", "method": "GET", "price": "0.01"},
	{"path": "/docs/a%20b", "price": "0.02"},
	{"path": "/orders", "method": "POST", "price": "0.01"},
}

// pathCase is one spelling of a request path and the answer the gateway must give.
type pathCase struct {
	method string
	target string
	// status 402: priced at amount, the challenge's resource URL names canon;
	// 400 with reason: refused; 400 without: refused by Go's HTTP server before the gateway;
	// 200: proxied unpriced, the upstream receives canon.
	status int
	amount string
	canon  string
	reason x402.Reason
}

// testPaths sends every spelling of the priced resources that a normalising upstream would
// serve as the priced resource, and expects each to be priced (or refused), never proxied.
func testPaths(t *testing.T, w *world, s *stack) {
	cases := []pathCase{
		// A prefix route: every spelling nginx, Express or Tomcat serves as /reports/weekly.
		{target: "/reports/weekly", status: 402, amount: priceReports, canon: "/reports/weekly"},
		{target: "//reports/weekly", status: 402, amount: priceReports, canon: "/reports/weekly"},
		{target: "/./reports/weekly", status: 402, amount: priceReports, canon: "/reports/weekly"},
		{target: "/x/../reports/weekly", status: 402, amount: priceReports, canon: "/reports/weekly"},
		{target: "/reports//weekly", status: 402, amount: priceReports, canon: "/reports/weekly"},
		{target: "/reports/weekly;x=1", status: 402, amount: priceReports, canon: "/reports/weekly"},
		{target: "/reports;x=1/weekly", status: 402, amount: priceReports, canon: "/reports/weekly"},
		{target: "/Reports/weekly", status: 402, amount: priceReports, canon: "/Reports/weekly"},
		{target: "/REPORTS/WEEKLY", status: 402, amount: priceReports, canon: "/REPORTS/WEEKLY"},
		{target: "/reports/%77eekly", status: 402, amount: priceReports, canon: "/reports/weekly"},
		{target: "/%72eports/weekly", status: 402, amount: priceReports, canon: "/reports/weekly"},
		{target: "/x/%2e%2e/reports/weekly", status: 402, amount: priceReports, canon: "/reports/weekly"},
		{target: "/%2E/reports/weekly", status: 402, amount: priceReports, canon: "/reports/weekly"},
		{target: "/reports/weekly/", status: 402, amount: priceReports, canon: "/reports/weekly/"},
		{method: http.MethodHead, target: "/reports/weekly", status: 402, amount: priceReports, canon: "/reports/weekly"},
		// The dearer exact route keeps its price under every spelling (no downgrade to /reports/*).
		{target: "/reports/live", status: 402, amount: priceLive, canon: "/reports/live"},
		{target: "/reports//live", status: 402, amount: priceLive, canon: "/reports/live"},
		{target: "/reports/./live", status: 402, amount: priceLive, canon: "/reports/live"},
		{target: "/reports/x/../live", status: 402, amount: priceLive, canon: "/reports/live"},
		{target: "/reports/live/", status: 402, amount: priceLive, canon: "/reports/live/"},
		{target: "/reports/Live", status: 402, amount: priceLive, canon: "/reports/Live"},
		{target: "/reports/live;v=2", status: 402, amount: priceLive, canon: "/reports/live"},
		{target: "/reports/%6Cive", status: 402, amount: priceLive, canon: "/reports/live"},
		// An exact GET route: trailing slash, case, parameters, repeated slashes; HEAD is priced as GET.
		{target: "/weather", status: 402, amount: priceWeather, canon: "/weather"},
		{target: "/weather/", status: 402, amount: priceWeather, canon: "/weather/"},
		{target: "/WEATHER", status: 402, amount: priceWeather, canon: "/WEATHER"},
		{target: "//weather", status: 402, amount: priceWeather, canon: "/weather"},
		{target: "/weather;jsessionid=1", status: 402, amount: priceWeather, canon: "/weather"},
		{method: http.MethodHead, target: "/weather", status: 402, amount: priceWeather, canon: "/weather"},
		{method: http.MethodHead, target: "/weather/", status: 402, amount: priceWeather, canon: "/weather/"},
		// A configured path with an escape matches.
		{target: "/docs/a%20b", status: 402, amount: priceDocs, canon: "/docs/a%20b"},
		{target: "/docs/a%20b/", status: 402, amount: priceDocs, canon: "/docs/a%20b/"},
		{target: "/docs/./a%20b", status: 402, amount: priceDocs, canon: "/docs/a%20b"},
		// Refused: above the root, an encoded NUL, a raw backslash.
		{target: "/../reports/weekly", status: 400, reason: x402.ReasonInvalidPath},
		{target: "/reports/../../weekly", status: 400, reason: x402.ReasonInvalidPath},
		{target: "/reports/%2e%2e/%2E%2E/weekly", status: 400, reason: x402.ReasonInvalidPath},
		{target: "/reports/%00", status: 400, reason: x402.ReasonInvalidPath},
		{target: `/reports\weekly`, status: 400, reason: x402.ReasonInvalidPath},
		// Refused by Go's HTTP server before the gateway sees them: a malformed escape, a raw
		// control character.
		{target: "/reports/%zz", status: 400},
		{target: "/reports/\x01weekly", status: 400},
		// Unpriced paths are proxied, rewritten to the canonical path.
		{target: "/free/./a", status: 200, canon: "/free/a"},
		{target: "/free//b;p=1", status: 200, canon: "/free/b"},
		{target: "/free/%63", status: 200, canon: "/free/c"},
		// An encoded slash or backslash that would lead an upstream which decodes it before
		// routing (http.FileServer, nginx serving files) to a priced resource is refused; one
		// that changes no price is data and proxied as is.
		{target: "/reports%2Fweekly", status: 400, reason: x402.ReasonInvalidPath},
		{target: "/reports%5Cweekly", status: 400, reason: x402.ReasonInvalidPath},
		{target: "/free/a%2Fb", status: 200, canon: "/free/a%2Fb"},
	}
	protected := []string{"/reports/weekly", "/reports/live", "/weather", "/docs/a b"}
	t.Run("spellings", func(t *testing.T) {
		for i, pc := range cases {
			name := strconv.Itoa(i) + pc.method + pc.target
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				c := w.client()
				if pc.method == "" {
					pc.method = http.MethodGet
				}
				a := c.do(t, s.gw, req{Method: pc.method, Target: pc.target})
				switch pc.status {
				case 402:
					if a.Status != 402 || a.JSON.Reason != "" || a.amount() != pc.amount || a.resourceURL() != s.url(pc.canon) {
						t.Errorf("%s %s: got %v amount=%q resource=%q; want 402 amount=%s resource=%s",
							pc.method, pc.target, a, a.amount(), a.resourceURL(), pc.amount, s.url(pc.canon))
					}
					if pc.method != http.MethodHead && (len(a.JSON.Accepts) != 1 || a.JSON.Accepts[0].Amount != pc.amount) {
						t.Errorf("%s %s: JSON challenge %s", pc.method, pc.target, a.Body)
					}
				case 400:
					if a.Status != 400 || (pc.reason != "" && a.JSON.Reason != string(pc.reason)) {
						t.Errorf("%s %q: got %v; want 400 reason %q", pc.method, pc.target, a, pc.reason)
					}
				case 200:
					hits := s.up.hitsOf(resourceOf(pc.canon))
					if a.Status != 200 || len(hits) != 1 || hits[0].Target != pc.canon {
						t.Errorf("%s %s: got %v, upstream received %+v; want 200 and the upstream to receive %s", pc.method, pc.target, a, targets(hits), pc.canon)
					}
				}
			})
		}
	})
	for _, res := range protected {
		if n := s.up.count(res); n != 0 {
			t.Errorf("the priced resource %s reached the upstream %d times unpaid; targets %v", res, n, targets(s.up.hitsOf(res)))
		}
	}
}

func targets(hs []hit) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Method + " " + h.Target
	}
	return out
}
