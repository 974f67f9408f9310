package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/net/http/httpguts"

	"github.com/insforge/integrations-operator/internal/gateway/pathcanon"
	"github.com/insforge/integrations-operator/internal/x402/amount"
	"github.com/insforge/integrations-operator/internal/x402/caip2"
)

var (
	routePathRE  = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()+,;=:@%/-]*(/\*)?$`)
	headerNameRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	routeNameRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$`)
	identRE      = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`)
	methods      = map[string]bool{"": true, "GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}
)

// maxConnectionsLimit bounds gateway.maxConnections: each connection holds a file descriptor
// and buffers, so a cap above this is no cap.
const maxConnectionsLimit = 1 << 20

// Validate checks the configuration (defaults applied) and its secrets. It reports every
// problem at once, each naming its field; it never repeats a secret's value.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !routeNameRE.MatchString(c.Route) {
		bad("route", "%q must be namespace/name", c.Route)
	}
	if err := checkHTTPURL(c.Upstream); err != nil {
		bad("upstream", "%v", err)
	}
	if _, err := caip2.ParseEVM(c.Network); err != nil {
		bad("network", "%v", err)
	}
	if !common.IsHexAddress(c.Asset.Address) {
		bad("asset.address", "%q is not a 0x-hex address", c.Asset.Address)
	}
	if c.Asset.Decimals < 0 || c.Asset.Decimals > 36 {
		bad("asset.decimals", "%d is outside 0..36", c.Asset.Decimals)
	}
	if c.Asset.EIP712Name == "" || c.Asset.EIP712Version == "" {
		bad("asset", "eip712Name and eip712Version are required (the token's EIP-712 domain)")
	}
	if !common.IsHexAddress(c.PayTo) || common.HexToAddress(c.PayTo) == (common.Address{}) {
		bad("payTo", "%q is not a non-zero 0x-hex address", c.PayTo)
	}
	if c.MaxTimeoutSeconds < 1 || c.MaxTimeoutSeconds > 86400 {
		bad("maxTimeoutSeconds", "%d is outside 1..86400", c.MaxTimeoutSeconds)
	}
	errs = append(errs, c.validateRoutes()...)
	errs = append(errs, c.validateFacilitator()...)
	if c.Secrets.DatabaseURL == "" {
		bad(EnvDatabaseURL, "is not set; the ledger database URL is required")
	} else if u, err := url.Parse(c.Secrets.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		bad(EnvDatabaseURL, "is not a postgres:// URL") // no %v: the parse error would quote the URL
	}
	if c.Ledger.Schema != "" && !identRE.MatchString(c.Ledger.Schema) {
		bad("ledger.schema", "%q is not a plain identifier", c.Ledger.Schema)
	}
	if c.Ledger.Table != "" && (!identRE.MatchString(c.Ledger.Table) || len(c.Ledger.Table) > 40) {
		bad("ledger.table", "%q is not a plain identifier of at most 40 bytes", c.Ledger.Table)
	}
	if c.Ledger.MaxConns < 1 {
		bad("ledger.maxConns", "must be positive")
	}
	errs = append(errs, c.validateGateway()...)
	if len(errs) > 0 {
		return fmt.Errorf("gateway config is invalid:\n%w", errors.Join(errs...))
	}
	return nil
}

func (c *Config) validateRoutes() []error {
	var errs []error
	if len(c.Routes) == 0 {
		return []error{errors.New("routes: at least one priced route is required")}
	}
	seen := map[string]bool{}
	for i := range c.Routes {
		r := &c.Routes[i]
		field := fmt.Sprintf("routes[%d]", i)
		if !routePathRE.MatchString(r.Path) || strings.Contains(strings.TrimSuffix(r.Path, "/*"), "*") {
			errs = append(errs, fmt.Errorf("%s.path: %q must be an absolute path, optionally ending in /*", field, r.Path))
		} else if err := checkCanonical(r.Path); err != nil {
			errs = append(errs, fmt.Errorf("%s.path: %w", field, err))
		}
		if r.TrailingSlash != "" && r.TrailingSlash != TrailingSlashEquivalent && r.TrailingSlash != TrailingSlashDistinct {
			errs = append(errs, fmt.Errorf("%s.trailingSlash: %q is not Equivalent or Distinct", field, r.TrailingSlash))
		}
		if !methods[r.Method] {
			errs = append(errs, fmt.Errorf("%s.method: %q is not one of GET, HEAD, POST, PUT, PATCH, DELETE", field, r.Method))
		}
		key := r.Method + " " + r.Path
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s: path %q and method %q repeat an earlier route", field, r.Path, r.Method))
		}
		seen[key] = true
		if r.Settle != "" && r.Settle != SettleAfterUpstream && r.Settle != SettleBeforeUpstream {
			errs = append(errs, fmt.Errorf("%s.settle: %q is not afterUpstream or beforeUpstream", field, r.Settle))
		}
		switch w := r.ReplayWindow.Duration; {
		case w < 0 || w > MaxReplayWindow:
			errs = append(errs, fmt.Errorf("%s.replayWindow: %s is outside 0..%s", field, w, MaxReplayWindow))
		case w > 0 && r.Settle == SettleBeforeUpstream:
			errs = append(errs, fmt.Errorf("%s.replayWindow: needs a buffered route; settle beforeUpstream streams the response", field))
		case w > 0 && r.Method != "" && r.Method != "GET" && r.Method != "HEAD":
			errs = append(errs, fmt.Errorf("%s.replayWindow: only GET and HEAD responses may be replayed, not %s", field, r.Method))
		}
		if c.Asset.Decimals < 0 || c.Asset.Decimals > 36 {
			continue
		}
		v, err := amount.ParseDecimal(r.Price, uint8(c.Asset.Decimals))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.price: %w", field, err))
		case v.Sign() <= 0:
			errs = append(errs, fmt.Errorf("%s.price: must be greater than zero", field))
		default:
			r.Amount = v.String()
		}
	}
	return append(errs, overlappingRoutes(c.Routes)...)
}

// checkCanonical refuses a route path that no request could match as written: the gateway
// matches canonical request paths (see pathcanon), so a configured path must be canonical too.
func checkCanonical(path string) error {
	base := strings.TrimSuffix(path, "*")
	c, err := pathcanon.Canonical(base)
	if err != nil {
		return fmt.Errorf("%q can never match a request: %w", path, err)
	}
	if c != base {
		return fmt.Errorf("%q is not canonical (requests are matched in canonical form): write %q", path, c+path[len(base):])
	}
	if strings.Contains(c, "%2F") || strings.Contains(c, "%5C") {
		return fmt.Errorf("%q encodes a slash or backslash: upstreams differ on whether it separates segments, so the price could be bypassed", path)
	}
	return nil
}

// overlappingRoutes refuses two routes of one method that price the same requests once case
// folding and trailing-slash equivalence apply: which price wins would be an accident.
func overlappingRoutes(routes []Route) []error {
	var errs []error
	for j := range routes {
		for i := range j {
			a, b := routes[i], routes[j]
			if a.Method != b.Method || a.Path == b.Path || strings.HasSuffix(a.Path, "*") != strings.HasSuffix(b.Path, "*") ||
				checkCanonical(a.Path) != nil || checkCanonical(b.Path) != nil {
				continue
			}
			fold := !a.CaseSensitive || !b.CaseSensitive
			trim := a.TrailingSlash != TrailingSlashDistinct || b.TrailingSlash != TrailingSlashDistinct
			if routeKey(a.Path, fold, trim) == routeKey(b.Path, fold, trim) {
				errs = append(errs, fmt.Errorf("routes[%d]: path %q prices the same requests as routes[%d].path %q "+
					"(paths match case-insensitively and with or without a trailing slash unless caseSensitive and trailingSlash: Distinct say otherwise)",
					j, b.Path, i, a.Path))
			}
		}
	}
	return errs
}

func routeKey(path string, fold, trim bool) string {
	p := strings.TrimSuffix(path, "*")
	if trim && len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return pathcanon.Key(p, fold)
}

func (c *Config) validateFacilitator() []error {
	f, s := c.Facilitator, c.Secrets
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	set := 0
	for _, p := range []bool{f.OKX != nil, f.HTTP != nil, f.Onchain != nil} {
		if p {
			set++
		}
	}
	switch f.Kind {
	case KindOKX:
		if f.OKX == nil || set != 1 {
			bad("facilitator: kind okx needs facilitator.okx and no other member")
		} else {
			if f.OKX.BaseURL != "" {
				if err := checkHTTPURL(f.OKX.BaseURL); err != nil {
					bad("facilitator.okx.baseURL: %v", err)
				}
			}
			if err := checkRPCURL(f.OKX.RPCURL); err != nil {
				bad("facilitator.okx.rpcURL: %v (the resolver confirms settlements on chain)", err)
			}
		}
		for _, e := range []struct{ name, v string }{{EnvOKXAPIKey, s.OKXAPIKey}, {EnvOKXSecretKey, s.OKXSecretKey}, {EnvOKXPassphrase, s.OKXPassphrase}} {
			if e.v == "" {
				bad("%s: is not set; the okx facilitator needs it", e.name)
			}
		}
	case KindHTTP:
		if f.HTTP == nil || set != 1 {
			bad("facilitator: kind http needs facilitator.http and no other member")
		} else {
			if err := checkHTTPURL(f.HTTP.URL); err != nil {
				bad("facilitator.http.url: %v", err)
			}
			if err := checkRPCURL(f.HTTP.RPCURL); err != nil {
				bad("facilitator.http.rpcURL: %v (the resolver looks settlements up on chain)", err)
			}
		}
		for name, value := range s.FacilitatorHeader {
			if !headerNameRE.MatchString(name) {
				bad("%s%s: %q is not a valid header name", EnvFacilitatorHeaderPrefix, name, name)
			} else if !httpguts.ValidHeaderFieldValue(value) {
				// Found here, not on the first settle; the value is a secret: never echo it.
				bad("%s%s: the value is not a valid header value (a line break or another control character)", EnvFacilitatorHeaderPrefix, name)
			}
		}
	case KindOnchain:
		if f.Onchain == nil || set != 1 {
			bad("facilitator: kind onchain needs facilitator.onchain and no other member")
		} else if err := checkRPCURL(f.Onchain.RPCURL); err != nil {
			bad("facilitator.onchain.rpcURL: %v", err)
		}
		if s.RelayerKey == "" {
			bad("%s: is not set; the onchain facilitator needs the relayer's private key", EnvRelayerKey)
		} else if _, err := crypto.HexToECDSA(strings.TrimPrefix(s.RelayerKey, "0x")); err != nil {
			bad("%s: is not a hex secp256k1 private key", EnvRelayerKey) // never echo the value
		}
	case KindMock:
		if set != 0 {
			bad("facilitator: kind mock takes no okx, http or onchain member")
		}
	default:
		bad("facilitator.kind: %q is not okx, http, onchain or mock", f.Kind)
	}
	return errs
}

func (c *Config) validateGateway() []error {
	g := c.Gateway
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if g.UnpricedPaths != UnpricedProxy && g.UnpricedPaths != UnpricedReject {
		bad("gateway.unpricedPaths: %q is not proxy or reject", g.UnpricedPaths)
	}
	if !headerNameRE.MatchString(g.PayerHeader) {
		bad("gateway.payerHeader: %q is not a valid header name", g.PayerHeader)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{
		{"upstreamTimeout", g.UpstreamTimeout}, {"settleTimeout", g.SettleTimeout},
		{"readHeaderTimeout", g.ReadHeaderTimeout}, {"idleTimeout", g.IdleTimeout},
		{"shutdownTimeout", g.ShutdownTimeout}, {"pendingRetryAfter", g.PendingRetryAfter},
		{"readTimeout", g.ReadTimeout}, {"writeIdleTimeout", g.WriteIdleTimeout},
	} {
		if d.v.Duration <= 0 {
			bad("gateway.%s: must be positive", d.name)
		}
	}
	if g.ReadTimeout.Duration < g.ReadHeaderTimeout.Duration {
		bad("gateway.readTimeout: %s is below gateway.readHeaderTimeout %s (it bounds the whole request, headers included)", g.ReadTimeout, g.ReadHeaderTimeout)
	}
	if g.MaxConnections < 1 || g.MaxConnections > maxConnectionsLimit {
		bad("gateway.maxConnections: %d is outside 1..%d", g.MaxConnections, maxConnectionsLimit)
	}
	if g.MaxResponseBytes < 1024 {
		bad("gateway.maxResponseBytes: %d is below 1024", g.MaxResponseBytes)
	}
	if g.MaxRequestBytes < 1 {
		bad("gateway.maxRequestBytes: must be positive")
	}
	if g.MaxHeaderBytes < 4096 {
		bad("gateway.maxHeaderBytes: %d is below 4096 (a payment header alone is about 1.5 KiB)", g.MaxHeaderBytes)
	}
	if g.SpoolDir == "" {
		bad("gateway.spoolDir: is required")
	}
	if c.Resolver.Interval.Duration <= 0 {
		bad("resolver.interval: must be positive")
	}
	if c.Resolver.MinAge.Duration <= g.SettleTimeout.Duration {
		bad("resolver.minAge: %s must exceed gateway.settleTimeout %s, or in-flight settles would be resolved", c.Resolver.MinAge, g.SettleTimeout)
	}
	return errs
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", s)
	}
	return nil
}

func checkRPCURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) or ws(s) URL", s)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
		return nil
	}
	return fmt.Errorf("%q is not an absolute http(s) or ws(s) URL", s)
}
