// Package preset turns the few facts a user knows about their auth provider (a domain, a client
// or project id) into the exchange's verifier settings for that provider: accepted issuers, JWKS
// URL, audiences and algorithms. It is a pure function of its input; the controller calls it
// when it renders the exchange's config.
package preset

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

// Provider names, as config.Issuer.Provider carries them.
const (
	Clerk      = "clerk"
	Auth0      = "auth0"
	WorkOS     = "workos"
	Kinde      = "kinde"
	Stytch     = "stytch"
	BetterAuth = "betterAuth"
)

// Providers lists the provider names For knows.
var Providers = []string{Clerk, Auth0, WorkOS, Kinde, Stytch, BetterAuth}

// Stytch environments.
const (
	StytchTest = "test"
	StytchLive = "live"
)

// Fields are what each provider needs; For reads only the ones of the provider asked for.
type Fields struct {
	// ClerkFrontendAPI is the instance's Frontend API host or URL (clerk.example.com,
	// https://example.clerk.accounts.dev): it is the tokens' iss.
	ClerkFrontendAPI string
	// Auth0Domain is the tenant or custom domain (example.us.auth0.com); Auth0Audience the API
	// identifier access tokens are requested for (their aud).
	Auth0Domain, Auth0Audience string
	// WorkOSClientID is the client_… id.
	WorkOSClientID string
	// KindeDomain is the business domain (example.kinde.com or a custom domain).
	KindeDomain string
	// StytchProjectID is project-test-… or project-live-…; StytchEnvironment test or live
	// (derived from the project id when empty); StytchB2B selects the B2B session JWKS.
	StytchProjectID, StytchEnvironment string
	StytchB2B                          bool
	// BetterAuthBaseURL is the app's BASE_URL (the jwt() plugin's default iss and aud);
	// BetterAuthBasePath where Better Auth is mounted (default /api/auth).
	BetterAuthBaseURL, BetterAuthBasePath string
}

// DefaultBetterAuthBasePath is where Better Auth mounts its routes unless told otherwise.
const DefaultBetterAuthBasePath = "/api/auth"

// Hosts of the providers with fixed endpoints.
const (
	workOSAPI   = "https://api.workos.com"
	stytchTest  = "https://test.stytch.com"
	stytchLive  = "https://api.stytch.com"
	emailClaim  = "email"
	maxFieldLen = 512
)

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

// For returns the issuer settings of provider, with the default leeway, ready for
// config.Config.Issuers. A missing or malformed field is an error naming it.
func For(provider string, f Fields) (config.Issuer, error) {
	var (
		is  config.Issuer
		err error
	)
	switch provider {
	case Clerk:
		is, err = clerk(f)
	case Auth0:
		is, err = auth0(f)
	case WorkOS:
		is, err = workos(f)
	case Kinde:
		is, err = kinde(f)
	case Stytch:
		is, err = stytch(f)
	case BetterAuth:
		is, err = betterAuth(f)
	default:
		return config.Issuer{}, fmt.Errorf("provider %q is not one of %s", provider, strings.Join(Providers, ", "))
	}
	if err != nil {
		return config.Issuer{}, fmt.Errorf("%s: %w", provider, err)
	}
	is.Provider = provider
	is.EmailClaim = emailClaim
	is = is.WithDefaults()
	if err := is.Validate(); err != nil {
		return config.Issuer{}, fmt.Errorf("%s: %w", provider, err)
	}
	return is, nil
}

// Clerk session tokens: iss is the Frontend API URL, keys at its /.well-known/jwks.json. There
// is no aud by default; azp (the requesting origin) is checked when AuthorizedParties is set.
func clerk(f Fields) (config.Issuer, error) {
	base, err := origin("ClerkFrontendAPI", f.ClerkFrontendAPI)
	if err != nil {
		return config.Issuer{}, err
	}
	return config.Issuer{
		Issuers: []string{base}, JWKSURL: base + "/.well-known/jwks.json", Algorithms: []string{"RS256"},
	}, nil
}

// Auth0 access tokens: iss is https://{domain}/ with the trailing slash, aud the API identifier.
func auth0(f Fields) (config.Issuer, error) {
	base, err := origin("Auth0Domain", f.Auth0Domain)
	if err != nil {
		return config.Issuer{}, err
	}
	if err := required("Auth0Audience", f.Auth0Audience); err != nil {
		return config.Issuer{}, err
	}
	return config.Issuer{
		Issuers: []string{base + "/"}, JWKSURL: base + "/.well-known/jwks.json",
		Audiences: []string{f.Auth0Audience}, Algorithms: []string{"RS256"},
	}, nil
}

// WorkOS AuthKit access tokens: keys per client; the iss has been seen in both the
// user_management form and as the bare API origin, so all are accepted (each names WorkOS and
// the keys are the client's own).
func workos(f Fields) (config.Issuer, error) {
	if err := id("WorkOSClientID", f.WorkOSClientID); err != nil {
		return config.Issuer{}, err
	}
	return config.Issuer{
		Issuers:    []string{workOSAPI + "/user_management/" + f.WorkOSClientID, workOSAPI + "/", workOSAPI},
		JWKSURL:    workOSAPI + "/sso/jwks/" + f.WorkOSClientID,
		Algorithms: []string{"RS256"},
	}, nil
}

// Kinde: iss is https://{domain} without a trailing slash, keys at /.well-known/jwks.
func kinde(f Fields) (config.Issuer, error) {
	base, err := origin("KindeDomain", f.KindeDomain)
	if err != nil {
		return config.Issuer{}, err
	}
	return config.Issuer{Issuers: []string{base}, JWKSURL: base + "/.well-known/jwks", Algorithms: []string{"RS256"}}, nil
}

// Stytch session JWTs: iss is stytch.com/{project} (older tokens: the API base URI), aud the
// project id; keys per project on the environment's API host.
func stytch(f Fields) (config.Issuer, error) {
	if err := id("StytchProjectID", f.StytchProjectID); err != nil {
		return config.Issuer{}, err
	}
	env := f.StytchEnvironment
	implied := ""
	switch {
	case strings.HasPrefix(f.StytchProjectID, "project-test-"):
		implied = StytchTest
	case strings.HasPrefix(f.StytchProjectID, "project-live-"):
		implied = StytchLive
	}
	switch {
	case env == "" && implied == "":
		return config.Issuer{}, errors.New("StytchEnvironment: required (test or live) when the project id does not say")
	case env == "":
		env = implied
	case env != StytchTest && env != StytchLive:
		return config.Issuer{}, fmt.Errorf("StytchEnvironment: %q is not test or live", env)
	case implied != "" && env != implied:
		return config.Issuer{}, fmt.Errorf("StytchEnvironment: %q contradicts the project id, a %s project", env, implied)
	}
	base := stytchLive
	if env == StytchTest {
		base = stytchTest
	}
	path := "/v1/sessions/jwks/"
	if f.StytchB2B {
		path = "/v1/b2b/sessions/jwks/"
	}
	return config.Issuer{
		Issuers: []string{"stytch.com/" + f.StytchProjectID, base}, JWKSURL: base + path + f.StytchProjectID,
		Audiences: []string{f.StytchProjectID}, Algorithms: []string{"RS256"},
	}, nil
}

// Better Auth's jwt() plugin: iss and aud default to the BASE_URL, keys at {base}{basePath}/jwks;
// its key pair is EdDSA by default and may be ES256, RS256 or PS256.
func betterAuth(f Fields) (config.Issuer, error) {
	if err := required("BetterAuthBaseURL", f.BetterAuthBaseURL); err != nil {
		return config.Issuer{}, err
	}
	u, err := url.Parse(f.BetterAuthBaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || len(f.BetterAuthBaseURL) > maxFieldLen {
		return config.Issuer{}, fmt.Errorf("BetterAuthBaseURL: %q is not an absolute http(s) URL", f.BetterAuthBaseURL)
	}
	base := strings.TrimSuffix(f.BetterAuthBaseURL, "/")
	basePath := f.BetterAuthBasePath
	if basePath == "" {
		basePath = DefaultBetterAuthBasePath
	}
	if !strings.HasPrefix(basePath, "/") || strings.ContainsAny(basePath, "?#\\ ") || strings.Contains(basePath, "..") {
		return config.Issuer{}, fmt.Errorf("BetterAuthBasePath: %q must be an absolute path such as /api/auth", basePath)
	}
	// Better Auth copies BASE_URL as configured; accept it with and without a trailing slash.
	ids := []string{base, base + "/"}
	return config.Issuer{
		Issuers: ids, Audiences: ids, JWKSURL: base + strings.TrimSuffix(basePath, "/") + "/jwks",
		Algorithms: []string{"EdDSA", "ES256", "RS256", "PS256"},
	}, nil
}

func required(field, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s: required", field)
	case len(v) > maxFieldLen:
		return fmt.Errorf("%s: longer than %d bytes", field, maxFieldLen)
	case strings.TrimSpace(v) != v:
		return fmt.Errorf("%s: %q has leading or trailing white space", field, v)
	}
	return nil
}

// id accepts an identifier that is safe to put into a URL path.
func id(field, v string) error {
	if err := required(field, v); err != nil {
		return err
	}
	if !idRE.MatchString(v) {
		return fmt.Errorf("%s: %q is not an id of letters, digits, - and _", field, v)
	}
	return nil
}

// origin reads a host or an https origin (a trailing slash tolerated) and returns the https
// origin, lower case and without a trailing slash.
func origin(field, v string) (string, error) {
	if err := required(field, v); err != nil {
		return "", err
	}
	s := v
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || u.Port() != "" || strings.ContainsAny(u.Host, "_ ") {
		return "", fmt.Errorf("%s: %q is not a host name or https origin such as example.com", field, v)
	}
	return "https://" + strings.ToLower(u.Host), nil
}
