package gateway

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/gateway/pathcanon"
)

// streamedPath is the request URI the streaming proxy sends upstream for r.
func streamedPath(base *url.URL, r *http.Request) string {
	pr := &httputil.ProxyRequest{In: r, Out: r.Clone(context.Background())}
	pr.SetURL(base)
	return pr.Out.URL.RequestURI()
}

// An upstream normaliser turns a forwarded escaped path into the decoded path its router
// matches; routes are seen through the same normaliser.
type normaliser struct {
	name            string
	caseInsensitive bool
	view            func(string) string
}

var normalisers = []normaliser{
	// nginx: decodes (%2F included) before merging slashes and resolving dot segments.
	{"nginx", false, func(p string) string { return resolveDots(mergeSlashes(decodeAll(p))) }},
	// Express: decodes and matches case-insensitively; no merging, no dot segments.
	{"express", true, decodeAll},
	// Spring/Tomcat: removes ;params from the raw path, then decodes, merges and resolves dots.
	{"spring", false, func(p string) string { return resolveDots(mergeSlashes(decodeAll(stripParams(p)))) }},
}

func decodeAll(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isHexDigit(p[i+1]) && isHexDigit(p[i+2]) {
			v := hexVal(p[i+1])<<4 | hexVal(p[i+2])
			b.WriteByte(v)
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func isHexDigit(c byte) bool { return strings.IndexByte("0123456789abcdefABCDEF", c) >= 0 }

func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func mergeSlashes(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

func stripParams(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i], _, _ = strings.Cut(s, ";")
	}
	return strings.Join(segs, "/")
}

// resolveDots resolves dot segments, clamping ".." at the root (laxer than nginx, which refuses).
func resolveDots(p string) string {
	segs := strings.Split(p, "/")
	var out []string
	trailing := false
	for i, s := range segs {
		if i == 0 && s == "" {
			continue
		}
		trailing = false
		switch s {
		case ".":
			trailing = true
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = true
		default:
			out = append(out, s)
		}
	}
	res := "/" + strings.Join(out, "/")
	if trailing && len(out) > 0 {
		res += "/"
	}
	return res
}

// reaches reports whether an upstream with normaliser n serves route r for the forwarded path,
// under the route's own declaration of the upstream (caseSensitive, trailingSlash).
func reaches(n normaliser, forwarded string, r *route) bool {
	view, rv := n.view(forwarded), n.view(r.path)
	eq := func(a, b string) bool { return a == b }
	if n.caseInsensitive && r.fold {
		eq = strings.EqualFold
	}
	if r.prefix {
		if r.trim && eq(view+"/", rv) {
			return true
		}
		for i := 0; i <= len(view); i++ {
			if eq(view[:i], rv) {
				return true
			}
		}
		return false
	}
	return eq(view, rv) || r.trim && eq(trimSlash(view, true), trimSlash(rv, true))
}

func pricesMethod(r *route, method string) bool {
	m := r.cfg.Method
	return m == "" || m == method || m == http.MethodGet && method == http.MethodHead
}

// moreSpecific: a would win over b for a path both match (an exact path, then a longer prefix).
func moreSpecific(a, b *route) bool {
	switch {
	case !a.prefix && !b.prefix:
		return a != b
	case !a.prefix:
		return true
	case !b.prefix:
		return false
	}
	return len(a.path) > len(b.path)
}

// FuzzUnpaidPathsNeverReachPricedResources: for any request path, if the gateway treats it as
// unpriced, no upstream normaliser (nginx, Express, Spring/Tomcat) turns the path the gateway
// forwards into a priced resource; if it is priced, no normaliser reaches a more specific (dearer)
// route than the one that priced it, and the gateway forwards the canonical path. A refused path
// is forwarded nowhere.
func FuzzUnpaidPathsNeverReachPricedResources(f *testing.F) {
	tbl := newRouteTable(issueRoutes())
	base, _ := url.Parse("http://upstream:8080")
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions}
	for _, s := range []string{
		// The spellings of issue 12.
		"/reports/weekly", "//reports/weekly", "/./reports/weekly", "/x/../reports/weekly", "/reports//weekly",
		"/reports/weekly;x=1", "/reports/weekly/", "/Reports/weekly", "/reports//live", "/weather/", "/Weather",
		"/%2e%2e/reports", "/x/%2e%2e/reports/weekly", "/caf%c3%a9/menu", "/a%3Ab",
		// Encoded separators, parameters and case.
		"/reports%2Fweekly", "/x%2F..%2Freports/weekly", "/x/..%5Creports/weekly", "/reports/x%2F..%2Flive",
		"/reports;a=1/live", "/x/..;/reports/live", "/REPORTS/LIVE/", "/Exact/Case/", "/exact/case", "/dir",
		"/dir%2F", "/head-only", "/wee%E2%84%AAther", "/reports/%252e%252e/live", "/%72eports/l%69ve",
	} {
		for m := range methods {
			f.Add(s, uint8(m))
		}
	}
	f.Fuzz(func(t *testing.T, path string, m uint8) {
		method := methods[int(m)%len(methods)]
		fwd, rt, err := tbl.resolve(method, path)
		if err != nil {
			return // 400: nothing reaches the upstream
		}
		if c, cerr := pathcanon.Canonical(path); cerr != nil || fwd != c {
			t.Fatalf("%s %q forwarded as %q, not its canonical form %q (%v)", method, path, fwd, c, cerr)
		}
		r, _ := http.NewRequest(method, "http://gw/", nil)
		rewritePath(r, fwd)
		if got := streamedPath(base, r); got != fwd {
			t.Fatalf("%s %q: the upstream is sent %q, want %q", method, path, got, fwd)
		}
		for _, n := range normalisers {
			for _, x := range append(tbl.exact, tbl.prefix...) {
				if !pricesMethod(x, method) || !reaches(n, fwd, x) {
					continue
				}
				if rt == nil {
					t.Fatalf("%s %q is unpriced, forwarded as %q, and %s serves it as the priced %q", method, path, fwd, n.name, x.label)
				}
				if x != rt && moreSpecific(x, rt) {
					t.Fatalf("%s %q is priced by %q, but %s serves it as the dearer %q", method, path, rt.label, n.name, x.label)
				}
			}
		}
	})
}
