package auth0

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/insforge/integrations-operator/internal/providerapi"
)

// Resource-server defaults.
const (
	// DefaultIdentifier is the API identifier (the token audience) InsForge's guides use.
	DefaultIdentifier = "insforge-api"
	// DefaultResourceServerName is the API's display name.
	DefaultResourceServerName = "InsForge"
	// DefaultTokenLifetime is one hour, the lifetime of the guides' tokens (seconds).
	DefaultTokenLifetime = 3600
	// MinKeyLength is the shortest signing_secret Auth0 accepts.
	MinKeyLength = 16
	// signingAlg is the only algorithm InsForge verifies with JWT_SECRET.
	signingAlg = "HS256"
)

// Management API scopes the calls need.
const (
	ScopeReadResourceServers   = "read:resource_servers"
	ScopeCreateResourceServers = "create:resource_servers"
	ScopeUpdateResourceServers = "update:resource_servers"
	ScopeDeleteResourceServers = "delete:resource_servers"
	ScopeReadActions           = "read:actions"
	ScopeCreateActions         = "create:actions" // also deploys
	ScopeUpdateActions         = "update:actions" // also sets bindings
	ScopeDeleteActions         = "delete:actions"
)

// Record is what the operator last wrote, kept in the resource's status. It holds no secret: the
// key is known only by its fingerprint.
type Record struct {
	ID             string
	KeyFingerprint string
	SpecHash       string
	// DeployedVersion is the Action version the operator last deployed (Actions only).
	DeployedVersion string
}

// ResourceServer is the desired Auth0 API.
type ResourceServer struct {
	// Identifier is the audience; immutable once created ("" means DefaultIdentifier).
	Identifier string
	Name       string // "" means DefaultResourceServerName
	// TokenLifetime in seconds (0 means DefaultTokenLifetime).
	TokenLifetime int
}

func (rs ResourceServer) withDefaults() ResourceServer {
	if rs.Identifier == "" {
		rs.Identifier = DefaultIdentifier
	}
	if rs.Name == "" {
		rs.Name = DefaultResourceServerName
	}
	if rs.TokenLifetime == 0 {
		rs.TokenLifetime = DefaultTokenLifetime
	}
	return rs
}

// apiResourceServer is Auth0's ResourceServer object, the fields read.
type apiResourceServer struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Identifier    string `json:"identifier"`
	SigningAlg    string `json:"signing_alg"`
	SigningSecret string `json:"signing_secret"`
	TokenLifetime int    `json:"token_lifetime"`
	IsSystem      bool   `json:"is_system"`
}

type createResourceServer struct {
	Identifier         string `json:"identifier"`
	Name               string `json:"name"`
	SigningAlg         string `json:"signing_alg"`
	SigningSecret      string `json:"signing_secret"`
	TokenLifetime      int    `json:"token_lifetime"`
	AllowOfflineAccess bool   `json:"allow_offline_access"`
}

// updateResourceServer has no identifier: it is immutable and Auth0 refuses it on PATCH.
type updateResourceServer struct {
	Name          string `json:"name"`
	SigningAlg    string `json:"signing_alg"`
	SigningSecret string `json:"signing_secret"`
	TokenLifetime int    `json:"token_lifetime"`
}

const resourceServersPath = "/resource-servers"

func checkKey(key []byte) error {
	if len(key) < MinKeyLength {
		return fmt.Errorf("auth0: the signing key has %d bytes; Auth0 needs at least %d", len(key), MinKeyLength)
	}
	return nil
}

// SyncResourceServer makes the API with want's identifier sign HS256 with key. It is the default
// way to wire Auth0 (see the package doc: no code, no dependency, no role to forge). last is the Record
// of the previous sync (zero for none). An API with the identifier that the operator did not
// create is adopted (its signing secret is overwritten), as for Clerk templates: the guides have
// users create it by hand. When the identifier changed, the API recorded in last (the operator's)
// is deleted once the new one is in place, so no unused API keeps signing with JWT_SECRET.
func (c *Client) SyncResourceServer(ctx context.Context, want ResourceServer, key []byte, last Record) (Record, providerapi.Action, error) {
	want = want.withDefaults()
	if err := checkKey(key); err != nil {
		return Record{}, providerapi.Action{}, err
	}
	if want.TokenLifetime < 0 {
		return Record{}, providerapi.Action{}, fmt.Errorf("auth0: token lifetime %d is negative", want.TokenLifetime)
	}
	fp := providerapi.Fingerprint(key)
	spec := providerapi.SpecHash(want)
	var stale string // the operator's API under an old identifier
	var cur *apiResourceServer
	if last.ID != "" {
		rs, err := c.getResourceServer(ctx, last.ID)
		if err != nil {
			return Record{}, providerapi.Action{}, err
		}
		if rs != nil && rs.Identifier != want.Identifier {
			stale, rs = rs.ID, nil
		}
		cur = rs
	}
	if cur == nil {
		// Auth0 reads a resource server by id or by identifier.
		rs, err := c.getResourceServer(ctx, want.Identifier)
		if err != nil {
			return Record{}, providerapi.Action{}, err
		}
		cur = rs
	}
	if cur != nil && cur.IsSystem {
		return Record{}, providerapi.Action{}, fmt.Errorf("auth0: %q is a system API (the Management API); choose another identifier", want.Identifier)
	}
	var rec Record
	var act providerapi.Action
	if cur == nil {
		var created apiResourceServer
		body := createResourceServer{Identifier: want.Identifier, Name: want.Name, SigningAlg: signingAlg,
			SigningSecret: string(key), TokenLifetime: want.TokenLifetime}
		if err := c.call(ctx, http.MethodPost, resourceServersPath, nil, ScopeCreateResourceServers, body, &created, string(key)); err != nil {
			return Record{}, providerapi.Action{}, fmt.Errorf("creating the Auth0 API %s: %w", want.Identifier, err)
		}
		rec = Record{ID: created.ID, KeyFingerprint: fp, SpecHash: spec}
		act = providerapi.Action{Op: providerapi.OpCreated, Reason: fmt.Sprintf("the Auth0 API %s did not exist", want.Identifier)}
	} else {
		rec = Record{ID: cur.ID, KeyFingerprint: fp, SpecHash: spec}
		reasons := resourceServerDifferences(*cur, want, key, fp, last)
		if len(reasons) == 0 {
			act = providerapi.Action{Op: providerapi.OpUnchanged, Reason: "the Auth0 API is as desired"}
		} else {
			body := updateResourceServer{Name: want.Name, SigningAlg: signingAlg, SigningSecret: string(key), TokenLifetime: want.TokenLifetime}
			if err := c.call(ctx, http.MethodPatch, resourceServersPath+"/"+url.PathEscape(cur.ID), nil, ScopeUpdateResourceServers, body, nil, string(key)); err != nil {
				return Record{}, providerapi.Action{}, fmt.Errorf("updating the Auth0 API %s: %w", want.Identifier, err)
			}
			act = providerapi.Action{Op: providerapi.OpUpdated, Reason: providerapi.JoinReasons(reasons)}
		}
	}
	if stale != "" {
		if err := c.DeleteResourceServer(ctx, Record{ID: stale}); err != nil {
			return Record{}, providerapi.Action{}, fmt.Errorf("deleting the Auth0 API of the previous identifier: %w", err)
		}
		act.Op = providerapi.OpUpdated
		act.Reason = providerapi.JoinReasons([]string{act.Reason, "deleted the API of the previous identifier"})
	}
	return rec, act, nil
}

func resourceServerDifferences(cur apiResourceServer, want ResourceServer, key []byte, fp string, last Record) []string {
	var r []string
	switch {
	case last.ID == "":
		r = append(r, "adopted an existing API the operator did not create")
	case last.ID != cur.ID:
		r = append(r, "the API was replaced outside the operator")
	case last.KeyFingerprint == "":
		r = append(r, "no record of the operator's last write")
	case last.KeyFingerprint != fp:
		r = append(r, "signing key rotated")
	}
	if cur.Name != want.Name {
		r = append(r, "name differs")
	}
	if cur.SigningAlg != signingAlg {
		r = append(r, "signing algorithm is not HS256")
	}
	if cur.TokenLifetime != want.TokenLifetime {
		r = append(r, "token lifetime differs")
	}
	// Where the tenant does return the secret, a change made outside the operator shows.
	if cur.SigningSecret != "" && subtle.ConstantTimeCompare([]byte(cur.SigningSecret), key) != 1 {
		r = append(r, "signing secret changed outside the operator")
	}
	return r
}

// getResourceServer reads a resource server by id or identifier; nil when there is none.
func (c *Client) getResourceServer(ctx context.Context, idOrIdentifier string) (*apiResourceServer, error) {
	var rs apiResourceServer
	err := c.call(ctx, http.MethodGet, resourceServersPath+"/"+url.PathEscape(idOrIdentifier), nil, ScopeReadResourceServers, nil, &rs)
	switch {
	case errors.Is(err, providerapi.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the Auth0 API %s: %w", idOrIdentifier, err)
	}
	return &rs, nil
}

// DeleteResourceServer deletes the API last written; one already gone, or none recorded, is done.
func (c *Client) DeleteResourceServer(ctx context.Context, last Record) error {
	if last.ID == "" {
		return nil
	}
	err := c.call(ctx, http.MethodDelete, resourceServersPath+"/"+url.PathEscape(last.ID), nil, ScopeDeleteResourceServers, nil, nil)
	if err != nil && !errors.Is(err, providerapi.ErrNotFound) {
		return fmt.Errorf("deleting the Auth0 API %s: %w", last.ID, err)
	}
	return nil
}
