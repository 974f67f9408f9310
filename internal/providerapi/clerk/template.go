package clerk

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// Template defaults and bounds (Clerk BAPI).
const (
	// DefaultName is the template name InsForge's guides use (getToken({template: "insforge"})).
	DefaultName = "insforge"
	// DefaultLifetime is Clerk's default template lifetime, in seconds.
	DefaultLifetime = 60
	// DefaultAllowedClockSkew is Clerk's default allowed clock skew, in seconds.
	DefaultAllowedClockSkew = 5
	MinLifetime             = 30
	MaxLifetime             = 315360000
	MaxAllowedClockSkew     = 300
	// Role is the only role a template may carry.
	Role = "authenticated"
	// Audience is the aud InsForge's guides put in the template.
	Audience = "insforge-api"
	// SigningAlgorithm is the only algorithm InsForge verifies with JWT_SECRET.
	SigningAlgorithm = "HS256"
	// EmailShortcode is Clerk's shortcode for the user's primary email address.
	EmailShortcode = "{{user.primary_email_address}}"
)

// reservedClaims are the claims Clerk sets on every template token; a template may not set them.
var reservedClaims = [...]string{"azp", "exp", "iat", "iss", "jti", "nbf", "sub"}

// Template is the desired JWT template.
type Template struct {
	Name   string
	Claims map[string]any
	// Lifetime in seconds; 0 means DefaultLifetime.
	Lifetime int64
	// AllowedClockSkew in seconds (0 is a valid value).
	AllowedClockSkew int64
}

// DesiredTemplate is the template InsForge needs: role fixed to authenticated, aud insforge-api,
// optionally the user's email. It never sets sub or iss (Clerk does). lifetimeSec <= 0 means
// DefaultLifetime, skewSec < 0 means DefaultAllowedClockSkew.
func DesiredTemplate(name string, lifetimeSec, skewSec int64, includeEmail bool) Template {
	if name == "" {
		name = DefaultName
	}
	if lifetimeSec <= 0 {
		lifetimeSec = DefaultLifetime
	}
	if skewSec < 0 {
		skewSec = DefaultAllowedClockSkew
	}
	claims := map[string]any{"role": Role, "aud": Audience}
	if includeEmail {
		claims["email"] = EmailShortcode
	}
	return Template{Name: name, Claims: claims, Lifetime: lifetimeSec, AllowedClockSkew: skewSec}
}

// normalized applies defaults, checks what Clerk checks (so the error is clear before a 422), and
// refuses any role but authenticated. Claims come back in their JSON-decoded form so that they
// compare with what Clerk returns.
func (t Template) normalized() (Template, error) {
	if t.Name == "" {
		return t, errors.New("clerk: template name is empty")
	}
	if t.Lifetime == 0 {
		t.Lifetime = DefaultLifetime
	}
	if t.Lifetime < MinLifetime || t.Lifetime > MaxLifetime {
		return t, fmt.Errorf("clerk: template lifetime %d s is outside %d..%d", t.Lifetime, MinLifetime, MaxLifetime)
	}
	if t.AllowedClockSkew < 0 || t.AllowedClockSkew > MaxAllowedClockSkew {
		return t, fmt.Errorf("clerk: allowed clock skew %d s is outside 0..%d", t.AllowedClockSkew, MaxAllowedClockSkew)
	}
	var reserved []string
	for _, c := range reservedClaims {
		if _, ok := t.Claims[c]; ok {
			reserved = append(reserved, c)
		}
	}
	if len(reserved) > 0 {
		sort.Strings(reserved)
		return t, fmt.Errorf("clerk: template claims set %v, which Clerk sets itself", reserved)
	}
	// JWT_SECRET verifies project_admin tokens too: a template signed with it must not be able
	// to carry any other role, whether literal or a shortcode a user could influence.
	if r, ok := t.Claims["role"]; !ok || r != Role {
		return t, fmt.Errorf("clerk: template claim role must be %q: any token signed with JWT_SECRET that carries another role (project_admin) bypasses row-level security", Role)
	}
	claims, err := canonical(t.Claims)
	if err != nil {
		return t, fmt.Errorf("clerk: template claims: %w", err)
	}
	t.Claims = claims
	return t, nil
}

// canonical round-trips claims through JSON so numbers and nested values have the types decoding
// Clerk's answer gives them.
func canonical(m map[string]any) (map[string]any, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}
