package auth0

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/insforge/integrations-operator/internal/providerapi"
)

// Action defaults and fixed values.
const (
	DefaultActionName = "insforge-token"
	// DefaultClaim is the custom claim InsForge's Auth0 guide attaches the token as.
	DefaultClaim    = "https://insforge.dev/insforge_token"
	DefaultAudience = "insforge-api"
	// DefaultActionLifetime is the guide's expiresIn of one hour (seconds).
	DefaultActionLifetime = 3600
	// SecretName is the Action secret holding JWT_SECRET (event.secrets.INSFORGE_JWT_SECRET).
	SecretName = "INSFORGE_JWT_SECRET"
	// Runtime is the Node.js runtime of the Action.
	Runtime = "node22"
	// JSONWebTokenVersion pins the jsonwebtoken dependency: a floating version would let a new
	// release run with the JWT secret in reach without anyone choosing it.
	JSONWebTokenVersion = "9.0.2"
	// TriggerPostLogin and TriggerVersion are the trigger the Action runs on.
	TriggerPostLogin = "post-login"
	TriggerVersion   = "v3"
)

// Action is the desired post-login Action.
type Action struct {
	Name     string // "" means DefaultActionName
	Claim    string // "" means DefaultClaim
	Audience string // "" means DefaultAudience
	// LifetimeSeconds is the token's expiresIn (0 means DefaultActionLifetime).
	LifetimeSeconds int
}

func (a Action) withDefaults() Action {
	if a.Name == "" {
		a.Name = DefaultActionName
	}
	if a.Claim == "" {
		a.Claim = DefaultClaim
	}
	if a.Audience == "" {
		a.Audience = DefaultAudience
	}
	if a.LifetimeSeconds == 0 {
		a.LifetimeSeconds = DefaultActionLifetime
	}
	return a
}

// codeTemplate is the Action's code. The role is a literal: the token is signed with JWT_SECRET,
// which also verifies project_admin tokens, so nothing a user controls may choose it.
const codeTemplate = `// Managed by the InsForge integrations operator: changes made here are overwritten.
// Signs the InsForge token: HS256 with the project's JWT secret, role fixed to authenticated.
const jwt = require("jsonwebtoken");

exports.onExecutePostLogin = async (event, api) => {
  const token = jwt.sign(
    {
      sub: event.user.user_id,
      role: "authenticated",
      aud: %s,
      email: event.user.email,
    },
    event.secrets.` + SecretName + `,
    { algorithm: "HS256", expiresIn: %d }
  );
  api.idToken.setCustomClaim(%s, token);
  api.accessToken.setCustomClaim(%s, token);
};
`

// Code is the Action's JavaScript for a (after defaults). Values are JSON-encoded, which makes
// them JavaScript string literals: no value can break out into code.
func (a Action) Code() string {
	a = a.withDefaults()
	claim := jsString(a.Claim)
	return fmt.Sprintf(codeTemplate, jsString(a.Audience), a.LifetimeSeconds, claim, claim)
}

func jsString(s string) string {
	raw, _ := json.Marshal(s) // escapes quotes, control characters, U+2028 and U+2029
	return string(raw)
}

type trigger struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

type dependency struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	RegistryURL string `json:"registry_url,omitempty"`
}

type secret struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// dependencies are the Action's npm dependencies: jsonwebtoken only, from the default registry.
func dependencies() []dependency {
	return []dependency{{Name: "jsonwebtoken", Version: JSONWebTokenVersion}}
}

// apiAction is Auth0's Action object, the fields read. Secrets come back without values.
type apiAction struct {
	ID                 string       `json:"id"`
	Name               string       `json:"name"`
	SupportedTriggers  []trigger    `json:"supported_triggers"`
	Code               string       `json:"code"`
	Dependencies       []dependency `json:"dependencies"`
	Runtime            string       `json:"runtime"`
	Secrets            []secret     `json:"secrets"`
	Status             string       `json:"status"`
	AllChangesDeployed bool         `json:"all_changes_deployed"`
	DeployedVersion    *struct {
		ID string `json:"id"`
	} `json:"deployed_version"`
}

func (a apiAction) deployedVersion() string {
	if a.DeployedVersion == nil {
		return ""
	}
	return a.DeployedVersion.ID
}

type createAction struct {
	Name              string       `json:"name"`
	SupportedTriggers []trigger    `json:"supported_triggers"`
	Code              string       `json:"code"`
	Dependencies      []dependency `json:"dependencies"`
	Runtime           string       `json:"runtime"`
	Secrets           []secret     `json:"secrets"`
}

// updateAction sends secrets as the whole list: Auth0 replaces the list, so our one secret is
// the list, and any other secret someone added to this Action is removed (the code reads none).
type updateAction struct {
	Code         string       `json:"code"`
	Dependencies []dependency `json:"dependencies"`
	Runtime      string       `json:"runtime"`
	Secrets      []secret     `json:"secrets"`
}

const actionsPath = "/actions/actions"

// SyncAction makes the post-login Action named want.Name sign InsForge tokens with key, deploys
// it when anything was written or something the operator did not deploy is pending or live, and
// binds it to post-login after the tenant's other Actions (which stay bound, in their order).
// last is the Record of the previous sync (zero for none). An Action of that name the operator did
// not create is adopted and overwritten.
//
// Writing, building and deploying may take a while: SyncAction waits for the build up to
// BuildTimeout, within ctx.
func (c *Client) SyncAction(ctx context.Context, want Action, key []byte, last Record) (Record, providerapi.Action, error) {
	want = want.withDefaults()
	if err := checkKey(key); err != nil {
		return Record{}, providerapi.Action{}, err
	}
	if want.LifetimeSeconds < 0 {
		return Record{}, providerapi.Action{}, fmt.Errorf("auth0: token lifetime %d is negative", want.LifetimeSeconds)
	}
	fp := providerapi.Fingerprint(key)
	code, deps := want.Code(), dependencies()
	spec := providerapi.SpecHash(map[string]any{"name": want.Name, "code": code, "dependencies": deps, "runtime": Runtime})
	secrets := []secret{{Name: SecretName, Value: string(key)}}

	cur, err := c.findAction(ctx, want.Name, last.ID)
	if err != nil {
		return Record{}, providerapi.Action{}, err
	}
	var reasons []string
	op := providerapi.OpUpdated
	deploy := false
	if cur == nil {
		body := createAction{Name: want.Name, SupportedTriggers: []trigger{{ID: TriggerPostLogin, Version: TriggerVersion}},
			Code: code, Dependencies: deps, Runtime: Runtime, Secrets: secrets}
		var created apiAction
		if err := c.call(ctx, http.MethodPost, actionsPath, nil, ScopeCreateActions, body, &created, string(key)); err != nil {
			return Record{}, providerapi.Action{}, fmt.Errorf("creating the Auth0 Action %q: %w", want.Name, err)
		}
		cur = &created
		op, deploy = providerapi.OpCreated, true
		reasons = append(reasons, fmt.Sprintf("the Auth0 Action %q did not exist", want.Name))
	} else {
		if !slices.ContainsFunc(cur.SupportedTriggers, func(t trigger) bool { return t.ID == TriggerPostLogin }) {
			return Record{}, providerapi.Action{}, fmt.Errorf("auth0: an Action named %q exists for another trigger than %s; rename one of them", want.Name, TriggerPostLogin)
		}
		reasons = actionDifferences(*cur, code, deps, fp, last)
		if len(reasons) > 0 {
			body := updateAction{Code: code, Dependencies: deps, Runtime: Runtime, Secrets: secrets}
			if err := c.call(ctx, http.MethodPatch, actionsPath+"/"+url.PathEscape(cur.ID), nil, ScopeUpdateActions, body, nil, string(key)); err != nil {
				return Record{}, providerapi.Action{}, fmt.Errorf("updating the Auth0 Action %q: %w", want.Name, err)
			}
			deploy = true
		}
	}
	rec := Record{ID: cur.ID, KeyFingerprint: fp, SpecHash: spec, DeployedVersion: cur.deployedVersion()}
	if deploy {
		if rec.DeployedVersion, err = c.buildAndDeploy(ctx, cur.ID); err != nil {
			return Record{}, providerapi.Action{}, fmt.Errorf("deploying the Auth0 Action %q: %w", want.Name, err)
		}
	}
	bound, err := c.bind(ctx, cur.ID, want.Name)
	if err != nil {
		return Record{}, providerapi.Action{}, fmt.Errorf("binding the Auth0 Action %q to %s: %w", want.Name, TriggerPostLogin, err)
	}
	if bound {
		reasons = append(reasons, "bound to "+TriggerPostLogin)
	}
	if len(reasons) == 0 {
		return rec, providerapi.Action{Op: providerapi.OpUnchanged, Reason: "the Auth0 Action is deployed and bound as desired"}, nil
	}
	return rec, providerapi.Action{Op: op, Reason: providerapi.JoinReasons(reasons)}, nil
}

// actionDifferences lists why cur must be written and deployed again; none means it is as desired.
func actionDifferences(cur apiAction, code string, deps []dependency, fp string, last Record) []string {
	var r []string
	switch {
	case last.ID == "":
		r = append(r, "adopted an existing Action the operator did not create")
	case last.ID != cur.ID:
		r = append(r, "the Action was replaced outside the operator")
	case last.KeyFingerprint == "":
		r = append(r, "no record of the operator's last write")
	case last.KeyFingerprint != fp:
		r = append(r, "signing key rotated")
	}
	if cur.Code != code {
		r = append(r, "code differs")
	}
	// A dependency from another registry, or another version, runs with the secret in reach.
	if !slices.Equal(cur.Dependencies, deps) {
		r = append(r, "dependencies differ")
	}
	if cur.Runtime != Runtime {
		r = append(r, "runtime differs")
	}
	if !slices.ContainsFunc(cur.Secrets, func(s secret) bool { return s.Name == SecretName }) {
		r = append(r, "secret "+SecretName+" missing")
	}
	// Secret values cannot be read: an edit the operator did not make shows only as changes
	// not deployed, or as a live version the operator did not deploy.
	switch {
	case cur.DeployedVersion == nil:
		r = append(r, "not deployed")
	case !cur.AllChangesDeployed:
		r = append(r, "changes made outside the operator are not deployed")
	case last.DeployedVersion != "" && cur.deployedVersion() != last.DeployedVersion:
		r = append(r, "a version the operator did not deploy is live")
	}
	return r
}

// findAction returns the Action with id, else the one named name, else nil.
func (c *Client) findAction(ctx context.Context, name, id string) (*apiAction, error) {
	if id != "" {
		a, err := c.getAction(ctx, id)
		if a != nil || err != nil {
			return a, err
		}
	}
	var list struct {
		Actions []apiAction `json:"actions"`
	}
	q := url.Values{"actionName": {name}}
	if err := c.call(ctx, http.MethodGet, actionsPath, q, ScopeReadActions, nil, &list); err != nil {
		return nil, fmt.Errorf("listing Auth0 Actions named %q: %w", name, err)
	}
	for i := range list.Actions {
		if list.Actions[i].Name == name {
			return &list.Actions[i], nil
		}
	}
	return nil, nil
}

func (c *Client) getAction(ctx context.Context, id string) (*apiAction, error) {
	var a apiAction
	err := c.call(ctx, http.MethodGet, actionsPath+"/"+url.PathEscape(id), nil, ScopeReadActions, nil, &a)
	switch {
	case errors.Is(err, providerapi.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the Auth0 Action %s: %w", id, err)
	}
	return &a, nil
}

// buildAndDeploy waits until the Action is built, deploys it and returns the deployed version.
// Auth0 builds asynchronously after a write and refuses to deploy before the build ends.
func (c *Client) buildAndDeploy(ctx context.Context, id string) (string, error) {
	if err := c.waitBuilt(ctx, id); err != nil {
		return "", err
	}
	var version struct {
		ID string `json:"id"`
	}
	if err := c.call(ctx, http.MethodPost, actionsPath+"/"+url.PathEscape(id)+"/deploy", nil, ScopeCreateActions, nil, &version); err != nil {
		return "", err
	}
	if version.ID == "" {
		return "", errors.New("auth0: the deploy answer has no version id")
	}
	return version.ID, nil
}

// waitBuilt polls the Action until its status is "built", for at most BuildTimeout.
func (c *Client) waitBuilt(ctx context.Context, id string) error {
	timeout, interval := c.BuildTimeout, c.PollInterval
	if timeout <= 0 {
		timeout = DefaultBuildTimeout
	}
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	status := "pending"
	for {
		a, err := c.getAction(wait, id)
		switch {
		case err != nil && wait.Err() != nil && ctx.Err() == nil:
			return fmt.Errorf("auth0: the Action is still %q after %s: %w", status, timeout, context.DeadlineExceeded)
		case err != nil:
			return err
		case a == nil:
			return fmt.Errorf("auth0: Action %s disappeared while building", id)
		case a.Status == "failed":
			return errors.New("auth0: the Action build failed (check the Action's code and dependencies in the Auth0 dashboard)")
		case a.Status == "built":
			return nil
		}
		status = a.Status
		select {
		case <-wait.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("auth0: the Action is still %q after %s: %w", status, timeout, context.DeadlineExceeded)
		case <-time.After(interval):
		}
	}
}

// bindingsPath is the post-login trigger's bindings.
const bindingsPath = "/actions/triggers/" + TriggerPostLogin + "/bindings"

// bindingsPageSize and maxBindingPages bound the walk through a trigger's bindings.
const (
	bindingsPageSize = 50
	maxBindingPages  = 20
)

type apiBinding struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	Action      struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"action"`
}

type bindingRef struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type bindingUpdate struct {
	Ref         bindingRef `json:"ref"`
	DisplayName string     `json:"display_name,omitempty"`
}

func (c *Client) bindings(ctx context.Context) ([]apiBinding, error) {
	var all []apiBinding
	for page := range maxBindingPages {
		var resp struct {
			Bindings []apiBinding `json:"bindings"`
			Total    int          `json:"total"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(bindingsPageSize)}}
		if err := c.call(ctx, http.MethodGet, bindingsPath, q, ScopeReadActions, nil, &resp); err != nil {
			return nil, fmt.Errorf("listing the %s bindings: %w", TriggerPostLogin, err)
		}
		all = append(all, resp.Bindings...)
		if len(resp.Bindings) < bindingsPageSize || len(all) >= resp.Total {
			return all, nil
		}
	}
	return nil, fmt.Errorf("auth0: more than %d %s bindings", maxBindingPages*bindingsPageSize, TriggerPostLogin)
}

// keepRefs refers to existing bindings by binding id: the list PATCHed replaces the trigger's
// bindings, so every binding not to be dropped must be in it, and a binding id keeps the binding
// itself (with anything it holds that cannot be read back) rather than binding its Action anew.
func keepRefs(bs []apiBinding, drop string) []bindingUpdate {
	out := make([]bindingUpdate, 0, len(bs)+1)
	for _, b := range bs {
		if b.Action.ID != drop {
			out = append(out, bindingUpdate{Ref: bindingRef{Type: "binding_id", Value: b.ID}, DisplayName: b.DisplayName})
		}
	}
	return out
}

func (c *Client) setBindings(ctx context.Context, list []bindingUpdate) error {
	body := struct {
		Bindings []bindingUpdate `json:"bindings"`
	}{list}
	if err := c.call(ctx, http.MethodPatch, bindingsPath, nil, ScopeUpdateActions, body, nil); err != nil {
		return fmt.Errorf("setting the %s bindings: %w", TriggerPostLogin, err)
	}
	return nil
}

// bind appends the Action to post-login's bindings unless it is bound; it reports whether it
// wrote.
func (c *Client) bind(ctx context.Context, id, name string) (bool, error) {
	bs, err := c.bindings(ctx)
	if err != nil {
		return false, err
	}
	if slices.ContainsFunc(bs, func(b apiBinding) bool { return b.Action.ID == id }) {
		return false, nil
	}
	list := append(keepRefs(bs, ""), bindingUpdate{Ref: bindingRef{Type: "action_id", Value: id}, DisplayName: name})
	return true, c.setBindings(ctx, list)
}

// DeleteAction unbinds the Action last written from post-login, leaving every other binding in
// its order, then deletes it. One already gone, or none recorded, is done.
func (c *Client) DeleteAction(ctx context.Context, last Record) error {
	if last.ID == "" {
		return nil
	}
	bs, err := c.bindings(ctx)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(bs, func(b apiBinding) bool { return b.Action.ID == last.ID }) {
		if err := c.setBindings(ctx, keepRefs(bs, last.ID)); err != nil {
			return err
		}
	}
	err = c.call(ctx, http.MethodDelete, actionsPath+"/"+url.PathEscape(last.ID), nil, ScopeDeleteActions, nil, nil)
	if err != nil && !errors.Is(err, providerapi.ErrNotFound) {
		return fmt.Errorf("deleting the Auth0 Action %s: %w", last.ID, err)
	}
	return nil
}
