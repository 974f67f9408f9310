// Package config is the token exchange's configuration file: what the operator renders into the
// exchange's ConfigMap and what cmd/exchange loads. It is the contract between the two.
package config

import (
	"encoding/json"
	"fmt"
	"time"
)

// Defaults applied by Load and by the controller when it renders the file.
const (
	DefaultConfigPath     = "/etc/insforge-exchange/config.json"
	DefaultSigningKeyFile = "/var/run/insforge-exchange/signing/SIGNING_KEY"
	DefaultListen         = ":8080"
	DefaultAdminListen    = ":9090"
	DefaultLifetime       = 5 * time.Minute
	MaxLifetime           = time.Hour
	DefaultAudience       = "insforge-api"
	DefaultLeeway         = 30 * time.Second
	MaxLeeway             = 5 * time.Minute
	DefaultShutdown       = 20 * time.Second
	// ConfigMapKey is the ConfigMap key holding the file.
	ConfigMapKey = "config.json"
	// SigningKeyName is the key of the signing-key Secret (and the file name it is mounted as).
	SigningKeyName = "SIGNING_KEY"
)

// Probe and metrics paths, served on AdminListen.
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"
)

// Paths served on Listen.
const (
	// PathToken takes an RFC 8693 token-exchange form POST.
	PathToken = "/token"
	// PathExchange takes `Authorization: Bearer <provider token>` (POST, or GET for simple
	// clients) and answers with the same JSON as PathToken.
	PathExchange = "/exchange"
)

// Config is the whole file.
type Config struct {
	// Listen serves the exchange endpoints; AdminListen serves probes and metrics.
	Listen      string `json:"listen,omitempty"`
	AdminListen string `json:"adminListen,omitempty"`
	// SigningKeyFile holds the HS256 key the minted tokens are signed with (InsForge's
	// JWT_SECRET, the version InsForge verifies). It is a mounted Secret: the exchange reloads
	// it when it changes, without a restart, so a rotation's cutover needs no rollout.
	SigningKeyFile string `json:"signingKeyFile,omitempty"`
	// Issuers are the provider issuers whose tokens are accepted (one per integration; a list
	// so that a migration between tenants can accept both).
	Issuers []Issuer `json:"issuers"`
	// Token shapes the minted InsForge token.
	Token Token `json:"token"`
	// CORS lets browser apps call the exchange.
	CORS CORS `json:"cors,omitzero"`
	// JWKS bounds key fetching.
	JWKS JWKS `json:"jwks,omitzero"`
	// ShutdownTimeout is how long in-flight requests may finish after SIGTERM.
	ShutdownTimeout Duration `json:"shutdownTimeout,omitzero"`
}

// Issuer is one provider issuer.
type Issuer struct {
	// Provider names the preset it came from (clerk, auth0, workos, kinde, stytch, betterAuth);
	// it labels metrics and picks provider-specific claim handling (none today beyond email).
	Provider string `json:"provider"`
	// Issuers are the accepted `iss` values (exact match; WorkOS has two forms).
	Issuers []string `json:"issuers"`
	// JWKSURL serves the provider's public keys.
	JWKSURL string `json:"jwksURL"`
	// Audiences: the token's `aud` must contain one of them. Empty: `aud` is not checked.
	Audiences []string `json:"audiences,omitempty"`
	// AuthorizedParties: the token's `azp`, when present, must be one of them (Clerk's advice).
	// Empty: not checked.
	AuthorizedParties []string `json:"authorizedParties,omitempty"`
	// Algorithms allowed in the token header. Never HS*, never none.
	Algorithms []string `json:"algorithms"`
	// Leeway is the clock skew allowed on exp, nbf and iat (at most MaxLeeway).
	Leeway Duration `json:"leeway,omitzero"`
	// EmailClaim is the claim copied into the minted token's `email` when it is a string
	// (empty: no email).
	EmailClaim string `json:"emailClaim,omitempty"`
}

// Token shapes the minted token: {sub, role: "authenticated", aud, iat, exp, email?}. The role is
// fixed here, never read from the incoming token.
type Token struct {
	// Lifetime of a minted token; it never outlives the incoming token. At most MaxLifetime.
	Lifetime Duration `json:"lifetime,omitzero"`
	// Audience is the minted `aud` (InsForge does not check it; its guides use insforge-api).
	Audience string `json:"audience,omitempty"`
	// Issuer is the minted `iss`, empty for none.
	Issuer string `json:"issuer,omitempty"`
}

// CORS is the browser access policy.
type CORS struct {
	// AllowedOrigins are exact origins (scheme://host[:port]); "*" allows any.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	// MaxAge of a preflight answer.
	MaxAge Duration `json:"maxAge,omitzero"`
}

// JWKS bounds key fetching: an unknown kid refetches at most once per MinRefreshInterval (so a
// flood of made-up kids costs one fetch per interval), keys are refreshed every RefreshInterval.
type JWKS struct {
	RefreshInterval    Duration `json:"refreshInterval,omitzero"`
	MinRefreshInterval Duration `json:"minRefreshInterval,omitzero"`
	FetchTimeout       Duration `json:"fetchTimeout,omitzero"`
}

// Duration is a time.Duration written in JSON as a Go duration string ("30s", "2m").
type Duration struct{ time.Duration }

// D returns a Duration.
func D(d time.Duration) Duration { return Duration{d} }

// IsZero lets omitzero drop unset durations.
func (d Duration) IsZero() bool { return d.Duration == 0 }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON implements json.Unmarshaler; it accepts a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Marshal renders the file deterministically (the controller hashes it for rollouts).
func (c Config) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rendering the exchange config: %w", err)
	}
	return append(b, '\n'), nil
}
