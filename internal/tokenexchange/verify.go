package tokenexchange

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
	"github.com/insforge/integrations-operator/internal/tokenexchange/jwks"
)

// Limits on what a subject token may be.
const (
	// MaxTokenBytes caps a subject token; provider tokens are 1–3 KiB.
	MaxTokenBytes = 16 << 10
	// MaxSubjectBytes caps sub (InsForge stores it in TEXT columns and policies compare it).
	MaxSubjectBytes = 255
	// maxEmailBytes caps a copied email (RFC 5321's path limit); a longer value is dropped.
	maxEmailBytes = 320
)

// KeySource finds an issuer's public key for a token's kid and alg; *jwks.Set is one.
type KeySource interface {
	Lookup(ctx context.Context, kid, alg string) (*jwks.Key, error)
}

// Identity is what a verified subject token says.
type Identity struct {
	// Provider is the matched issuer's provider (set as soon as the issuer is known, also when
	// verification fails later, for metrics).
	Provider string
	Subject  string
	// Email is the configured email claim when it is a string ("" otherwise).
	Email string
	// Expires is the token's exp.
	Expires time.Time
}

// Verifier checks provider tokens against the configured issuers.
type Verifier struct {
	byIss       map[string]*issuer
	emailClaims []string // every issuer's EmailClaim
	now         func() time.Time
}

type issuer struct {
	cfg  config.Issuer
	keys KeySource
}

// NewVerifier returns a verifier for issuers (defaults applied); keys[i] serves issuers[i]'s
// keys. now is the clock (nil: time.Now).
func NewVerifier(issuers []config.Issuer, keys []KeySource, now func() time.Time) (*Verifier, error) {
	if len(keys) != len(issuers) {
		return nil, errors.New("tokenexchange: one key source per issuer is required")
	}
	if now == nil {
		now = time.Now
	}
	v := &Verifier{byIss: map[string]*issuer{}, now: now}
	for i, c := range issuers {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("tokenexchange: issuers[%d]: %w", i, err)
		}
		is := &issuer{cfg: c, keys: keys[i]}
		if c.EmailClaim != "" && !slices.Contains(v.emailClaims, c.EmailClaim) {
			v.emailClaims = append(v.emailClaims, c.EmailClaim)
		}
		for _, iss := range c.Issuers {
			if _, dup := v.byIss[iss]; dup {
				return nil, fmt.Errorf("tokenexchange: iss %q is accepted by two issuers", iss)
			}
			v.byIss[iss] = is
		}
	}
	return v, nil
}

// header holds the JOSE header parameters the exchange reads.
type header struct {
	alg, kid string
	crit     bool
	bad      bool // alg or kid not a string
}

// claimSet holds the raw values of the claims the exchange reads (nil when absent).
type claimSet struct {
	iss, sub, aud, azp, exp, nbf, iat json.RawMessage
	// emails are the values of claims some issuer copies as email (the issuer is not known
	// while scanning).
	emails []namedValue
}

type namedValue struct {
	name  string
	value json.RawMessage
}

// Verify checks a subject token: the issuer is chosen by the token's iss among the configured
// ones, and then everything else is checked against that issuer: the algorithm against its
// allow-list, the signature against its keys only (a token signed by one tenant cannot claim
// another's iss), then aud, azp, exp, nbf, iat and sub. Errors are *Error.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	var id Identity
	switch {
	case token == "":
		return id, fail(ReasonMissingToken)
	case len(token) > MaxTokenBytes:
		return id, fail(ReasonTokenTooLarge)
	}
	h64, rest, ok1 := strings.Cut(token, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return id, fail(ReasonMalformed)
	}
	var h header
	err := scanSegment(h64, func(name string, val []byte) {
		var ok bool
		switch name {
		case "alg":
			h.alg, ok = str(val)
			h.bad = h.bad || !ok
		case "kid":
			h.kid, ok = str(val)
			h.bad = h.bad || !ok
		case "crit":
			h.crit = true
		}
	})
	// RFC 7515 §4.1.11: a crit header names extensions the verifier must understand; it
	// understands none.
	if err != nil || h.alg == "" || h.bad || h.crit {
		return id, fail(ReasonMalformed)
	}
	var claims claimSet
	err = scanSegment(p64, func(name string, val []byte) {
		switch name {
		case "iss":
			claims.iss = val
		case "sub":
			claims.sub = val
		case "aud":
			claims.aud = val
		case "azp":
			claims.azp = val
		case "exp":
			claims.exp = val
		case "nbf":
			claims.nbf = val
		case "iat":
			claims.iat = val
		}
		if slices.Contains(v.emailClaims, name) {
			claims.emails = append(claims.emails, namedValue{name, val})
		}
	})
	if err != nil {
		return id, fail(ReasonMalformed)
	}
	iss, ok := str(claims.iss)
	if !ok {
		return id, fail(ReasonUnknownIssuer)
	}
	is := v.byIss[iss]
	if is == nil {
		return id, fail(ReasonUnknownIssuer)
	}
	id.Provider = is.cfg.Provider
	if !slices.Contains(is.cfg.Algorithms, h.alg) {
		return id, fail(ReasonAlgNotAllowed)
	}
	key, err := is.keys.Lookup(ctx, h.kid, h.alg)
	switch {
	case errors.Is(err, jwks.ErrKIDRequired):
		return id, fail(ReasonKIDRequired)
	case errors.Is(err, jwks.ErrUnknownKID):
		return id, fail(ReasonUnknownKID)
	case errors.Is(err, jwks.ErrKeyMismatch):
		return id, fail(ReasonKeyMismatch)
	case err != nil:
		return id, fail(ReasonKeysUnavailable)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(s64)
	if err != nil {
		return id, fail(ReasonMalformed)
	}
	method := jwt.GetSigningMethod(h.alg)
	if method == nil {
		return id, fail(ReasonAlgNotAllowed)
	}
	if err := method.Verify(token[:len(h64)+1+len(p64)], sig, key.Public); err != nil {
		return id, fail(ReasonBadSignature)
	}
	// The token is the issuer's: its claims can be believed.
	if err := v.checkClaims(is, &claims, &id); err != nil {
		return id, err
	}
	return id, nil
}

func (v *Verifier) checkClaims(is *issuer, claims *claimSet, id *Identity) error {
	now, leeway := v.now(), is.cfg.Leeway.Duration
	exp, present, ok := numericDate(claims.exp)
	switch {
	case !present:
		return fail(ReasonMissingExp)
	case !ok:
		return fail(ReasonMalformed)
	case !now.Before(exp.Add(leeway)):
		return fail(ReasonExpired)
	}
	id.Expires = exp
	if nbf, present, ok := numericDate(claims.nbf); present && !ok {
		return fail(ReasonMalformed)
	} else if present && now.Add(leeway).Before(nbf) {
		return fail(ReasonNotYetValid)
	}
	if iat, present, ok := numericDate(claims.iat); present && !ok {
		return fail(ReasonMalformed)
	} else if present && now.Add(leeway).Before(iat) {
		return fail(ReasonIssuedInFuture)
	}
	if len(is.cfg.Audiences) > 0 && !audienceOK(claims.aud, is.cfg.Audiences) {
		return fail(ReasonAudience)
	}
	if claims.azp != nil && len(is.cfg.AuthorizedParties) > 0 {
		if azp, ok := str(claims.azp); !ok || !slices.Contains(is.cfg.AuthorizedParties, azp) {
			return fail(ReasonAuthorizedParty)
		}
	}
	sub, ok := str(claims.sub)
	if !ok || !subjectOK(sub) {
		return fail(ReasonBadSubject)
	}
	id.Subject = sub
	for _, e := range claims.emails {
		if e.name != is.cfg.EmailClaim {
			continue
		}
		if email, ok := str(e.value); ok && email != "" && len(email) <= maxEmailBytes && printable(email) {
			id.Email = email
		}
	}
	return nil
}

// scanSegment decodes one base64url segment (unpadded, RFC 7515) holding a JSON object and scans
// its members.
func scanSegment(seg string, member func(name string, value []byte)) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return err
	}
	return scanObject(b, member)
}

// str reads a JSON string. raw comes from a document json.Valid accepted, so a string without
// escapes is its bytes between the quotes when they are UTF-8 (encoding/json replaces invalid
// bytes with U+FFFD; so does this, through it).
func str(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// numericDate reads a NumericDate (RFC 7519 §2: seconds, possibly fractional). present is false
// when the claim is absent; ok is false when it is not a sane number.
func numericDate(raw json.RawMessage) (t time.Time, present, ok bool) {
	if raw == nil {
		return time.Time{}, false, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, true, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, true
}

func audienceOK(raw json.RawMessage, accepted []string) bool {
	if s, ok := str(raw); ok {
		return slices.Contains(accepted, s)
	}
	if len(raw) == 0 || raw[0] != '[' {
		return false
	}
	var auds []string
	if json.Unmarshal(raw, &auds) != nil {
		return false
	}
	for _, a := range auds {
		if slices.Contains(accepted, a) {
			return true
		}
	}
	return false
}

// subjectOK accepts a user id InsForge can store and compare: 1..255 bytes of UTF-8 without
// control characters or U+FFFD.
func subjectOK(sub string) bool {
	return sub != "" && len(sub) <= MaxSubjectBytes && printable(sub)
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		// U+FFFD: encoding/json decodes an unpaired surrogate escape to it, so distinct subs of
		// the provider could collide in one InsForge user.
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			return false
		}
	}
	return true
}
