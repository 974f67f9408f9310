package clerk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"

	"github.com/insforge/integrations-operator/internal/providerapi"
)

const templatesPath = "/v1/jwt_templates"

// listPageSize is the page size of template lists; maxListPages bounds a walk through them.
const (
	listPageSize = 100
	maxListPages = 50
)

// Record is what the operator last wrote, kept in the resource's status. It holds no secret: the
// key is known only by its fingerprint.
type Record struct {
	TemplateID string
	// UpdatedAt is the template's updated_at (ms since the epoch) after the operator's last write.
	UpdatedAt int64
	// KeyFingerprint is providerapi.Fingerprint of the signing key last written.
	KeyFingerprint string
	// SpecHash fingerprints the template last written.
	SpecHash string
}

// apiTemplate is Clerk's JWTTemplate object. It has no signing_key: Clerk never returns it.
type apiTemplate struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	Claims           map[string]any `json:"claims"`
	Lifetime         int64          `json:"lifetime"`
	AllowedClockSkew int64          `json:"allowed_clock_skew"`
	CustomSigningKey bool           `json:"custom_signing_key"`
	SigningAlgorithm string         `json:"signing_algorithm"`
	UpdatedAt        int64          `json:"updated_at"`
}

// writeBody is a create or update. PATCH takes the same body, with name and claims required, so
// every write sends the whole template.
type writeBody struct {
	Name             string         `json:"name"`
	Claims           map[string]any `json:"claims"`
	Lifetime         int64          `json:"lifetime"`
	AllowedClockSkew int64          `json:"allowed_clock_skew"`
	CustomSigningKey bool           `json:"custom_signing_key"`
	SigningAlgorithm string         `json:"signing_algorithm"`
	SigningKey       string         `json:"signing_key"`
}

// Sync makes the template named want.Name match want, signed HS256 with key. last is the Record
// of the previous Sync (zero for none); the Record returned replaces it.
//
// The template is looked up by last.TemplateID, else by name. A template that has the name but
// was not created by the operator (last.TemplateID empty) is adopted and overwritten: the user
// asked the operator to manage the template of that name, the InsForge guides tell users to
// create exactly this template by hand, and its key cannot be read to be kept anyway.
//
// It writes only when something differs: a readable field, the key's fingerprint, or the
// template's updated_at (an edit the operator did not make, which may have replaced the key).
func (c *Client) Sync(ctx context.Context, want Template, key []byte, last Record) (Record, providerapi.Action, error) {
	want, err := want.normalized()
	if err != nil {
		return Record{}, providerapi.Action{}, err
	}
	if len(key) == 0 {
		return Record{}, providerapi.Action{}, errors.New("clerk: the signing key is empty")
	}
	fp := providerapi.Fingerprint(key)
	spec := providerapi.SpecHash(want)
	body := writeBody{
		Name: want.Name, Claims: want.Claims, Lifetime: want.Lifetime, AllowedClockSkew: want.AllowedClockSkew,
		CustomSigningKey: true, SigningAlgorithm: SigningAlgorithm, SigningKey: string(key),
	}
	cur, err := c.find(ctx, want.Name, last.TemplateID)
	if err != nil {
		return Record{}, providerapi.Action{}, err
	}
	if cur == nil {
		var created apiTemplate
		if err := c.call(ctx, http.MethodPost, templatesPath, nil, body, &created, string(key)); err != nil {
			return Record{}, providerapi.Action{}, fmt.Errorf("creating JWT template %q: %w", want.Name, err)
		}
		return record(created, fp, spec), providerapi.Action{Op: providerapi.OpCreated,
			Reason: fmt.Sprintf("JWT template %q did not exist", want.Name)}, nil
	}
	reasons := differences(*cur, want, fp, last)
	if len(reasons) == 0 {
		return record(*cur, fp, spec), providerapi.Action{Op: providerapi.OpUnchanged, Reason: "JWT template is as desired"}, nil
	}
	var updated apiTemplate
	if err := c.call(ctx, http.MethodPatch, templatesPath+"/"+url.PathEscape(cur.ID), nil, body, &updated, string(key)); err != nil {
		return Record{}, providerapi.Action{}, fmt.Errorf("updating JWT template %q: %w", want.Name, err)
	}
	return record(updated, fp, spec), providerapi.Action{Op: providerapi.OpUpdated, Reason: providerapi.JoinReasons(reasons)}, nil
}

func record(t apiTemplate, fp, spec string) Record {
	return Record{TemplateID: t.ID, UpdatedAt: t.UpdatedAt, KeyFingerprint: fp, SpecHash: spec}
}

// differences lists why cur must be rewritten; none means it is as desired.
func differences(cur apiTemplate, want Template, fp string, last Record) []string {
	var r []string
	switch {
	case last.TemplateID == "":
		r = append(r, "adopted an existing template the operator did not create")
	case last.TemplateID != cur.ID:
		r = append(r, "the template was replaced outside the operator")
	case last.UpdatedAt == 0 || last.KeyFingerprint == "":
		r = append(r, "no record of the operator's last write")
	case cur.UpdatedAt != last.UpdatedAt:
		r = append(r, "edited outside the operator")
	}
	if cur.Name != want.Name {
		r = append(r, "name differs")
	}
	if !reflect.DeepEqual(nonNil(cur.Claims), want.Claims) {
		r = append(r, "claims differ")
	}
	if cur.Lifetime != want.Lifetime {
		r = append(r, "lifetime differs")
	}
	if cur.AllowedClockSkew != want.AllowedClockSkew {
		r = append(r, "allowed clock skew differs")
	}
	if !cur.CustomSigningKey || cur.SigningAlgorithm != SigningAlgorithm {
		r = append(r, "signing is not HS256 with a custom key")
	}
	if last.KeyFingerprint != "" && last.KeyFingerprint != fp {
		r = append(r, "signing key rotated")
	}
	return r
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// find returns the template with id, else the one named name, else nil.
func (c *Client) find(ctx context.Context, name, id string) (*apiTemplate, error) {
	if id != "" {
		var t apiTemplate
		err := c.call(ctx, http.MethodGet, templatesPath+"/"+url.PathEscape(id), nil, nil, &t)
		switch {
		case err == nil:
			return &t, nil
		case !errors.Is(err, providerapi.ErrNotFound):
			return nil, fmt.Errorf("reading JWT template %s: %w", id, err)
		}
	}
	for page := range maxListPages {
		items, more, err := c.list(ctx, page*listPageSize)
		if err != nil {
			return nil, fmt.Errorf("listing JWT templates: %w", err)
		}
		for i := range items {
			if items[i].Name == name {
				return &items[i], nil
			}
		}
		if !more {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("clerk: more than %d JWT templates; template %q not found among them", maxListPages*listPageSize, name)
}

// list reads one page. Clerk's spec answers a bare array, its Go SDK decodes {data,total_count}
// for paginated=true: both are accepted.
func (c *Client) list(ctx context.Context, offset int) ([]apiTemplate, bool, error) {
	q := url.Values{"paginated": {"true"}, "limit": {strconv.Itoa(listPageSize)}, "offset": {strconv.Itoa(offset)}}
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, templatesPath, q, nil, &raw); err != nil {
		return nil, false, err
	}
	if isJSONArray(raw) {
		var items []apiTemplate
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, false, fmt.Errorf("clerk: decoding the template list: %w", err)
		}
		return items, len(items) == listPageSize, nil
	}
	var page struct {
		Data       []apiTemplate `json:"data"`
		TotalCount int           `json:"total_count"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, false, fmt.Errorf("clerk: decoding the template list: %w", err)
	}
	return page.Data, len(page.Data) > 0 && offset+len(page.Data) < page.TotalCount, nil
}

// Delete removes the template last written. A template already gone is not an error; with no
// TemplateID there is nothing the operator wrote, and nothing is deleted (not even a template of
// the same name: it may be the user's).
func (c *Client) Delete(ctx context.Context, last Record) error {
	if last.TemplateID == "" {
		return nil
	}
	err := c.call(ctx, http.MethodDelete, templatesPath+"/"+url.PathEscape(last.TemplateID), nil, nil, nil)
	if err != nil && !errors.Is(err, providerapi.ErrNotFound) {
		return fmt.Errorf("deleting JWT template %s: %w", last.TemplateID, err)
	}
	return nil
}

// Fingerprint is providerapi.Fingerprint: "sha256:" and 12 hex characters of the key's SHA-256.
func Fingerprint(key []byte) string { return providerapi.Fingerprint(key) }
