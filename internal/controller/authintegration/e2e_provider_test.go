package authintegration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
	"github.com/insforge/integrations-operator/internal/testutil/exchangerun"
	"github.com/insforge/integrations-operator/internal/testutil/insforgejwt"
	"github.com/insforge/integrations-operator/internal/testutil/oidcfake"
	excfg "github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

// providerCase is one provider as a user declares it, and the fake tenant that answers at the
// URLs the preset derives from that declaration (the fake serves TLS for any host name).
type providerCase struct {
	provider integrationsv1alpha1.AuthProvider
	declare  func(*integrationsv1alpha1.AuthIntegrationSpec)
	host     string
	tenant   oidcfake.TenantOptions
	aud      any
	alg      string
}

var providerCases = []providerCase{
	{integrationsv1alpha1.ProviderClerk, func(s *integrationsv1alpha1.AuthIntegrationSpec) {
		s.Clerk = &integrationsv1alpha1.ClerkSettings{FrontendAPI: "https://clerk.acme.dev"}
	}, "clerk.acme.dev", oidcfake.TenantOptions{}, nil, oidcfake.RS256},
	{integrationsv1alpha1.ProviderAuth0, func(s *integrationsv1alpha1.AuthIntegrationSpec) {
		s.Auth0 = &integrationsv1alpha1.Auth0Settings{Domain: "acme.us.auth0.com", Audience: "https://api.acme.dev"}
	}, "acme.us.auth0.com", oidcfake.TenantOptions{Issuer: "https://acme.us.auth0.com/"},
		[]string{"https://api.acme.dev", "https://acme.us.auth0.com/userinfo"}, oidcfake.RS256},
	{integrationsv1alpha1.ProviderWorkOS, func(s *integrationsv1alpha1.AuthIntegrationSpec) {
		s.WorkOS = &integrationsv1alpha1.WorkOSSettings{ClientID: "client_01ACME"}
	}, "api.workos.com", oidcfake.TenantOptions{Issuer: "https://api.workos.com/user_management/client_01ACME",
		JWKSPaths: []string{"/sso/jwks/client_01ACME"}}, nil, oidcfake.RS256},
	{integrationsv1alpha1.ProviderKinde, func(s *integrationsv1alpha1.AuthIntegrationSpec) {
		s.Kinde = &integrationsv1alpha1.KindeSettings{Domain: "acme.kinde.com"}
	}, "acme.kinde.com", oidcfake.TenantOptions{JWKSPaths: []string{"/.well-known/jwks"}}, []string{}, oidcfake.RS256},
	{integrationsv1alpha1.ProviderStytch, func(s *integrationsv1alpha1.AuthIntegrationSpec) {
		s.Stytch = &integrationsv1alpha1.StytchSettings{ProjectID: "project-test-0acme", Environment: "test"}
	}, "test.stytch.com", oidcfake.TenantOptions{Issuer: "stytch.com/project-test-0acme",
		JWKSPaths: []string{"/v1/sessions/jwks/project-test-0acme"}}, []string{"project-test-0acme"}, oidcfake.RS256},
	{integrationsv1alpha1.ProviderBetterAuth, func(s *integrationsv1alpha1.AuthIntegrationSpec) {
		s.BetterAuth = &integrationsv1alpha1.BetterAuthSettings{BaseURL: "https://app.acme.dev", BasePath: "/api/auth"}
	}, "app.acme.dev", oidcfake.TenantOptions{JWKSPaths: []string{"/api/auth/jwks"}, Algs: []string{oidcfake.EdDSA}},
		"https://app.acme.dev", oidcfake.EdDSA},
}

// exchangeToken trades a provider token at the exchange's /exchange endpoint.
func exchangeToken(t testing.TB, url, providerToken string) (string, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+excfg.PathExchange, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+providerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(body, &out)
	return out.AccessToken, resp.StatusCode
}

// TestEveryProviderFromTheResourceAlone: for each of the six providers, the resource names the
// tenant in one or two fields; the exchange the operator renders (its ConfigMap, run as its pod
// would run it, with the key from the signing Secret) takes the provider's own token, and the
// token it answers with passes InsForge's verification and reaches requesting_user_id() in
// PostgreSQL. The provider token claims project_admin; the InsForge token never does.
func TestEveryProviderFromTheResourceAlone(t *testing.T) {
	fake := oidcfake.New(t, oidcfake.Options{TLS: true})
	for _, pc := range providerCases {
		t.Run(string(pc.provider), func(t *testing.T) {
			f := newFixture(t)
			userTable(t, f.db, "todos")
			f.r.Exchange = ExchangeOptions{Image: testImage}
			tenant := fake.Tenant(pc.host, pc.tenant)
			ai := todos("app")
			ai.Spec.Provider = pc.provider
			pc.declare(&ai.Spec)
			ai.Spec.Exchange = &integrationsv1alpha1.TokenExchange{}
			f.Create(ai)
			f.reconcileOK("app")
			if c := f.Get("app"); c.Status.Exchange == nil {
				t.Fatalf("no exchange in status: %s", controllerReady(f))
			}

			var cm corev1.ConfigMap
			if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: exchangeName("app")}, &cm); err != nil {
				t.Fatal(err)
			}
			cfg, err := excfg.Parse([]byte(cm.Data[excfg.ConfigMapKey]))
			if err != nil {
				t.Fatalf("the rendered config does not load: %v", err)
			}
			key := string(f.getSecret(signingSecretName("app")).Data[excfg.SigningKeyName])
			x := exchangerun.Start(t, cfg, key, fake.Client())

			sub := "user_" + string(pc.provider) + "_1"
			claims := tenant.Claims(sub, oidcfake.Set("email", sub+"@acme.dev"), oidcfake.Set("role", "project_admin"),
				oidcfake.Set("aud", pc.aud))
			tok, status := exchangeToken(t, x.URL, tenant.Mint(claims, oidcfake.MintOptions{Alg: pc.alg}))
			if status != http.StatusOK {
				t.Fatalf("exchange answered %d", status)
			}
			jwt := string(f.getSecret("app-jwt").Data[jwtsecret.KeyCurrent])
			id, _, err := insforgejwt.Verify(tok, []byte(jwt), time.Now())
			if err != nil {
				t.Fatalf("InsForge refuses the exchanged token: %v", err)
			}
			if id.Sub != sub || id.Role != "authenticated" || id.Email != sub+"@acme.dev" {
				t.Fatalf("InsForge sees %+v", id)
			}
			if got := f.requestingUserID(id); got != sub {
				t.Fatalf("requesting_user_id() = %q, want %q", got, sub)
			}

			// Another tenant's token, or one for another audience, gets nothing.
			other := fake.Tenant("evil-"+pc.host, oidcfake.TenantOptions{Issuer: tenant.Issuer})
			if _, status := exchangeToken(t, x.URL, other.Mint(claims, oidcfake.MintOptions{Alg: pc.alg})); status == http.StatusOK {
				t.Error("a token signed by another issuer's key was exchanged")
			}
		})
	}
}

func controllerReady(f *fixture) string {
	ai := f.Get("app")
	var b strings.Builder
	for _, c := range ai.Status.Conditions {
		fmt.Fprintf(&b, "%s=%s %s: %s; ", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}
