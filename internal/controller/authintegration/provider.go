package authintegration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
)

// Kinds of provider objects the operator keeps (status.provider.kind).
const (
	kindClerkTemplate       = "ClerkJWTTemplate"
	kindAuth0ResourceServer = "Auth0ResourceServer"
	kindAuth0Action         = "Auth0Action"
)

// Keys of the provider credential Secrets.
const (
	keyClerkSecret       = "CLERK_SECRET_KEY"
	keyAuth0ClientID     = "AUTH0_CLIENT_ID"
	keyAuth0ClientSecret = "AUTH0_CLIENT_SECRET"
	defaultClerkAPIURL   = "https://api.clerk.com"
	// providerCallTimeout bounds one reconcile's calls to the provider.
	providerCallTimeout = 30 * time.Second
)

// providerSyncer keeps the provider's signing object (Clerk's JWT template, Auth0's API or
// Action) signing with the given key. last is what the operator wrote before; the result is what
// it holds now.
type providerSyncer interface {
	Sync(ctx context.Context, key []byte, last v1alpha1.ProviderSyncStatus) (v1alpha1.ProviderSyncStatus, syncAction, error)
	Delete(ctx context.Context, last v1alpha1.ProviderSyncStatus) error
}

// syncAction is what a sync did: "" when nothing, else a short description for the event.
type syncAction string

// providerSyncKind names the object the operator keeps in the provider, "" for none.
func providerSyncKind(ai *v1alpha1.AuthIntegration) string {
	switch s := ai.Spec; {
	case s.Provider == v1alpha1.ProviderClerk && s.Clerk != nil && s.Clerk.SecretKeyRef != nil:
		return kindClerkTemplate
	case s.Provider == v1alpha1.ProviderAuth0 && s.Auth0 != nil && s.Auth0.Management != nil:
		if s.Auth0.Management.Method == v1alpha1.Auth0Action {
			return kindAuth0Action
		}
		return kindAuth0ResourceServer
	}
	return ""
}

// providerURLs are the API URLs the operator sends provider credentials to, by field.
func providerURLs(ai *v1alpha1.AuthIntegration) map[string]string {
	switch providerSyncKind(ai) {
	case kindClerkTemplate:
		return map[string]string{"clerk.apiURL": clerkAPIURL(ai)}
	case kindAuth0ResourceServer, kindAuth0Action:
		return map[string]string{"auth0.management.apiURL": auth0APIURL(ai)}
	}
	return nil
}

func clerkAPIURL(ai *v1alpha1.AuthIntegration) string {
	if u := ai.Spec.Clerk.APIURL; u != "" {
		return u
	}
	return defaultClerkAPIURL
}

func auth0APIURL(ai *v1alpha1.AuthIntegration) string {
	if u := ai.Spec.Auth0.Management.APIURL; u != "" {
		return u
	}
	return "https://" + ai.Spec.Auth0.Domain
}

// providerCredentials reads the provider API credentials the spec references. The values are
// secrets: they go to the provider's API and nowhere else.
func (r *Reconciler) providerCredentials(ctx context.Context, ai *v1alpha1.AuthIntegration) (map[string]string, error) {
	var name, field string
	var keys []string
	switch providerSyncKind(ai) {
	case kindClerkTemplate:
		ref := ai.Spec.Clerk.SecretKeyRef
		name, field, keys = ref.Name, "clerk.secretKeyRef", []string{ref.KeyOrDefault(keyClerkSecret)}
	case kindAuth0ResourceServer, kindAuth0Action:
		name, field = ai.Spec.Auth0.Management.CredentialsSecretRef.Name, "auth0.management.credentialsSecretRef"
		keys = []string{keyAuth0ClientID, keyAuth0ClientSecret}
	default:
		return nil, nil
	}
	sec, err := r.secrets().Get(ctx, types.NamespacedName{Namespace: ai.Namespace, Name: name}, kit.UseReference)
	switch {
	case apierrors.IsNotFound(err):
		return nil, kit.Stall(v1alpha1.ReasonSecretNotFound, "Secret %s (%s) not found in namespace %s", name, field, ai.Namespace)
	case errors.Is(err, kit.ErrSecretNotOptedIn):
		return nil, kit.Stall(v1alpha1.ReasonSecretNotOptedIn, "%s", kit.NotOptedInMessage(fmt.Sprintf("Secret %s (%s)", name, field)))
	case err != nil:
		return nil, fmt.Errorf("reading Secret %s (%s): %w", name, field, err)
	}
	out := make(map[string]string, len(keys))
	for i, k := range keys {
		v := string(sec.Data[k])
		if v == "" {
			return nil, kit.Stall(v1alpha1.ReasonSecretKeyMissing, "Secret %s (%s) has no key %s", name, field, k)
		}
		// The first key is the one a selector names; callers read it as "".
		if i == 0 {
			out[""] = v
		}
		out[k] = v
	}
	return out, nil
}

// httpClient is the client for provider APIs.
func (r *Reconciler) httpClient() *http.Client {
	if r.HTTP != nil {
		return r.HTTP
	}
	return &http.Client{
		Timeout:       providerCallTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
