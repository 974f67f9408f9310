package tokenexchange

// Reason says why an exchange failed. The set is fixed: it labels metrics, and an Error's
// message is the reason's fixed description, so no part of a token ever reaches a response, a
// log line or a metric.
type Reason string

// Reasons. OK labels successful exchanges in metrics.
const (
	ReasonOK Reason = "ok"

	// Request shape.
	ReasonInvalidRequest       Reason = "invalid_request"
	ReasonBodyTooLarge         Reason = "body_too_large"
	ReasonUnsupportedGrantType Reason = "unsupported_grant_type"
	ReasonUnsupportedTokenType Reason = "unsupported_token_type"
	ReasonMissingToken         Reason = "missing_token"
	ReasonTokenTooLarge        Reason = "token_too_large"

	// Token verification.
	ReasonMalformed       Reason = "malformed"
	ReasonUnknownIssuer   Reason = "unknown_issuer"
	ReasonAlgNotAllowed   Reason = "alg_not_allowed"
	ReasonKIDRequired     Reason = "kid_required"
	ReasonUnknownKID      Reason = "unknown_kid"
	ReasonKeyMismatch     Reason = "key_mismatch"
	ReasonBadSignature    Reason = "bad_signature"
	ReasonMissingExp      Reason = "missing_exp"
	ReasonExpired         Reason = "expired"
	ReasonNotYetValid     Reason = "not_yet_valid"
	ReasonIssuedInFuture  Reason = "issued_in_future"
	ReasonAudience        Reason = "audience_mismatch"
	ReasonAuthorizedParty Reason = "azp_not_allowed"
	ReasonBadSubject      Reason = "bad_subject"

	// The exchange cannot serve right now (503).
	ReasonKeysUnavailable       Reason = "keys_unavailable"
	ReasonSigningKeyUnavailable Reason = "signing_key_unavailable"
)

var descriptions = map[Reason]string{
	ReasonInvalidRequest:        "malformed token exchange request",
	ReasonBodyTooLarge:          "request body too large",
	ReasonUnsupportedGrantType:  "grant_type must be urn:ietf:params:oauth:grant-type:token-exchange",
	ReasonUnsupportedTokenType:  "subject_token_type must be a JWT, access token or ID token type",
	ReasonMissingToken:          "no subject token",
	ReasonTokenTooLarge:         "subject token too large",
	ReasonMalformed:             "subject token is not a well-formed signed JWT",
	ReasonUnknownIssuer:         "subject token issuer is not accepted",
	ReasonAlgNotAllowed:         "subject token algorithm is not accepted for its issuer",
	ReasonKIDRequired:           "subject token has no kid and its issuer has several keys",
	ReasonUnknownKID:            "subject token kid is not among its issuer's keys",
	ReasonKeyMismatch:           "subject token algorithm does not match its key",
	ReasonBadSignature:          "subject token signature is invalid",
	ReasonMissingExp:            "subject token has no exp",
	ReasonExpired:               "subject token has expired",
	ReasonNotYetValid:           "subject token is not valid yet (nbf)",
	ReasonIssuedInFuture:        "subject token was issued in the future (iat)",
	ReasonAudience:              "subject token audience is not accepted",
	ReasonAuthorizedParty:       "subject token authorized party (azp) is not accepted",
	ReasonBadSubject:            "subject token sub is missing or not an acceptable user id",
	ReasonKeysUnavailable:       "the issuer's keys are unavailable; retry later",
	ReasonSigningKeyUnavailable: "the exchange has no signing key; retry later",
}

// Reasons lists every failure reason (for tests and metric pre-registration).
func Reasons() []Reason {
	out := make([]Reason, 0, len(descriptions))
	for r := range descriptions {
		out = append(out, r)
	}
	return out
}

// Error is a failed exchange. Its message is fixed per reason: it never quotes the token.
type Error struct{ Reason Reason }

func (e *Error) Error() string { return descriptions[e.Reason] }

func fail(r Reason) error { return &Error{Reason: r} }

// Unavailable reports whether the reason is the exchange's own state (503), not the request's.
func (r Reason) Unavailable() bool {
	return r == ReasonKeysUnavailable || r == ReasonSigningKeyUnavailable
}
