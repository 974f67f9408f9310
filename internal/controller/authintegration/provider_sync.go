package authintegration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/providerapi"
	"github.com/insforge/integrations-operator/internal/providerapi/auth0"
	"github.com/insforge/integrations-operator/internal/providerapi/clerk"
)

// auth0BuildWait bounds how long one reconcile waits for Auth0 to build an Action; a longer
// build is looked at again by the next reconcile.
const auth0BuildWait = 20 * time.Second

// sideError is a retryable provider-side failure with the reason status shows.
type sideError struct {
	reason string
	err    error
}

func (e *sideError) Error() string { return e.err.Error() }
func (e *sideError) Unwrap() error { return e.err }

// providerError turns a provider API failure into a stall (credentials refused, scope or plan
// missing: only the user can fix them) or a retry with the reason status shows.
func providerError(provider string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, providerapi.ErrUnauthorized), errors.Is(err, providerapi.ErrPlanRequired):
		return kit.Stall(v1alpha1.ReasonProviderRejected, "%s: %v", provider, err)
	case errors.Is(err, providerapi.ErrRateLimited):
		return &sideError{reason: v1alpha1.ReasonProviderRateLimited, err: fmt.Errorf("%s: %w", provider, err)}
	}
	var api *providerapi.APIError
	if errors.As(err, &api) && api.Status >= 400 && api.Status < 500 && api.Status != 404 && api.Status != 409 {
		return kit.Stall(v1alpha1.ReasonProviderRejected, "%s: %v", provider, err)
	}
	return &sideError{reason: v1alpha1.ReasonProviderUnavailable, err: fmt.Errorf("%s: %w", provider, err)}
}

// syncAction describes what a sync did, "" when nothing.
func describe(a providerapi.Action) syncAction {
	if a.Op == providerapi.OpUnchanged || a.Op == "" {
		return ""
	}
	if a.Reason == "" {
		return syncAction(a.Op)
	}
	return syncAction(string(a.Op) + ": " + a.Reason)
}

// auth0Clients keeps one Management API client per integration and credentials, so that its
// access token is reused across reconciles instead of fetched each time (Auth0 rate-limits
// token requests).
type auth0Clients struct {
	mu      sync.Mutex
	clients map[string]*auth0.Client
}

func (c *auth0Clients) get(key string, make func() *auth0.Client) *auth0.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[key]; ok {
		return cl
	}
	if c.clients == nil {
		c.clients = map[string]*auth0.Client{}
	}
	cl := make()
	c.clients[key] = cl
	return cl
}

// newSyncer builds the syncer of the integration's provider object from its credentials.
func (r *Reconciler) newSyncer(ai *v1alpha1.AuthIntegration, creds map[string]string) providerSyncer {
	switch kind := providerSyncKind(ai); kind {
	case kindClerkTemplate:
		t := ai.Spec.Clerk.Template
		lifetime := int64(60)
		if t.Lifetime != nil {
			lifetime = int64(t.Lifetime.Seconds())
		}
		name := t.Name
		if name == "" {
			name = "insforge"
		}
		return &clerkSyncer{
			client: &clerk.Client{BaseURL: clerkAPIURL(ai), SecretKey: creds[""], HTTP: r.httpClient()},
			want:   clerk.DesiredTemplate(name, lifetime, 5, t.IncludeEmail),
		}
	case kindAuth0ResourceServer, kindAuth0Action:
		m := ai.Spec.Auth0.Management
		id, secret := creds[keyAuth0ClientID], creds[keyAuth0ClientSecret]
		cacheKey := objectKey(ai).String() + "\x00" + auth0APIURL(ai) + "\x00" + providerapi.Fingerprint([]byte(id+"\x00"+secret))
		client := r.auth0.get(cacheKey, func() *auth0.Client {
			return &auth0.Client{Domain: ai.Spec.Auth0.Domain, ClientID: id, ClientSecret: secret, BaseURL: m.APIURL,
				HTTP: r.httpClient(), BuildTimeout: auth0BuildWait}
		})
		lifetime := 3600
		if m.TokenLifetime != nil {
			lifetime = int(m.TokenLifetime.Seconds())
		}
		identifier := m.Identifier
		if identifier == "" {
			identifier = auth0.DefaultAudience
		}
		s := &auth0Syncer{client: client, kind: kind,
			server: auth0.ResourceServer{Identifier: identifier, Name: "InsForge (" + objectKey(ai).String() + ")", TokenLifetime: lifetime},
			action: auth0.Action{Audience: identifier, LifetimeSeconds: lifetime}}
		return s
	}
	return nil
}

// clerkSyncer keeps Clerk's JWT template.
type clerkSyncer struct {
	client *clerk.Client
	want   clerk.Template
}

func (s *clerkSyncer) Sync(ctx context.Context, key []byte, last v1alpha1.ProviderSyncStatus) (v1alpha1.ProviderSyncStatus, syncAction, error) {
	updated, _ := strconv.ParseInt(last.ObservedVersion, 10, 64)
	rec, act, err := s.client.Sync(ctx, s.want, key,
		clerk.Record{TemplateID: last.ID, UpdatedAt: updated, KeyFingerprint: last.KeyFingerprint, SpecHash: last.SpecHash})
	if err != nil {
		return last, "", providerError("Clerk", err)
	}
	return v1alpha1.ProviderSyncStatus{Kind: kindClerkTemplate, ID: rec.TemplateID, Name: s.want.Name,
		KeyFingerprint: rec.KeyFingerprint, SpecHash: rec.SpecHash, ObservedVersion: strconv.FormatInt(rec.UpdatedAt, 10)}, describe(act), nil
}

func (s *clerkSyncer) Delete(ctx context.Context, last v1alpha1.ProviderSyncStatus) error {
	updated, _ := strconv.ParseInt(last.ObservedVersion, 10, 64)
	return providerError("Clerk", s.client.Delete(ctx, clerk.Record{TemplateID: last.ID, UpdatedAt: updated,
		KeyFingerprint: last.KeyFingerprint, SpecHash: last.SpecHash}))
}

// auth0Syncer keeps Auth0's API (resource server) or post-login Action.
type auth0Syncer struct {
	client *auth0.Client
	kind   string
	server auth0.ResourceServer
	action auth0.Action
}

func (s *auth0Syncer) Sync(ctx context.Context, key []byte, last v1alpha1.ProviderSyncStatus) (v1alpha1.ProviderSyncStatus, syncAction, error) {
	prev := auth0.Record{ID: last.ID, KeyFingerprint: last.KeyFingerprint, SpecHash: last.SpecHash, DeployedVersion: last.ObservedVersion}
	var (
		rec  auth0.Record
		act  providerapi.Action
		err  error
		name string
	)
	if s.kind == kindAuth0Action {
		name = auth0.DefaultActionName
		rec, act, err = s.client.SyncAction(ctx, s.action, key, prev)
	} else {
		name = s.server.Identifier
		rec, act, err = s.client.SyncResourceServer(ctx, s.server, key, prev)
	}
	if err != nil {
		return last, "", providerError("Auth0", err)
	}
	return v1alpha1.ProviderSyncStatus{Kind: s.kind, ID: rec.ID, Name: name, KeyFingerprint: rec.KeyFingerprint,
		SpecHash: rec.SpecHash, ObservedVersion: rec.DeployedVersion}, describe(act), nil
}

func (s *auth0Syncer) Delete(ctx context.Context, last v1alpha1.ProviderSyncStatus) error {
	rec := auth0.Record{ID: last.ID, KeyFingerprint: last.KeyFingerprint, SpecHash: last.SpecHash, DeployedVersion: last.ObservedVersion}
	if s.kind == kindAuth0Action {
		return providerError("Auth0", s.client.DeleteAction(ctx, rec))
	}
	return providerError("Auth0", s.client.DeleteResourceServer(ctx, rec))
}
