package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Algorithms are the JWS algorithms an issuer may allow. HMAC algorithms are absent on purpose:
// a provider's public key must never serve as an HMAC secret (algorithm confusion), and the
// exchange has no provider secrets. "none" is never accepted.
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}

// Bounds checked by Validate beyond MaxLifetime and MaxLeeway.
const (
	MinJWKSRefreshInterval = time.Second
	MaxJWKSRefreshInterval = 24 * time.Hour
	MaxJWKSFetchTimeout    = time.Minute
	MaxCORSMaxAge          = 24 * time.Hour
	MaxShutdownTimeout     = 10 * time.Minute
	// MaxClaimValueBytes bounds the configured issuer, audience, party and claim strings.
	MaxClaimValueBytes = 1024
)

var providerRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,31}$`)

// Validate checks the configuration (defaults applied: call WithDefaults first). It reports
// every problem at once, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if err := checkListen(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	if err := checkListen(c.AdminListen); err != nil {
		bad("adminListen", "%v", err)
	}
	if c.Listen != "" && c.Listen == c.AdminListen && !strings.HasSuffix(c.Listen, ":0") { // :0 picks two ports
		bad("adminListen", "%q is also listen; the admin endpoints need their own address", c.AdminListen)
	}
	if !filepath.IsAbs(c.SigningKeyFile) {
		bad("signingKeyFile", "%q must be an absolute path", c.SigningKeyFile)
	}
	if len(c.Issuers) == 0 {
		bad("issuers", "at least one issuer is required")
	}
	owner := map[string]int{} // accepted iss -> index of its issuer
	for i, is := range c.Issuers {
		field := fmt.Sprintf("issuers[%d]", i)
		for _, err := range is.validate() {
			errs = append(errs, fmt.Errorf("%s.%w", field, err))
		}
		for _, iss := range is.Issuers {
			if j, dup := owner[iss]; dup && j != i {
				bad(field+".issuers", "%q is also accepted by issuers[%d]; a token's iss must pick one issuer", iss, j)
			}
			owner[iss] = i
		}
	}
	switch l := c.Token.Lifetime.Duration; {
	case l < time.Second:
		bad("token.lifetime", "%s must be at least 1s", l)
	case l > MaxLifetime:
		bad("token.lifetime", "%s exceeds the maximum of %s", l, MaxLifetime)
	}
	if c.Token.Audience == "" || len(c.Token.Audience) > MaxClaimValueBytes {
		bad("token.audience", "must be set and at most %d bytes", MaxClaimValueBytes)
	}
	if len(c.Token.Issuer) > MaxClaimValueBytes {
		bad("token.issuer", "must be at most %d bytes", MaxClaimValueBytes)
	}
	for i, o := range c.CORS.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			bad(fmt.Sprintf("cors.allowedOrigins[%d]", i), "%v", err)
		}
	}
	if a := c.CORS.MaxAge.Duration; a < 0 || a > MaxCORSMaxAge {
		bad("cors.maxAge", "%s is outside 0..%s", a, MaxCORSMaxAge)
	}
	j := c.JWKS
	if d := j.MinRefreshInterval.Duration; d < MinJWKSRefreshInterval || d > MaxJWKSRefreshInterval {
		bad("jwks.minRefreshInterval", "%s is outside %s..%s", d, MinJWKSRefreshInterval, MaxJWKSRefreshInterval)
	}
	if d := j.RefreshInterval.Duration; d < j.MinRefreshInterval.Duration || d > MaxJWKSRefreshInterval {
		bad("jwks.refreshInterval", "%s is outside minRefreshInterval (%s)..%s", d, j.MinRefreshInterval.Duration, MaxJWKSRefreshInterval)
	}
	if d := j.FetchTimeout.Duration; d <= 0 || d > MaxJWKSFetchTimeout {
		bad("jwks.fetchTimeout", "%s is outside (0, %s]", d, MaxJWKSFetchTimeout)
	}
	if d := c.ShutdownTimeout.Duration; d <= 0 || d > MaxShutdownTimeout {
		bad("shutdownTimeout", "%s is outside (0, %s]", d, MaxShutdownTimeout)
	}
	if len(errs) > 0 {
		return fmt.Errorf("exchange config is invalid:\n%w", errors.Join(errs...))
	}
	return nil
}

// Validate checks one issuer on its own (defaults applied), as a preset produces it. The error
// names the field.
func (i Issuer) Validate() error {
	return errors.Join(i.validate()...)
}

func (i Issuer) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !providerRE.MatchString(i.Provider) {
		bad("provider", "%q must be a name of letters, digits, - and _ (at most 32), such as clerk", i.Provider)
	}
	if len(i.Issuers) == 0 {
		bad("issuers", "at least one accepted iss is required")
	}
	for k, iss := range i.Issuers {
		if err := checkClaimValue(iss); err != nil {
			bad(fmt.Sprintf("issuers[%d]", k), "%v", err)
		}
	}
	if err := CheckJWKSURL(i.JWKSURL); err != nil {
		bad("jwksURL", "%v", err)
	}
	for k, a := range i.Audiences {
		if err := checkClaimValue(a); err != nil {
			bad(fmt.Sprintf("audiences[%d]", k), "%v", err)
		}
	}
	for k, p := range i.AuthorizedParties {
		if err := checkClaimValue(p); err != nil {
			bad(fmt.Sprintf("authorizedParties[%d]", k), "%v", err)
		}
	}
	if len(i.Algorithms) == 0 {
		bad("algorithms", "at least one algorithm is required, e.g. RS256")
	}
	for k, a := range i.Algorithms {
		field := fmt.Sprintf("algorithms[%d]", k)
		switch {
		case strings.EqualFold(a, "none"):
			bad(field, `"none" is never accepted: tokens must be signed`)
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			bad(field, "%q is refused: HMAC would need the provider's secret, and a public key used as one lets anybody forge tokens", a)
		case !slices.Contains(Algorithms, a):
			bad(field, "%q is not one of %s", a, strings.Join(Algorithms, ", "))
		}
	}
	if l := i.Leeway.Duration; l < 0 || l > MaxLeeway {
		bad("leeway", "%s is outside 0..%s", l, MaxLeeway)
	}
	if len(i.EmailClaim) > 256 {
		bad("emailClaim", "must be at most 256 bytes")
	}
	return errs
}

func checkClaimValue(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > MaxClaimValueBytes:
		return fmt.Errorf("must be at most %d bytes", MaxClaimValueBytes)
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%q has leading or trailing white space; claims are matched exactly", s)
	}
	return nil
}

// CheckJWKSURL accepts an absolute https URL. Plain http is accepted only for loopback and
// in-cluster service hosts (*.svc, *.svc.cluster.local): keys fetched over an open network without
// TLS could be replaced by anybody on the path, who could then mint any user.
func CheckJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute https URL", s)
	}
	if u.User != nil {
		return errors.New("must not carry user information")
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q must not have a fragment", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if localHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q must use https (plain http only for loopback or in-cluster *.svc hosts)", s)
	}
	return fmt.Errorf("%q is not an absolute https URL", s)
}

func localHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.IsLoopback()
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	return h == "localhost" || strings.HasSuffix(h, ".svc") || strings.HasSuffix(h, ".svc.cluster.local")
}

// checkOrigin accepts "*" or a browser origin as browsers send it: scheme://host[:port], lower
// case, nothing after the host.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an origin such as https://app.example.com", o)
	}
	if u.Scheme+"://"+u.Host != o {
		return fmt.Errorf("%q is not an origin: no path, query, trailing slash or user information", o)
	}
	if strings.ToLower(o) != o {
		return fmt.Errorf("%q must be lower case, as browsers send it", o)
	}
	return nil
}

func checkListen(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has no valid port", a)
	}
	return nil
}
