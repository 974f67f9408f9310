package clerk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/insforge/integrations-operator/internal/providerapi"
)

// DefaultBaseURL is Clerk's Backend API.
const DefaultBaseURL = "https://api.clerk.com"

// APIVersion is the Clerk-API-Version header sent, the one Clerk's Go SDK sends.
const APIVersion = "2021-02-05"

// defaultRetryAfter is used when a 429 carries no Retry-After: Clerk's limits are per 10 s.
const defaultRetryAfter = 10 * time.Second

// Errors, matched with errors.Is (see providerapi).
var (
	// ErrUnauthorized: HTTP 401/403, the secret key is wrong, revoked or of another instance.
	ErrUnauthorized = providerapi.ErrUnauthorized
	// ErrPlanRequired: HTTP 402, the Clerk plan does not include a template feature.
	ErrPlanRequired = providerapi.ErrPlanRequired
	// ErrRateLimited: HTTP 429; see RetryAfter.
	ErrRateLimited = providerapi.ErrRateLimited
)

// RetryAfter returns the delay Clerk asked for when err is a 429.
func RetryAfter(err error) (time.Duration, bool) { return providerapi.RetryAfter(err) }

// Client calls Clerk's Backend API. The zero value, with SecretKey set, calls the real API.
type Client struct {
	// BaseURL replaces DefaultBaseURL (tests, proxies).
	BaseURL string
	// SecretKey is the instance's secret key (sk_live_… or sk_test_…).
	SecretKey string
	// HTTP sends the requests; nil uses a client with providerapi.DefaultTimeout.
	HTTP *http.Client
}

// apiErrors is Clerk's error body.
type apiErrors struct {
	Errors []struct {
		Message     string `json:"message"`
		LongMessage string `json:"long_message"`
		Code        string `json:"code"`
	} `json:"errors"`
}

// call sends one request and decodes a 2xx answer into out (nil: ignored). redact lists secrets
// beyond the secret key that must not appear in an error (the signing key being written).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any, redact ...string) error {
	if c.SecretKey == "" {
		return errors.New("clerk: no secret key configured")
	}
	base := strings.TrimRight(c.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	u := base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.SecretKey)
	h.Set("Clerk-API-Version", APIVersion)
	h.Set("Accept", "application/json")
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("clerk: encoding %s %s: %w", method, path, err)
		}
		h.Set("Content-Type", "application/json")
	}
	resp, err := providerapi.Do(ctx, c.HTTP, "clerk", providerapi.Request{Method: method, URL: u, Header: h, Body: body})
	if err != nil {
		return err
	}
	if resp.Status >= 200 && resp.Status < 300 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return fmt.Errorf("clerk: decoding the %s %s response: %w", method, path, err)
		}
		return nil
	}
	return c.apiError(method, path, resp, append(redact, c.SecretKey))
}

func (c *Client) apiError(method, path string, resp providerapi.Response, secrets []string) error {
	e := &providerapi.APIError{Provider: "clerk", Method: method, Path: path, Status: resp.Status}
	var body apiErrors
	if json.Unmarshal(resp.Body, &body) == nil && len(body.Errors) > 0 {
		msgs := make([]string, 0, len(body.Errors))
		for _, m := range body.Errors {
			msg := m.LongMessage
			if msg == "" {
				msg = m.Message
			}
			msgs = append(msgs, msg)
		}
		e.Code = body.Errors[0].Code
		e.Message = providerapi.Redacted(strings.Join(msgs, "; "), secrets...)
	}
	switch resp.Status {
	case http.StatusTooManyRequests:
		e.Delay = defaultRetryAfter
		if d, ok := providerapi.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			e.Delay = d
		}
	case http.StatusUnauthorized, http.StatusForbidden:
		e.Hint = "check the Clerk secret key"
	case http.StatusPaymentRequired:
		e.Hint = "the Clerk plan does not include this JWT template feature"
	}
	return e
}

// isJSONArray reports whether raw is a JSON array (Clerk's unpaginated list) rather than an
// object ({data,total_count}).
func isJSONArray(raw []byte) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '['
}
