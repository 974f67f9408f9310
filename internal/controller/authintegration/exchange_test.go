package authintegration

import (
	"slices"
	"testing"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
)

func TestExchangeIssuerFollowsTheSpec(t *testing.T) {
	clerk := todos("c")
	clerk.Spec.Clerk = &integrationsv1alpha1.ClerkSettings{FrontendAPI: "https://clerk.acme.dev"}
	clerk.Spec.Exchange = &integrationsv1alpha1.TokenExchange{AllowedOrigins: []string{"https://app.acme.dev", "*"}}
	iss, err := exchangeIssuer(clerk)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(iss.AuthorizedParties, []string{"https://app.acme.dev"}) {
		t.Errorf("Clerk azp check %v, want the browser origins without *", iss.AuthorizedParties)
	}

	kinde := todos("k")
	kinde.Spec.Provider = integrationsv1alpha1.ProviderKinde
	kinde.Spec.Kinde = &integrationsv1alpha1.KindeSettings{Domain: "acme.kinde.com", Audience: "https://api.acme.dev"}
	kinde.Spec.Exchange = &integrationsv1alpha1.TokenExchange{Verification: &integrationsv1alpha1.TokenVerification{
		Algorithms: []string{"RS256", "ES256"}, EmailClaim: "em",
	}}
	iss, err = exchangeIssuer(kinde)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(iss.Audiences, []string{"https://api.acme.dev"}) || !slices.Equal(iss.Algorithms, []string{"RS256", "ES256"}) ||
		iss.EmailClaim != "em" || iss.JWKSURL != "https://acme.kinde.com/.well-known/jwks" {
		t.Errorf("Kinde issuer %+v", iss)
	}

	// An http key set URL outside the cluster would make the exchange exit: the operator stalls.
	bad := todos("b")
	bad.Spec.Provider = integrationsv1alpha1.ProviderBetterAuth
	bad.Spec.BetterAuth = &integrationsv1alpha1.BetterAuthSettings{BaseURL: "http://app.example.com"}
	bad.Spec.Exchange = &integrationsv1alpha1.TokenExchange{}
	_, err = exchangeConfig(bad)
	if st, ok := kit.AsStalled(err); !ok || st.Reason != integrationsv1alpha1.ReasonInvalidSpec {
		t.Fatalf("http key set URL outside the cluster: %v, want an InvalidSpec stall", err)
	}
	inCluster := bad.DeepCopy()
	inCluster.Spec.BetterAuth.BaseURL = "http://web.shop.svc:3000"
	if _, err := exchangeConfig(inCluster); err != nil {
		t.Fatalf("an in-cluster Better Auth app: %v", err)
	}
}
