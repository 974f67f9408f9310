package providerapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// DefaultTimeout bounds one exchange when the caller's client sets no timeout of its own.
const DefaultTimeout = 30 * time.Second

// MaxResponseBytes bounds a response body; the rest is not read.
const MaxResponseBytes = 4 << 20

// UserAgent identifies the operator to the providers.
const UserAgent = "insforge-integrations-operator"

// Request is one exchange to make.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte // nil: none
}

// Response is a completed exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do makes one exchange with client (nil: a client with DefaultTimeout). Redirects are not
// followed: the request carries credentials, which must not go to whatever host a Location names.
// A transport error names the provider, method and path, never the query or the body.
func Do(ctx context.Context, client *http.Client, provider string, r Request) (Response, error) {
	u, err := url.Parse(r.URL)
	if err != nil {
		return Response{}, fmt.Errorf("%s: invalid URL: %w", provider, err)
	}
	path := u.Path
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return Response{}, fmt.Errorf("%s: building %s %s: %w", provider, r.Method, path, err)
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", UserAgent)
	c := http.Client{Timeout: DefaultTimeout}
	if client != nil {
		c = *client // a copy: the caller's keeps its own redirect policy
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		// *url.Error repeats the URL with its query; the path is enough.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Response{}, fmt.Errorf("%s: %s %s: %w", provider, r.Method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		return Response{}, fmt.Errorf("%s: reading the %s %s response: %w", provider, r.Method, path, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return Response{}, fmt.Errorf("%s: %s %s: HTTP %d redirect not followed (check the base URL)", provider, r.Method, path, resp.StatusCode)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}
