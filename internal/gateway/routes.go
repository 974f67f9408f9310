package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/gateway/pathcanon"
	"github.com/insforge/integrations-operator/internal/x402"
)

// route is a priced path with its precomputed payment requirements.
type route struct {
	cfg    config.Route
	path   string // canonical configured path; "/reports/" for "/reports/*"
	prefix bool
	key    string // path as compared (pathcanon.Key), trailing slash trimmed when equivalent
	fold   bool   // case-insensitive
	trim   bool   // trailing slash equivalent
	label  string // metrics label: the configured method and path
	before bool   // settle before calling the upstream
	req    x402.PaymentRequirements
	offer  []x402.PaymentRequirements // req alone, for x402.Match
	// challenges maps a resource URL to its *encodedChallenge; cachedChallenges counts the
	// entries ever added (see maxCachedChallenges).
	challenges       sync.Map
	cachedChallenges atomic.Int64
}

// routeTable finds the priced route of a canonical request path: an exact path beats a prefix, a
// longer prefix beats a shorter one, and at one path a route for the request's method beats a
// GET route for HEAD, which beats a route for any method.
type routeTable struct {
	exact  []*route
	prefix []*route // longest prefix first
	fold   bool     // some route folds case
}

func newRouteTable(c config.Config) *routeTable {
	t := &routeTable{}
	for _, rc := range c.Routes {
		r := &route{
			cfg:    rc,
			label:  strings.TrimSpace(rc.Method + " " + rc.Path),
			before: rc.Settle == config.SettleBeforeUpstream,
			fold:   !rc.CaseSensitive,
			trim:   rc.TrailingSlash != config.TrailingSlashDistinct,
			req: x402.PaymentRequirements{
				Scheme: x402.SchemeExact, Network: c.Network, Amount: rc.Amount, Asset: c.Asset.Address,
				PayTo: c.PayTo, MaxTimeoutSeconds: c.MaxTimeoutSeconds,
				Extra: map[string]any{"name": c.Asset.EIP712Name, "version": c.Asset.EIP712Version},
			},
		}
		r.offer = []x402.PaymentRequirements{r.req}
		r.path, r.prefix = strings.CutSuffix(rc.Path, "*")
		if p, err := pathcanon.Canonical(r.path); err == nil {
			r.path = p // validated configs are canonical already
		}
		r.key = pathcanon.Key(r.path, r.fold)
		if r.prefix {
			t.prefix = append(t.prefix, r)
		} else {
			r.key = trimSlash(r.key, r.trim)
			t.exact = append(t.exact, r)
		}
		t.fold = t.fold || r.fold
	}
	// Insertion sort by descending prefix length keeps the order of equal lengths.
	for i := 1; i < len(t.prefix); i++ {
		for j := i; j > 0 && len(t.prefix[j].path) > len(t.prefix[j-1].path); j-- {
			t.prefix[j], t.prefix[j-1] = t.prefix[j-1], t.prefix[j]
		}
	}
	return t
}

func trimSlash(p string, trim bool) string {
	if trim && len(p) > 1 {
		return strings.TrimSuffix(p, "/")
	}
	return p
}

// errAmbiguousSlash refuses a path whose price depends on whether the upstream takes %2F or
// %5C for separators.
var errAmbiguousSlash = errors.New("an encoded slash or backslash makes the price of this path depend on the upstream")

// resolve canonicalises a request's escaped path and finds the route that prices method on it.
// The canonical path is what the gateway forwards. A path that pathcanon refuses, or whose
// encoded slashes would lead an upstream that decodes them (with or without resolving the dot
// segments that appear) to another route, or from unpriced to priced, is an error: the caller
// answers 400.
func (t *routeTable) resolve(method, escaped string) (string, *route, error) {
	p, err := pathcanon.Canonical(escaped)
	if err != nil {
		return "", nil, err
	}
	rt := t.match(method, p)
	literal, resolved, ok, err := pathcanon.DecodeSlashes(p)
	if ok && (err != nil || t.match(method, resolved) != rt || t.match(method, literal) != rt) {
		return "", nil, fmt.Errorf("%w: %w", pathcanon.ErrInvalid, errAmbiguousSlash)
	}
	return p, rt, nil
}

// match returns the route pricing method on the canonical path, or nil.
func (t *routeTable) match(method, path string) *route {
	exact, folded := pathcanon.Key(path, false), ""
	if t.fold {
		folded = pathcanon.Key(path, true)
	}
	key := func(r *route) string {
		if r.fold {
			return folded
		}
		return exact
	}
	var best *route
	for _, r := range t.exact {
		if trimSlash(key(r), r.trim) == r.key && better(r, best, method) {
			best = r
		}
	}
	if best != nil {
		return best
	}
	for _, r := range t.prefix {
		if best != nil && len(r.path) < len(best.path) {
			break // a longer prefix for any method beats shorter method-specific ones
		}
		k := key(r)
		if (strings.HasPrefix(k, r.key) || r.trim && k+"/" == r.key) && better(r, best, method) {
			best = r
		}
	}
	return best
}

// better reports whether r prices method and ranks above best.
func better(r, best *route, method string) bool {
	n := methodRank(r.cfg.Method, method)
	return n > 0 && (best == nil || n > methodRank(best.cfg.Method, method))
}

// methodRank orders the routes of one path for a request method: its own method, then GET for
// HEAD (HEAD is priced as GET: it reveals the representation's headers), then any method; 0 is
// no match.
func methodRank(routeMethod, method string) int {
	switch {
	case routeMethod == method:
		return 3
	case routeMethod == http.MethodGet && method == http.MethodHead:
		return 2
	case routeMethod == "":
		return 1
	}
	return 0
}

// rewritePath makes every later reader of r (matching, the ledger, the resource URL, both
// upstream calls) see the canonical escaped path p.
func rewritePath(r *http.Request, p string) {
	if r.URL.Opaque == "" && r.URL.EscapedPath() == p {
		return
	}
	dec, err := url.PathUnescape(p)
	if err != nil { // cannot happen: p is canonical
		dec = p
	}
	r.URL.Opaque = ""
	r.URL.Path, r.URL.RawPath = dec, ""
	if r.URL.EscapedPath() != p {
		r.URL.RawPath = p
	}
	r.RequestURI = r.URL.RequestURI()
}

// requestPath is the path of r as it arrived. RawPath is the client's spelling when it differs
// from Go's own escaping: EscapedPath would re-escape a raw backslash as %5C, which pathcanon
// must see and refuse. An opaque request target ("GET x:reports") counts as a path, so that
// pathcanon refuses it rather than the upstream guessing at it.
func requestPath(r *http.Request) string {
	if r.URL.Opaque != "" {
		return r.URL.Opaque
	}
	if raw := r.URL.RawPath; raw != "" {
		if p, err := url.PathUnescape(raw); err == nil && p == r.URL.Path {
			return raw
		}
	}
	return r.URL.EscapedPath()
}
