package gateway

import (
	"strings"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/x402"
)

// route is a priced path with its precomputed payment requirements.
type route struct {
	cfg    config.Route
	prefix string // "/reports/" for "/reports/*"; "" for exact paths
	label  string // metrics label: the configured method and path
	before bool   // settle before calling the upstream
	req    x402.PaymentRequirements
	offer  []x402.PaymentRequirements // req alone, for x402.Match
}

// routeTable finds the priced route of a request: an exact path beats a prefix, a longer prefix
// beats a shorter one, and a route for the request's method beats one for any method.
type routeTable struct {
	exact  map[string][]*route
	prefix []*route // longest prefix first
}

func newRouteTable(c config.Config) *routeTable {
	t := &routeTable{exact: map[string][]*route{}}
	for _, rc := range c.Routes {
		r := &route{
			cfg:    rc,
			label:  strings.TrimSpace(rc.Method + " " + rc.Path),
			before: rc.Settle == config.SettleBeforeUpstream,
			req: x402.PaymentRequirements{
				Scheme: x402.SchemeExact, Network: c.Network, Amount: rc.Amount, Asset: c.Asset.Address,
				PayTo: c.PayTo, MaxTimeoutSeconds: c.MaxTimeoutSeconds,
				Extra: map[string]any{"name": c.Asset.EIP712Name, "version": c.Asset.EIP712Version},
			},
		}
		r.offer = []x402.PaymentRequirements{r.req}
		if p, ok := strings.CutSuffix(rc.Path, "*"); ok {
			r.prefix = p
			t.prefix = append(t.prefix, r)
		} else {
			t.exact[rc.Path] = append(t.exact[rc.Path], r)
		}
	}
	// Insertion sort by descending prefix length keeps the order of equal lengths.
	for i := 1; i < len(t.prefix); i++ {
		for j := i; j > 0 && len(t.prefix[j].prefix) > len(t.prefix[j-1].prefix); j-- {
			t.prefix[j], t.prefix[j-1] = t.prefix[j-1], t.prefix[j]
		}
	}
	return t
}

// match returns the route pricing method and path, or nil.
func (t *routeTable) match(method, path string) *route {
	if rs := t.exact[path]; rs != nil {
		if r := byMethod(rs, method); r != nil {
			return r
		}
	}
	var anyMethod *route
	for i, r := range t.prefix {
		if !strings.HasPrefix(path, r.prefix) && path+"/" != r.prefix {
			continue
		}
		if r.cfg.Method == method {
			return r
		}
		if r.cfg.Method == "" && anyMethod == nil {
			anyMethod = r
		}
		// A longer prefix for any method beats shorter method-specific ones.
		if anyMethod != nil && (i+1 == len(t.prefix) || len(t.prefix[i+1].prefix) < len(anyMethod.prefix)) {
			return anyMethod
		}
	}
	return anyMethod
}

func byMethod(rs []*route, method string) *route {
	var anyMethod *route
	for _, r := range rs {
		if r.cfg.Method == method {
			return r
		}
		if r.cfg.Method == "" {
			anyMethod = r
		}
	}
	return anyMethod
}
