package preset

import (
	"reflect"
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

func TestFor(t *testing.T) {
	cases := []struct {
		name     string
		provider string
		f        Fields
		want     config.Issuer
	}{
		{"clerk host", Clerk, Fields{ClerkFrontendAPI: "clerk.acme.dev"}, config.Issuer{
			Issuers: []string{"https://clerk.acme.dev"}, JWKSURL: "https://clerk.acme.dev/.well-known/jwks.json",
			Algorithms: []string{"RS256"},
		}},
		{"clerk url with slash", Clerk, Fields{ClerkFrontendAPI: "https://Happy-Cat-1.clerk.accounts.dev/"}, config.Issuer{
			Issuers: []string{"https://happy-cat-1.clerk.accounts.dev"}, JWKSURL: "https://happy-cat-1.clerk.accounts.dev/.well-known/jwks.json",
			Algorithms: []string{"RS256"},
		}},
		{"auth0", Auth0, Fields{Auth0Domain: "acme.us.auth0.com", Auth0Audience: "https://api.acme.dev"}, config.Issuer{
			Issuers: []string{"https://acme.us.auth0.com/"}, JWKSURL: "https://acme.us.auth0.com/.well-known/jwks.json",
			Audiences: []string{"https://api.acme.dev"}, Algorithms: []string{"RS256"},
		}},
		{"workos", WorkOS, Fields{WorkOSClientID: "client_01HX"}, config.Issuer{
			Issuers:    []string{"https://api.workos.com/user_management/client_01HX", "https://api.workos.com/", "https://api.workos.com"},
			JWKSURL:    "https://api.workos.com/sso/jwks/client_01HX",
			Algorithms: []string{"RS256"},
		}},
		{"kinde", Kinde, Fields{KindeDomain: "https://acme.kinde.com"}, config.Issuer{
			Issuers: []string{"https://acme.kinde.com"}, JWKSURL: "https://acme.kinde.com/.well-known/jwks", Algorithms: []string{"RS256"},
		}},
		{"stytch test", Stytch, Fields{StytchProjectID: "project-test-1234"}, config.Issuer{
			Issuers: []string{"stytch.com/project-test-1234", "https://test.stytch.com"},
			JWKSURL: "https://test.stytch.com/v1/sessions/jwks/project-test-1234", Audiences: []string{"project-test-1234"},
			Algorithms: []string{"RS256"},
		}},
		{"stytch live b2b", Stytch, Fields{StytchProjectID: "project-live-9", StytchEnvironment: "live", StytchB2B: true}, config.Issuer{
			Issuers: []string{"stytch.com/project-live-9", "https://api.stytch.com"},
			JWKSURL: "https://api.stytch.com/v1/b2b/sessions/jwks/project-live-9", Audiences: []string{"project-live-9"},
			Algorithms: []string{"RS256"},
		}},
		{"stytch explicit environment", Stytch, Fields{StytchProjectID: "custom", StytchEnvironment: "test"}, config.Issuer{
			Issuers: []string{"stytch.com/custom", "https://test.stytch.com"},
			JWKSURL: "https://test.stytch.com/v1/sessions/jwks/custom", Audiences: []string{"custom"}, Algorithms: []string{"RS256"},
		}},
		{"better auth", BetterAuth, Fields{BetterAuthBaseURL: "https://app.acme.dev"}, config.Issuer{
			Issuers: []string{"https://app.acme.dev", "https://app.acme.dev/"}, Audiences: []string{"https://app.acme.dev", "https://app.acme.dev/"},
			JWKSURL: "https://app.acme.dev/api/auth/jwks", Algorithms: []string{"EdDSA", "ES256", "RS256", "PS256"},
		}},
		{"better auth base path", BetterAuth, Fields{BetterAuthBaseURL: "https://app.acme.dev/", BetterAuthBasePath: "/auth/"}, config.Issuer{
			Issuers: []string{"https://app.acme.dev", "https://app.acme.dev/"}, Audiences: []string{"https://app.acme.dev", "https://app.acme.dev/"},
			JWKSURL: "https://app.acme.dev/auth/jwks", Algorithms: []string{"EdDSA", "ES256", "RS256", "PS256"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := For(tc.provider, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.Provider, want.EmailClaim, want.Leeway = tc.provider, "email", config.D(config.DefaultLeeway)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("For(%s)\n got %+v\nwant %+v", tc.provider, got, want)
			}
		})
	}
}

func TestForRefusesMissingAndBadFields(t *testing.T) {
	cases := []struct {
		provider string
		f        Fields
		want     string
	}{
		{Clerk, Fields{}, "ClerkFrontendAPI: required"},
		{Clerk, Fields{ClerkFrontendAPI: "http://clerk.acme.dev"}, "ClerkFrontendAPI"},
		{Clerk, Fields{ClerkFrontendAPI: "clerk.acme.dev/path"}, "ClerkFrontendAPI"},
		{Auth0, Fields{Auth0Audience: "x"}, "Auth0Domain: required"},
		{Auth0, Fields{Auth0Domain: "acme.auth0.com"}, "Auth0Audience: required"},
		{WorkOS, Fields{}, "WorkOSClientID: required"},
		{WorkOS, Fields{WorkOSClientID: "client/../x"}, "WorkOSClientID"},
		{Kinde, Fields{}, "KindeDomain: required"},
		{Stytch, Fields{}, "StytchProjectID: required"},
		{Stytch, Fields{StytchProjectID: "custom"}, "StytchEnvironment: required"},
		{Stytch, Fields{StytchProjectID: "project-test-1", StytchEnvironment: "live"}, "contradicts"},
		{Stytch, Fields{StytchProjectID: "p", StytchEnvironment: "prod"}, "not test or live"},
		{BetterAuth, Fields{}, "BetterAuthBaseURL: required"},
		{BetterAuth, Fields{BetterAuthBaseURL: "app.acme.dev"}, "BetterAuthBaseURL"},
		// Plain http outside the cluster: the key set could be swapped on the way.
		{BetterAuth, Fields{BetterAuthBaseURL: "http://app.acme.dev"}, "https"},
		{BetterAuth, Fields{BetterAuthBaseURL: "https://app.acme.dev", BetterAuthBasePath: "api"}, "BetterAuthBasePath"},
		{"okta", Fields{}, "is not one of"},
	}
	for _, tc := range cases {
		_, err := For(tc.provider, tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("For(%s, %+v) = %v; want an error containing %q", tc.provider, tc.f, err, tc.want)
		}
	}
}

// Every preset is a valid issuer of a config, and presets of different providers can be used
// side by side.
func TestPresetsMakeAValidConfig(t *testing.T) {
	f := Fields{
		ClerkFrontendAPI: "clerk.acme.dev", Auth0Domain: "acme.auth0.com", Auth0Audience: "api", WorkOSClientID: "client_1",
		KindeDomain: "acme.kinde.com", StytchProjectID: "project-live-1", BetterAuthBaseURL: "http://localhost:3000",
	}
	var c config.Config
	for _, p := range Providers {
		is, err := For(p, f)
		if err != nil {
			t.Fatal(err)
		}
		c.Issuers = append(c.Issuers, is)
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
