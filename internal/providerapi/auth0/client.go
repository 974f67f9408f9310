package auth0

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/insforge/integrations-operator/internal/providerapi"
)

// Errors, matched with errors.Is (see providerapi).
var (
	// ErrUnauthorized: the client credentials were refused, or a call was (401, 403).
	ErrUnauthorized = providerapi.ErrUnauthorized
	// ErrInsufficientScope: the application lacks a Management API scope; MissingScope names
	// it. It also matches ErrUnauthorized.
	ErrInsufficientScope = providerapi.ErrInsufficientScope
	// ErrRateLimited: HTTP 429; see RetryAfter.
	ErrRateLimited = providerapi.ErrRateLimited
)

// RetryAfter returns the delay Auth0 asked for when err is a 429.
func RetryAfter(err error) (time.Duration, bool) { return providerapi.RetryAfter(err) }

// MissingScope returns the Management API scope a call was refused for.
func MissingScope(err error) (string, bool) { return providerapi.MissingScope(err) }

// Defaults of the optional Client fields.
const (
	DefaultPollInterval = 2 * time.Second
	DefaultBuildTimeout = 2 * time.Minute
	// defaultRetryAfter is used when a 429 names no reset time.
	defaultRetryAfter = 2 * time.Second
	// maxRenewMargin: a token is renewed this long before it expires (less for short tokens).
	maxRenewMargin = time.Minute
)

// Client calls an Auth0 tenant's Management API as a machine-to-machine application. Use it by
// pointer: it caches the Management API token and must not be copied after first use.
type Client struct {
	// Domain is the tenant's domain (tenant.us.auth0.com); the token audience is
	// https://{Domain}/api/v2/ even when BaseURL is set.
	Domain string
	// ClientID and ClientSecret are the application's client credentials.
	ClientID, ClientSecret string
	// BaseURL replaces https://{Domain} (tests, proxies).
	BaseURL string
	// HTTP sends the requests; nil uses a client with providerapi.DefaultTimeout.
	HTTP *http.Client
	// PollInterval is the pause between reads of an Action being built (0: DefaultPollInterval).
	PollInterval time.Duration
	// BuildTimeout bounds the wait for an Action build (0: DefaultBuildTimeout).
	BuildTimeout time.Duration
	// Now is the clock token expiry is judged by; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	token    string
	renewAt  time.Time
	fetching *tokenFetch
}

// tokenFetch is a token request in flight; concurrent callers wait for it.
type tokenFetch struct {
	done  chan struct{}
	token string
	err   error
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) base() (string, error) {
	if c.Domain == "" || strings.ContainsAny(c.Domain, "/:?#@ ") {
		return "", fmt.Errorf("auth0: domain %q must be a host name such as tenant.us.auth0.com", c.Domain)
	}
	if c.BaseURL != "" {
		return strings.TrimRight(c.BaseURL, "/"), nil
	}
	return "https://" + c.Domain, nil
}

// secrets are the values no error may quote.
func (c *Client) secrets(extra ...string) []string {
	c.mu.Lock()
	tok := c.token
	c.mu.Unlock()
	return append(extra, c.ClientSecret, tok)
}

// accessToken returns a cached Management API token, or fetches one; concurrent callers share
// one fetch.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	for {
		c.mu.Lock()
		if c.token != "" && c.now().Before(c.renewAt) {
			tok := c.token
			c.mu.Unlock()
			return tok, nil
		}
		if f := c.fetching; f != nil {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			// A fetch that failed only because its own caller gave up is not ours to report.
			if f.err != nil && ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
				continue
			}
			return f.token, f.err
		}
		f := &tokenFetch{done: make(chan struct{})}
		c.fetching = f
		c.mu.Unlock()

		tok, renewAt, err := c.fetchToken(ctx)
		c.mu.Lock()
		c.fetching = nil
		if err == nil {
			c.token, c.renewAt = tok, renewAt
		}
		c.mu.Unlock()
		f.token, f.err = tok, err
		close(f.done)
		return tok, err
	}
}

// dropToken forgets tok if it is still the cached token (a call answered 401 with it).
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

// tokenPath is the client-credentials endpoint.
const tokenPath = "/oauth/token"

func (c *Client) fetchToken(ctx context.Context) (string, time.Time, error) {
	base, err := c.base()
	if err != nil {
		return "", time.Time{}, err
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return "", time.Time{}, errors.New("auth0: client ID and client secret are required")
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.ClientID},
		"client_secret": {c.ClientSecret},
		"audience":      {"https://" + c.Domain + "/api/v2/"},
	}
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("Accept", "application/json")
	start := c.now()
	resp, err := providerapi.Do(ctx, c.HTTP, "auth0", providerapi.Request{Method: http.MethodPost, URL: base + tokenPath, Header: h, Body: []byte(form.Encode())})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("getting a Management API token: %w", err)
	}
	if resp.Status != http.StatusOK {
		e := c.apiError(http.MethodPost, tokenPath, resp, "", []string{c.ClientSecret})
		if resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden {
			e.Hint = fmt.Sprintf("check the client ID %s and its secret, and that the application is authorized for the Auth0 Management API", c.ClientID)
		}
		return "", time.Time{}, fmt.Errorf("getting a Management API token: %w", e)
	}
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil || body.AccessToken == "" || body.ExpiresIn <= 0 {
		return "", time.Time{}, errors.New("auth0: the token endpoint answered without an access token and lifetime")
	}
	life := time.Duration(body.ExpiresIn) * time.Second
	return body.AccessToken, start.Add(life - min(life/10, maxRenewMargin)), nil
}

// apiPrefix is the Management API's path.
const apiPrefix = "/api/v2"

// call makes one Management API call needing scope and decodes a 2xx answer into out (nil:
// ignored). A 401 drops the cached token and the call is made once more with a new one. redact
// lists secrets beyond the credentials that must not appear in an error (the key being written).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, scope string, in, out any, redact ...string) error {
	base, err := c.base()
	if err != nil {
		return err
	}
	var body []byte
	if in != nil {
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("auth0: encoding %s %s: %w", method, path, err)
		}
	}
	u := base + apiPrefix + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return err
		}
		h := http.Header{}
		h.Set("Authorization", "Bearer "+tok)
		h.Set("Accept", "application/json")
		if body != nil {
			h.Set("Content-Type", "application/json")
		}
		resp, err := providerapi.Do(ctx, c.HTTP, "auth0", providerapi.Request{Method: method, URL: u, Header: h, Body: body})
		if err != nil {
			return err
		}
		if resp.Status == http.StatusUnauthorized && attempt == 0 {
			c.dropToken(tok) // revoked or expired early: one fresh token
			continue
		}
		if resp.Status >= 200 && resp.Status < 300 {
			if out == nil || len(resp.Body) == 0 {
				return nil
			}
			if err := json.Unmarshal(resp.Body, out); err != nil {
				return fmt.Errorf("auth0: decoding the %s %s response: %w", method, apiPrefix+path, err)
			}
			return nil
		}
		return c.apiError(method, apiPrefix+path, resp, scope, c.secrets(append(redact, tok)...))
	}
}

// apiError reads Auth0's error body: {statusCode,error,message,errorCode} from the Management API,
// {error,error_description} from the token endpoint.
func (c *Client) apiError(method, path string, resp providerapi.Response, scope string, secrets []string) *providerapi.APIError {
	e := &providerapi.APIError{Provider: "auth0", Method: method, Path: path, Status: resp.Status}
	var body struct {
		Error       string `json:"error"`
		Message     string `json:"message"`
		ErrorCode   string `json:"errorCode"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(resp.Body, &body) == nil {
		e.Code = body.ErrorCode
		if e.Code == "" && body.Description != "" {
			e.Code = body.Error
		}
		msg := body.Message
		if msg == "" {
			msg = body.Description
		}
		e.Message = providerapi.Redacted(msg, secrets...)
	}
	switch resp.Status {
	case http.StatusForbidden:
		if scope != "" && (e.Code == "insufficient_scope" || strings.HasPrefix(body.Message, "Insufficient scope")) {
			e.Scope = scope
			e.Hint = "grant it to the application under the Auth0 Management API's machine-to-machine applications"
		}
	case http.StatusTooManyRequests:
		e.Delay = defaultRetryAfter
		if d, ok := providerapi.ParseResetEpoch(resp.Header.Get("X-RateLimit-Reset"), c.now()); ok {
			e.Delay = d
		} else if d, ok := providerapi.ParseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
			e.Delay = d
		}
	}
	return e
}
