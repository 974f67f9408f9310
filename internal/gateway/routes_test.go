package gateway

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/gateway/pathcanon"
)

func priceOf(r *route) string {
	if r == nil {
		return ""
	}
	return r.cfg.Price
}

func TestRouteTablePicksTheMostSpecificRoute(t *testing.T) {
	c := config.Config{Routes: []config.Route{
		{Path: "/a/*", Price: "1"},
		{Path: "/a/b/*", Price: "2"},
		{Path: "/a/b/c", Price: "3"},
		{Path: "/a/b/c", Method: "POST", Price: "4"},
		{Path: "/x/*", Method: "GET", Price: "5"},
	}}
	tbl := newRouteTable(c)
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/a/b/c", "3"},
		{"POST", "/a/b/c", "4"},
		{"GET", "/a/b/d", "2"},
		{"GET", "/a/z", "1"},
		{"GET", "/a", "1"},
		{"GET", "/x/1", "5"},
		{"POST", "/x/1", ""},
		{"GET", "/ab", ""},
		{"GET", "/", ""},
	} {
		if got := priceOf(tbl.match(tc.method, tc.path)); got != tc.want {
			t.Errorf("%s %s → route %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

// issueRoutes are the routes of issue 12's report: a cheap prefix and a dearer exact path under it.
func issueRoutes() config.Config {
	return config.Config{Routes: []config.Route{
		{Path: "/reports/*", Price: "1"},
		{Path: "/reports/live", Price: "5"},
		{Path: "/weather", Method: "GET", Price: "2"},
		{Path: "/caf%C3%A9/menu", Price: "3"},
		{Path: "/a:b", Price: "4"},
		{Path: "/Exact/Case", Price: "6", CaseSensitive: true, TrailingSlash: config.TrailingSlashDistinct},
		{Path: "/head-only", Method: "HEAD", Price: "7"},
		{Path: "/dir/*", Price: "8", TrailingSlash: config.TrailingSlashDistinct},
	}}
}

// Every spelling of the issue reaches the price of the resource it names, and the gateway forwards
// the canonical path. On main at 36a5bca each of these was matched as unpriced (or as the cheaper
// prefix) and proxied raw.
func TestEverySpellingOfAPricedPathIsPriced(t *testing.T) {
	tbl := newRouteTable(issueRoutes())
	for _, tc := range []struct{ method, path, price, forwarded string }{
		{"GET", "/reports/weekly", "1", "/reports/weekly"},
		{"GET", "//reports/weekly", "1", "/reports/weekly"},
		{"GET", "/./reports/weekly", "1", "/reports/weekly"},
		{"GET", "/x/../reports/weekly", "1", "/reports/weekly"},
		{"GET", "/reports//weekly", "1", "/reports/weekly"},
		{"GET", "/reports/weekly;x=1", "1", "/reports/weekly"},
		{"GET", "/reports;x=1/weekly", "1", "/reports/weekly"},
		{"GET", "/Reports/weekly", "1", "/Reports/weekly"},
		{"GET", "/REPORTS", "1", "/REPORTS"},
		{"GET", "/x/%2e%2e/reports/weekly", "1", "/reports/weekly"},
		{"GET", "/%72eports/weekly", "1", "/reports/weekly"},
		// No price downgrade: every spelling of the dearer path gets its price.
		{"GET", "/reports/live", "5", "/reports/live"},
		{"GET", "/reports//live", "5", "/reports/live"},
		{"GET", "/reports/live/", "5", "/reports/live/"},
		{"GET", "/reports/./live", "5", "/reports/live"},
		{"GET", "/reports/Live", "5", "/reports/Live"},
		{"GET", "/reports/live;v=2", "5", "/reports/live"},
		{"GET", "/reports/l%69ve", "5", "/reports/live"},
		// A trailing slash on an exact route; HEAD on a GET route.
		{"GET", "/weather/", "2", "/weather/"},
		{"HEAD", "/weather", "2", "/weather"},
		{"HEAD", "//Weather/", "2", "/Weather/"},
		{"POST", "/weather", "", "/weather"},
		// Configured escapes match every spelling of them.
		{"GET", "/caf%C3%A9/menu", "3", "/caf%C3%A9/menu"},
		{"GET", "/caf%c3%a9/menu", "3", "/caf%C3%A9/menu"},
		{"GET", "/CAF%C3%89/MENU", "3", "/CAF%C3%89/MENU"},
		{"GET", "/a%3Ab", "4", "/a%3Ab"},
		{"GET", "/a:b", "4", "/a:b"},
		// Options: case-sensitive and distinct trailing slash; a HEAD route prices only HEAD.
		{"GET", "/Exact/Case", "6", "/Exact/Case"},
		{"GET", "/exact/case", "", "/exact/case"},
		{"GET", "/Exact/Case/", "", "/Exact/Case/"},
		{"HEAD", "/head-only", "7", "/head-only"},
		{"GET", "/head-only", "", "/head-only"},
		{"GET", "/dir/x", "8", "/dir/x"},
		{"GET", "/dir", "", "/dir"},
		// Encoded slashes that change nothing are forwarded as they are.
		{"GET", "/reports/a%2Fb", "1", "/reports/a%2Fb"},
		{"GET", "/free/a%2fb", "", "/free/a%2Fb"},
	} {
		p, rt, err := tbl.resolve(tc.method, tc.path)
		if err != nil || priceOf(rt) != tc.price || p != tc.forwarded {
			t.Errorf("%s %s → %q, route %q, %v; want %q, route %q", tc.method, tc.path, p, priceOf(rt), err, tc.forwarded, tc.price)
		}
	}
}

// A path whose price depends on whether the upstream decodes %2F (nginx does) is refused.
func TestEncodedSlashesThatChangeThePriceAreRefused(t *testing.T) {
	tbl := newRouteTable(issueRoutes())
	for _, p := range []string{
		"/reports%2Fweekly",              // unpriced as written, /reports/weekly to nginx
		"/x%2F..%2Freports/weekly",       // dot segments hidden behind encoded slashes
		"/x/..%5Creports/weekly",         // a backslash separator (Windows upstreams)
		"/reports/x%2F..%2Flive",         // /reports/* as written, /reports/live decoded
		"/reports/%2F..%2F..%2F..%2Fetc", // above the root once decoded
		"/reports%2F..",                  // Express routes /reports/.. to /reports/*
	} {
		if q, rt, err := tbl.resolve(http.MethodGet, p); err == nil || !errors.Is(err, pathcanon.ErrInvalid) {
			t.Errorf("%s → %q, route %q, %v; want refused", p, q, priceOf(rt), err)
		}
	}
}

func TestRewritePathReachesBothUpstreamCalls(t *testing.T) {
	for _, tc := range []struct{ target, base, want string }{
		{"//reports/./weekly;x=1", "http://up", "/reports/weekly"},
		{"/reports/caf%c3%a9/%41", "http://up", "/reports/caf%C3%A9/A"},
		{"/free/a%2fb!", "http://up/api/", "/api/free/a%2Fb!"},
	} {
		r := httptest.NewRequest(http.MethodGet, tc.target+"?q=1", nil)
		p, _, err := newRouteTable(issueRoutes()).resolve(r.Method, requestPath(r))
		if err != nil {
			t.Fatal(err)
		}
		rewritePath(r, p)
		if r.URL.EscapedPath() != p || r.RequestURI != p+"?q=1" {
			t.Errorf("%s: rewritten to %q (%q)", tc.target, r.URL.EscapedPath(), r.RequestURI)
		}
		base, _ := url.Parse(tc.base)
		// The buffered fetch joins paths with joinPath; the streaming proxy with SetURL.
		path, raw := joinPath(base, r.URL)
		if got := (&url.URL{Path: path, RawPath: raw}).EscapedPath(); got != tc.want {
			t.Errorf("%s: buffered upstream path %q, want %q", tc.target, got, tc.want)
		}
		if got := streamedPath(base, r); got != tc.want+"?q=1" {
			t.Errorf("%s: streamed upstream request URI %q, want %q", tc.target, got, tc.want+"?q=1")
		}
	}
}

func TestRequestPathKeepsTheClientsSpelling(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.URL = &url.URL{Path: `/reports\weekly`, RawPath: `/reports\weekly`}
	if _, _, err := newRouteTable(issueRoutes()).resolve(r.Method, requestPath(r)); err == nil {
		t.Error("a raw backslash was accepted (EscapedPath spells it %5C)")
	}
	r.URL = &url.URL{Opaque: "reports/weekly"}
	if _, _, err := newRouteTable(issueRoutes()).resolve(r.Method, requestPath(r)); err == nil {
		t.Error("an opaque request target was accepted")
	}
}

// The rule runs on every request: a plain path costs no allocation.
func TestResolveDoesNotAllocateForPlainPaths(t *testing.T) {
	tbl := newRouteTable(issueRoutes())
	r := httptest.NewRequest(http.MethodGet, "/reports/weekly?x=1", nil)
	if n := testing.AllocsPerRun(100, func() {
		p, rt, err := tbl.resolve(r.Method, requestPath(r))
		if err != nil || rt == nil {
			t.Fatal(p, err)
		}
		rewritePath(r, p)
	}); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
}
