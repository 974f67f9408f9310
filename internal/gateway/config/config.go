package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Defaults applied by Load (and by the controller when it renders the file) to fields left empty.
const (
	DefaultConfigPath        = "/etc/x402-gateway/config.json"
	DefaultListen            = ":8080"
	DefaultAdminListen       = ":9090"
	DefaultPayerHeader       = "X-Payment-Payer"
	DefaultUpstreamTimeout   = 30 * time.Second
	DefaultMaxResponseBytes  = 8 << 20
	DefaultMaxRequestBytes   = 10 << 20
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 90 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteIdleTimeout  = 60 * time.Second
	DefaultMaxConnections    = 4096
	DefaultSettleTimeout     = 30 * time.Second
	DefaultShutdownTimeout   = 45 * time.Second
	DefaultPendingRetryAfter = 30 * time.Second
	DefaultSpoolDir          = "/var/lib/x402-gateway/spool"
	DefaultResolverInterval  = 5 * time.Second
	DefaultResolverMinAge    = 2 * time.Minute
	DefaultDBMaxConns        = 32
)

// Probe and metrics paths, served on Config.AdminListen.
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"
)

// Facilitator kinds.
const (
	KindOKX     = "okx"
	KindHTTP    = "http"
	KindOnchain = "onchain"
	KindMock    = "mock"
)

// Settle timings of a route.
const (
	SettleAfterUpstream  = "afterUpstream"
	SettleBeforeUpstream = "beforeUpstream"
)

// MaxReplayWindow bounds Route.ReplayWindow: stored responses are held in memory.
const MaxReplayWindow = 5 * time.Minute

// SettleBefore says whether a request with this method on route r is settled before the
// upstream is called. Unset timing pays non-idempotent methods first: their effect must not
// happen for a payment that then fails to settle (the payer can empty the wallet between
// verify and settle), while a GET's answer can simply be withheld.
func (r Route) SettleBefore(method string) bool {
	switch r.Settle {
	case SettleBeforeUpstream:
		return true
	case SettleAfterUpstream:
		return false
	}
	return method != "GET" && method != "HEAD"
}

// Trailing-slash policies of a route.
const (
	TrailingSlashEquivalent = "Equivalent"
	TrailingSlashDistinct   = "Distinct"
)

// Unpriced-path policies.
const (
	UnpricedProxy  = "proxy"
	UnpricedReject = "reject"
)

// Config is the gateway's configuration file.
type Config struct {
	// Route names the PaymentRoute as "namespace/name"; ledger totals are kept per route.
	Route string `json:"route"`
	// Listen is the address of the paid data plane; default ":8080".
	Listen string `json:"listen,omitempty"`
	// AdminListen serves /healthz, /readyz and /metrics; default ":9090".
	AdminListen string `json:"adminListen,omitempty"`
	// Upstream is the absolute http(s) URL requests are forwarded to.
	Upstream string `json:"upstream"`
	// Network is the CAIP-2 chain id, e.g. "eip155:196".
	Network string `json:"network"`
	// Asset is the token payers pay with.
	Asset Asset `json:"asset"`
	// PayTo receives payments.
	PayTo string `json:"payTo"`
	// MaxTimeoutSeconds is the validity a payer's authorization must have.
	MaxTimeoutSeconds int `json:"maxTimeoutSeconds"`
	// Routes are the priced paths.
	Routes []Route `json:"routes"`
	// Facilitator verifies and settles.
	Facilitator Facilitator `json:"facilitator"`
	// Ledger names the payments table; its URL is in EnvDatabaseURL.
	Ledger Ledger `json:"ledger"`
	// Gateway tunes the HTTP side.
	Gateway Gateway `json:"gateway"`
	// Resolver tunes the resolution of unknown settlement outcomes.
	Resolver Resolver `json:"resolver"`

	// Secrets come from the environment, never from the file.
	Secrets Secrets `json:"-"`
}

// Asset is an EIP-3009 token.
type Asset struct {
	Address       string `json:"address"`
	Decimals      int    `json:"decimals"`
	Symbol        string `json:"symbol,omitempty"`
	EIP712Name    string `json:"eip712Name"`
	EIP712Version string `json:"eip712Version"`
}

// Route is a priced path.
type Route struct {
	// Path is exact ("/weather") or a prefix ending in "/*" ("/reports/*").
	Path string `json:"path"`
	// Method restricts the price to one method; empty means any.
	Method string `json:"method,omitempty"`
	// Price in token units ("0.01").
	Price       string `json:"price"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
	// Settle is afterUpstream or beforeUpstream; empty settles GET and HEAD requests after the
	// upstream answered and every other method before the upstream is called (SettleTiming).
	Settle string `json:"settle,omitempty"`
	// ReplayWindow, when set, lets a payer whose response was lost repeat the very same request
	// (method, path, query, body) within this window and get the stored response; zero (the
	// default) means a payment buys exactly one response. GET and HEAD on afterUpstream only.
	ReplayWindow Duration `json:"replayWindow,omitzero"`
	// CaseSensitive makes Path match only requests that spell it in the same case; by default
	// "/Reports/x" is priced like "/reports/x" (case-insensitive upstreams serve them as one).
	CaseSensitive bool `json:"caseSensitive,omitempty"`
	// TrailingSlash is Equivalent ("" too: "/a/" is priced as "/a", and "/a" by "/a/*") or
	// Distinct (the path as written only).
	TrailingSlash string `json:"trailingSlash,omitempty"`

	// Amount is Price in atomic units, computed by Load and ValidateFile.
	Amount string `json:"-"`
}

// Facilitator selects and configures the facilitator. Kind names the member that must be set
// (mock needs none).
type Facilitator struct {
	Kind    string   `json:"kind"`
	OKX     *OKX     `json:"okx,omitempty"`
	HTTP    *HTTP    `json:"http,omitempty"`
	Onchain *Onchain `json:"onchain,omitempty"`
}

// OKX is OKX's facilitator API; credentials come from EnvOKX*.
type OKX struct {
	BaseURL string `json:"baseURL,omitempty"`
	// Legacy selects the /api/v6/x402 generation.
	Legacy bool `json:"legacy,omitempty"`
	// AsyncSettle sends syncSettle=false.
	AsyncSettle bool `json:"asyncSettle,omitempty"`
	// RPCURL is a node of the route's network: the resolver checks OKX's settlement status
	// against the chain and looks settlements up there when OKX cannot. Required.
	RPCURL string `json:"rpcURL"`
}

// HTTP is a standard x402 facilitator; headers come from EnvFacilitatorHeaderPrefix variables.
type HTTP struct {
	URL string `json:"url"`
	// RPCURL is a node of the route's network: the standard API has no status call, so the
	// resolver looks unknown settlement outcomes up on chain. Required.
	RPCURL string `json:"rpcURL"`
}

// Onchain is the self-hosted facilitator; the relayer key comes from EnvRelayerKey.
type Onchain struct {
	RPCURL         string   `json:"rpcURL"`
	ReceiptTimeout Duration `json:"receiptTimeout,omitzero"`
}

// Ledger names the payments table.
type Ledger struct {
	Schema string `json:"schema,omitempty"`
	Table  string `json:"table,omitempty"`
	// Migrate runs the (idempotent, versioned) schema migration at start.
	Migrate bool `json:"migrate,omitempty"`
	// MaxConns bounds the connection pool; default 32.
	MaxConns int `json:"maxConns,omitempty"`
}

// Gateway tunes the HTTP side.
type Gateway struct {
	// UnpricedPaths is proxy (default) or reject (404).
	UnpricedPaths string `json:"unpricedPaths,omitempty"`
	// PayerHeader carries the verified payer address to the upstream.
	PayerHeader string `json:"payerHeader,omitempty"`
	// TrustForwarded (default false) makes the resource URL follow X-Forwarded-Proto/Host/Prefix
	// and passes the client's X-Forwarded-* on to the upstream. Set it only when every client
	// reaches the gateway through a proxy that overwrites those headers.
	TrustForwarded *bool `json:"trustForwarded,omitempty"`
	// CORSAllowOrigin is sent as Access-Control-Allow-Origin on priced paths; default "*".
	CORSAllowOrigin string `json:"corsAllowOrigin,omitempty"`

	UpstreamTimeout   Duration `json:"upstreamTimeout,omitzero"`
	SettleTimeout     Duration `json:"settleTimeout,omitzero"`
	ReadHeaderTimeout Duration `json:"readHeaderTimeout,omitzero"`
	IdleTimeout       Duration `json:"idleTimeout,omitzero"`
	ShutdownTimeout   Duration `json:"shutdownTimeout,omitzero"`
	// ReadTimeout bounds reading a whole request, headers and body; default 60s (or
	// ReadHeaderTimeout, if longer).
	ReadTimeout Duration `json:"readTimeout,omitzero"`
	// WriteIdleTimeout bounds each write of a response to the client; every write that
	// completes starts a new period, so a stream that keeps moving is never cut. Default 60s.
	WriteIdleTimeout Duration `json:"writeIdleTimeout,omitzero"`
	// PendingRetryAfter is the Retry-After sent while a settlement's outcome is unknown.
	PendingRetryAfter Duration `json:"pendingRetryAfter,omitzero"`

	MaxResponseBytes int64 `json:"maxResponseBytes,omitempty"`
	MaxRequestBytes  int64 `json:"maxRequestBytes,omitempty"`
	MaxHeaderBytes   int   `json:"maxHeaderBytes,omitempty"`
	// MaxConnections caps the data plane's open client connections; further clients wait in
	// the listen backlog until one closes. Default 4096.
	MaxConnections int `json:"maxConnections,omitempty"`

	// SpoolDir holds outcomes the database could not take (an emptyDir in Kubernetes).
	SpoolDir string `json:"spoolDir,omitempty"`
}

// Resolver tunes the background resolution of unknown outcomes.
type Resolver struct {
	Interval Duration `json:"interval,omitzero"`
	// MinAge must exceed SettleTimeout so in-flight settles are left alone. A payment's row is
	// settling from its claim, before the upstream call, so the default also exceeds
	// UpstreamTimeout + SettleTimeout: a shorter MinAge may mark a request still in flight
	// pending, which is safe (its outcome still applies) but makes a payer whose upstream call
	// then fails wait for the authorization to expire before the payment can be reused.
	MinAge Duration `json:"minAge,omitzero"`
}

// TrustsForwarded reports whether the client's X-Forwarded-* headers are believed (default
// false: any client can send them, so they are ignored unless a proxy in front sets them).
func (g Gateway) TrustsForwarded() bool { return g.TrustForwarded != nil && *g.TrustForwarded }

// Load reads the file at path, applies defaults, takes secrets from env and validates the lot.
func Load(path string, env Env) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("gateway config: %w", err)
	}
	return Parse(raw, env)
}

// Parse is Load for bytes already read.
func Parse(raw []byte, env Env) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("gateway config: %w", err)
	}
	if dec.More() {
		return Config{}, fmt.Errorf("gateway config: trailing data after the JSON object")
	}
	c.Secrets = secretsFrom(env)
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Marshal renders the file form (without secrets), indented, as the ConfigMap holds it.
func (c Config) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	return append(b, '\n'), nil
}

// ApplyDefaults fills empty fields.
func (c *Config) ApplyDefaults() {
	str := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	dur := func(p *Duration, v time.Duration) {
		if p.Duration == 0 {
			p.Duration = v
		}
	}
	str(&c.Listen, DefaultListen)
	str(&c.AdminListen, DefaultAdminListen)
	g := &c.Gateway
	str(&g.UnpricedPaths, UnpricedProxy)
	str(&g.PayerHeader, DefaultPayerHeader)
	str(&g.CORSAllowOrigin, "*")
	str(&g.SpoolDir, DefaultSpoolDir)
	dur(&g.UpstreamTimeout, DefaultUpstreamTimeout)
	dur(&g.SettleTimeout, DefaultSettleTimeout)
	dur(&g.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	dur(&g.IdleTimeout, DefaultIdleTimeout)
	dur(&g.ReadTimeout, max(DefaultReadTimeout, g.ReadHeaderTimeout.Duration)) // it includes the headers
	dur(&g.WriteIdleTimeout, DefaultWriteIdleTimeout)
	dur(&g.ShutdownTimeout, DefaultShutdownTimeout)
	dur(&g.PendingRetryAfter, DefaultPendingRetryAfter)
	if g.MaxResponseBytes == 0 {
		g.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if g.MaxRequestBytes == 0 {
		g.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if g.MaxHeaderBytes == 0 {
		g.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if g.MaxConnections == 0 {
		g.MaxConnections = DefaultMaxConnections
	}
	if c.Ledger.MaxConns == 0 {
		c.Ledger.MaxConns = DefaultDBMaxConns
	}
	dur(&c.Resolver.Interval, DefaultResolverInterval)
	if c.Resolver.MinAge.Duration == 0 {
		c.Resolver.MinAge.Duration = max(DefaultResolverMinAge, 2*(g.UpstreamTimeout.Duration+g.SettleTimeout.Duration))
	}
}
