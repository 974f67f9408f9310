package providerapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors a provider API answer is matched against with errors.Is.
var (
	// ErrUnauthorized: the provider rejected the operator's credentials (HTTP 401, or 403 at a
	// token endpoint or for a scope). Retrying does not help; the operator reports it as stalled.
	ErrUnauthorized = errors.New("the provider rejected the credentials")
	// ErrInsufficientScope: the credentials are valid but lack a permission. It also matches
	// ErrUnauthorized, so code that stalls on bad credentials stalls on this too.
	ErrInsufficientScope = errors.New("the credentials lack a required scope")
	// ErrPlanRequired: the provider's plan does not include the feature (HTTP 402).
	ErrPlanRequired = errors.New("the provider plan does not include this feature")
	// ErrRateLimited: HTTP 429; RetryAfter says when to try again.
	ErrRateLimited = errors.New("rate limited by the provider")
	// ErrNotFound: HTTP 404.
	ErrNotFound = errors.New("not found")
)

// APIError is a provider's non-2xx answer. Message is the provider's own text with the client's
// secrets redacted; the request body is never part of it.
type APIError struct {
	Provider     string // "clerk", "auth0"
	Method, Path string // Path has no query
	Status       int
	Code         string // the provider's error code, if any
	Message      string
	// Delay is how long to wait before trying again (429 only).
	Delay time.Duration
	// Scope is the permission the call needs, set when the provider refused for a missing scope.
	Scope string
	// Hint tells the user what to do, when the client knows.
	Hint string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s %s: HTTP %d", e.Provider, e.Method, e.Path, e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Scope != "" {
		fmt.Fprintf(&b, " (the credentials need scope %s)", e.Scope)
	}
	if e.Status == http.StatusTooManyRequests {
		fmt.Fprintf(&b, " (retry after %s)", e.Delay)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "; %s", e.Hint)
	}
	return b.String()
}

// Is matches the sentinel errors by status.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrInsufficientScope:
		return e.Scope != ""
	case ErrPlanRequired:
		return e.Status == http.StatusPaymentRequired
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	}
	return false
}

// RetryAfter returns the delay a rate-limited call asked for.
func RetryAfter(err error) (time.Duration, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
		return ae.Delay, true
	}
	return 0, false
}

// MissingScope returns the scope a call was refused for.
func MissingScope(err error) (string, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.Scope != "" {
		return ae.Scope, true
	}
	return "", false
}

// maxDelay bounds a provider-supplied delay: a bogus header must not park a resource for days.
const maxDelay = time.Hour

// ParseRetryAfter reads a Retry-After header: delta seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return clampDelay(time.Duration(n) * time.Second), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return clampDelay(t.Sub(now)), true
	}
	return 0, false
}

// ParseResetEpoch reads a reset time given in Unix seconds (Auth0's X-RateLimit-Reset).
func ParseResetEpoch(v string, now time.Time) (time.Duration, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return clampDelay(time.Unix(n, 0).Sub(now)), true
}

func clampDelay(d time.Duration) time.Duration {
	// A reset already passed (clock skew) still waits a moment rather than hammering.
	return min(max(d, time.Second), maxDelay)
}
