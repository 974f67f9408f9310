// Package httpcall makes a facilitator client's HTTP exchanges: a bounded body, retries only for
// the calls that cannot move money, no redirects followed, and, when an exchange fails, whether
// the request may have reached the facilitator. That last fact decides the money path: a settle that was never sent
// may be answered "not charged", one that may have arrived has an unknown outcome (SettleFailure).
package httpcall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator"
)

// Defaults.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxAttempts  = 3
	DefaultRetryBackoff = 250 * time.Millisecond
	// MaxResponseBytes bounds a response body; the rest is not read.
	MaxResponseBytes = 1 << 20
)

// Caller sends one facilitator's requests. It is safe for concurrent use.
type Caller struct {
	// Name prefixes error messages ("okx", "httpx402").
	Name string
	// BaseURL is prepended to every request path.
	BaseURL string
	// Client sends the requests; nil means a client with DefaultTimeout.
	Client *http.Client
	// MaxAttempts bounds DoIdempotent's attempts; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// RetryBackoff is the pause before the second attempt, doubled after each further one;
	// 0 means DefaultRetryBackoff.
	RetryBackoff time.Duration
	// Authorize, when set, adds authentication to each attempt's request just before it is
	// sent. requestPath is the path and query as sent; body the exact bytes (nil for none).
	Authorize func(req *http.Request, requestPath string, body []byte)
}

// Response is one completed HTTP exchange.
type Response struct {
	Status int
	Body   []byte // at most MaxResponseBytes
}

// TransportError is an exchange that did not complete. Sent reports whether the request may
// have reached the server: everything but a failure before a connection was ready for it (a
// failed dial, a failed TLS handshake).
type TransportError struct {
	Err  error
	Sent bool
}

func (e *TransportError) Error() string { return e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// NotSent reports whether err proves the request never left: a failed dial or TLS handshake.
func NotSent(err error) bool {
	var te *TransportError
	return errors.As(err, &te) && !te.Sent
}

// SettleFailure is Settle's answer (see facilitator.Facilitator) when the settle exchange failed
// with err, Do's error: a request that never left is an error, nothing was submitted and the
// client may be answered "not charged"; any other failure is an unknown outcome, since the
// facilitator may have moved the money. name prefixes the error ("okx", "httpx402").
func SettleFailure(name, network string, err error) (facilitator.SettleResult, error) {
	if NotSent(err) {
		return facilitator.SettleResult{}, fmt.Errorf("%s settle not sent: %w", name, err)
	}
	return facilitator.Unknown("", network, "", "settle response lost: %v", err), nil
}

// RedirectError is a 3xx answer. Redirects are never followed: a settle sent again to another
// URL could move money twice, and the request's credentials would go to whatever host the
// Location names. The request did arrive, so it comes wrapped in a TransportError with Sent.
type RedirectError struct {
	Status int
	// Host is the host the redirect pointed to, for diagnosis (the rest of the URL is not kept).
	Host string
}

func (e *RedirectError) Error() string {
	if e.Host == "" {
		return fmt.Sprintf("answered HTTP %d (a redirect; not followed)", e.Status)
	}
	return fmt.Sprintf("answered HTTP %d (a redirect to %s; not followed)", e.Status, e.Host)
}

// noRedirects makes an http.Client hand back a 3xx response instead of following it.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Do makes exactly one exchange. Use it for calls that may move money (settle).
func (c *Caller) Do(ctx context.Context, method, requestPath string, body []byte) (Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+requestPath, rd)
	if err != nil {
		return Response{}, fmt.Errorf("%s: build request: %w", c.Name, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Authorize != nil {
		c.Authorize(req, requestPath, body)
	}
	// A copy of the client (a few words): the caller's keeps its own redirect policy.
	client := http.Client{Timeout: DefaultTimeout}
	if c.Client != nil {
		client = *c.Client
	}
	client.CheckRedirect = noRedirects
	path, _, _ := strings.Cut(requestPath, "?")
	var conn connTrace
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), conn.trace()))
	resp, err := client.Do(req)
	if err != nil {
		sent := !conn.notSent(err)
		// The *url.Error wrapper only repeats the URL; the message stays short without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Response{}, &TransportError{Err: fmt.Errorf("%s: %s %s: %w", c.Name, method, path, err), Sent: sent}
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		re := &RedirectError{Status: resp.StatusCode}
		if loc, err := resp.Location(); err == nil {
			re.Host = loc.Host
		}
		return Response{}, &TransportError{Err: fmt.Errorf("%s: %s %s: %w", c.Name, method, path, re), Sent: true}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		return Response{}, &TransportError{Err: fmt.Errorf("%s: read %s response: %w", c.Name, path, err), Sent: true}
	}
	return Response{Status: resp.StatusCode, Body: data}, nil
}

// DoIdempotent repeats Do, with backoff, after a transport error, 429 or 5xx, up to
// MaxAttempts. Use it only for calls without side effects (verify, supported, status); each
// attempt is authorized afresh.
func (c *Caller) DoIdempotent(ctx context.Context, method, requestPath string, body []byte) (Response, error) {
	attempts, backoff := c.MaxAttempts, c.RetryBackoff
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	if backoff <= 0 {
		backoff = DefaultRetryBackoff
	}
	for attempt := 1; ; attempt++ {
		resp, err := c.Do(ctx, method, requestPath, body)
		if attempt >= attempts || !retryable(resp, err) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return resp, err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// connTrace records whether the transport looked for a connection and whether it got one. A
// request is written only to a connection it got, so a transport that looked and got none
// (DNS, dial, proxy or TLS handshake failed: a bad certificate, a handshake alert, a server
// that does not speak TLS) never sent a byte of it.
type connTrace struct {
	getConn, gotConn atomic.Bool
}

func (t *connTrace) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) { t.getConn.Store(true) },
		GotConn: func(httptrace.GotConnInfo) { t.gotConn.Store(true) },
	}
}

// notSent reports whether the failed exchange never wrote the request: the transport asked for
// a connection and none was handed to the request. For a transport that reports no trace
// events, only a failed dial proves it.
func (t *connTrace) notSent(err error) bool {
	if t.getConn.Load() {
		return !t.gotConn.Load()
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryable reports whether an idempotent call should be repeated after this outcome. A
// redirect would only be answered again.
func retryable(resp Response, err error) bool {
	if err != nil {
		var te *TransportError
		var re *RedirectError
		return errors.As(err, &te) && !errors.As(err, &re)
	}
	return resp.Status == http.StatusTooManyRequests || resp.Status >= 500
}
