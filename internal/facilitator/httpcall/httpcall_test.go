package httpcall

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/testutil/freeport"
)

// server answers with the statuses in turn (the last one repeated) and records what it got.
type server struct {
	mu       sync.Mutex
	statuses []int
	bodies   []string
	auth     []string
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	s.auth = append(s.auth, r.Header.Get("X-Auth"))
	status := s.statuses[min(len(s.bodies), len(s.statuses))-1]
	s.mu.Unlock()
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func (s *server) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func newCaller(t *testing.T, s http.Handler) (*Caller, *[]string) {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	var paths []string
	var mu sync.Mutex
	return &Caller{Name: "test", BaseURL: ts.URL, MaxAttempts: 3, RetryBackoff: time.Millisecond,
		Authorize: func(req *http.Request, requestPath string, body []byte) {
			mu.Lock()
			paths = append(paths, requestPath)
			mu.Unlock()
			req.Header.Set("X-Auth", requestPath+"|"+string(body))
		}}, &paths
}

func TestDoIdempotentRetriesOnlyWhatMayPassOnASecondTry(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		statuses []int
		want     int // attempts
		status   int // final status
	}{
		{"5xx then success", []int{500, 200}, 2, 200},
		{"429 then success", []int{429, 200}, 2, 200},
		{"5xx every time stops at MaxAttempts", []int{503}, 3, 503},
		{"a refusal is final", []int{400, 200}, 1, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &server{statuses: tc.statuses}
			c, _ := newCaller(t, s)
			resp, err := c.DoIdempotent(ctx, http.MethodPost, "/verify?x=1", []byte(`{"a":1}`))
			if err != nil || resp.Status != tc.status || string(resp.Body) != `{"ok":true}` {
				t.Fatalf("resp %d %q, err %v", resp.Status, resp.Body, err)
			}
			if s.attempts() != tc.want {
				t.Errorf("%d attempts, want %d", s.attempts(), tc.want)
			}
			for i := range s.attempts() {
				// Every attempt carries the same body, authorized afresh over path, query and body.
				if s.bodies[i] != `{"a":1}` || s.auth[i] != `/verify?x=1|{"a":1}` {
					t.Errorf("attempt %d: body %q auth %q", i, s.bodies[i], s.auth[i])
				}
			}
		})
	}
}

func TestDoMakesExactlyOneAttempt(t *testing.T) {
	s := &server{statuses: []int{502, 200}}
	c, _ := newCaller(t, s)
	resp, err := c.Do(context.Background(), http.MethodPost, "/settle", []byte(`{}`))
	if err != nil || resp.Status != 502 || s.attempts() != 1 {
		t.Fatalf("status %d, err %v, %d attempts: a settle must never be repeated", resp.Status, err, s.attempts())
	}
}

func TestTransportErrorsSayWhetherTheRequestMayHaveArrived(t *testing.T) {
	ctx := context.Background()
	// Nothing listens: the dial fails, the request never left.
	closed := "http://" + freeport.MustAddr(t)
	c := &Caller{Name: "test", BaseURL: closed, MaxAttempts: 2, RetryBackoff: time.Millisecond}
	_, err := c.Do(ctx, http.MethodPost, "/settle", []byte(`{}`))
	var te *TransportError
	if !errors.As(err, &te) || te.Sent || !NotSent(err) || !strings.HasPrefix(err.Error(), "test: POST /settle: ") {
		t.Errorf("dial failure: %v (%#v), want a TransportError not sent", err, te)
	}

	// The server takes the request and drops the connection: it may have acted on it.
	hangUp := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	c, _ = newCaller(t, hangUp)
	_, err = c.Do(ctx, http.MethodPost, "/settle", []byte(`{}`))
	if !errors.As(err, &te) || !te.Sent || NotSent(err) {
		t.Errorf("dropped connection: %v, want a TransportError that may have been sent", err)
	}
	if NotSent(errors.New("other")) || NotSent(nil) {
		t.Error("NotSent holds for an error that is no TransportError")
	}
}

func TestResponseBodiesAreBounded(t *testing.T) {
	big := bytes.Repeat([]byte("x"), MaxResponseBytes+10)
	c, _ := newCaller(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(big) }))
	resp, err := c.Do(context.Background(), http.MethodGet, "/supported", nil)
	if err != nil || len(resp.Body) != MaxResponseBytes {
		t.Fatalf("read %d bytes, err %v; want exactly %d", len(resp.Body), err, MaxResponseBytes)
	}
}

func TestDoIdempotentStopsWhenItsContextEnds(t *testing.T) {
	s := &server{statuses: []int{503}}
	c, _ := newCaller(t, s)
	c.RetryBackoff = time.Hour // it must not wait this out
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for s.attempts() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	// The cancel lands while the first answer is on its way or during the backoff: either way
	// the call ends with that answer or the context's error, after one attempt.
	resp, err := c.DoIdempotent(ctx, http.MethodGet, "/supported", nil)
	if (err == nil && resp.Status != 503) || (err != nil && !errors.Is(err, context.Canceled)) || s.attempts() != 1 {
		t.Fatalf("status %d, err %v, %d attempts", resp.Status, err, s.attempts())
	}
}

// recorder counts the requests that reach it and keeps their headers.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
}

func (s *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func (s *recorder) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.headers)
}

func TestRedirectsAreNeverFollowed(t *testing.T) {
	target := &recorder{}
	targetSrv := httptest.NewServer(target)
	t.Cleanup(targetSrv.Close)
	for _, status := range []int{301, 302, 303, 307, 308, 300} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var hits atomic.Int64
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				http.Redirect(w, r, targetSrv.URL+r.URL.RequestURI(), status)
			}))
			t.Cleanup(front.Close)
			// A given client that would follow redirects (the zero CheckRedirect does).
			given := &http.Client{Timeout: 10 * time.Second}
			c := &Caller{Name: "test", BaseURL: front.URL, Client: given, MaxAttempts: 3, RetryBackoff: time.Millisecond,
				Authorize: func(req *http.Request, _ string, _ []byte) { req.Header.Set("X-Api-Key", "k-secret") }}

			_, err := c.Do(context.Background(), http.MethodPost, "/settle", []byte(`{}`))
			var te *TransportError
			var re *RedirectError
			if !errors.As(err, &te) || !te.Sent || NotSent(err) || !errors.As(err, &re) || re.Status != status {
				t.Fatalf("settle answered %d: %v; want a redirect error that may have been sent", status, err)
			}
			if re.Host != strings.TrimPrefix(targetSrv.URL, "http://") {
				t.Errorf("redirect host %q", re.Host)
			}
			// Redirects are not retried either: the answer would be the same.
			if _, err := c.DoIdempotent(context.Background(), http.MethodPost, "/verify", []byte(`{}`)); !errors.As(err, &re) {
				t.Fatalf("verify: %v", err)
			}
			if hits.Load() != 2 {
				t.Errorf("the redirecting server saw %d requests, want 2 (one settle, one verify)", hits.Load())
			}
			if given.CheckRedirect != nil {
				t.Error("the caller's client was modified")
			}
		})
	}
	if n := target.count(); n != 0 {
		t.Fatalf("the redirect target received %d requests (headers %v)", n, target.headers)
	}
}

func TestTLSHandshakeFailuresAreNotSent(t *testing.T) {
	ctx := context.Background()
	reached := &recorder{}
	tlsOld := httptest.NewUnstartedServer(reached)
	tlsOld.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	tlsOld.StartTLS()
	t.Cleanup(tlsOld.Close)
	untrusted := httptest.NewTLSServer(reached)
	t.Cleanup(untrusted.Close)
	plain := httptest.NewServer(reached)
	t.Cleanup(plain.Close)

	for _, tc := range []struct {
		name, url string
		want      func(error) bool
	}{
		// The client does not trust the server's certificate: it aborts the handshake.
		{"untrusted certificate", untrusted.URL, func(err error) bool {
			var cv *tls.CertificateVerificationError
			return errors.As(err, &cv)
		}},
		// The server sends a handshake alert (no protocol version in common).
		{"handshake alert", tlsOld.URL, func(err error) bool { return strings.Contains(err.Error(), "protocol version") }},
		// The server does not speak TLS at all: a record header error.
		{"record header", "https://" + notTLS(t), func(err error) bool {
			var rh tls.RecordHeaderError
			return errors.As(err, &rh)
		}},
		// An HTTP server on an https URL (net/http rewords that record header error).
		{"plain HTTP", "https://" + strings.TrimPrefix(plain.URL, "http://"), func(err error) bool {
			return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Caller{Name: "test", BaseURL: tc.url, Client: &http.Client{Timeout: 10 * time.Second}}
			_, err := c.Do(ctx, http.MethodPost, "/settle", []byte(`{}`))
			if !NotSent(err) || !tc.want(err) {
				t.Fatalf("err = %v; want a %s that was not sent", err, tc.name)
			}
		})
	}
	if n := reached.count(); n != 0 {
		t.Fatalf("%d requests reached a handler", n)
	}
	// The same server with its certificate trusted is reached: the classification above is
	// about the handshake, not the server.
	c := &Caller{Name: "test", BaseURL: untrusted.URL, Client: untrusted.Client()}
	if resp, err := c.Do(ctx, http.MethodPost, "/settle", []byte(`{}`)); err != nil || resp.Status != 200 || reached.count() != 1 {
		t.Fatalf("trusted: %d %v", resp.Status, err)
	}
}

// notTLS listens and answers every connection with bytes that are no TLS record.
func notTLS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Read(make([]byte, 4096)) // the ClientHello
				_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
				_, _ = io.Copy(io.Discard, c) // until the client hangs up
			}()
		}
	}()
	return ln.Addr().String()
}

func TestSettleFailureChargesOnlyWhatMayHaveArrived(t *testing.T) {
	dial := &TransportError{Err: errors.New("test: POST /settle: connection refused"), Sent: false}
	res, err := SettleFailure("test", "eip155:196", dial)
	if !errors.Is(err, dial) || res.State != "" || !strings.HasPrefix(err.Error(), "test settle not sent: ") {
		t.Errorf("not sent: %+v, %v; want an error (nothing submitted)", res, err)
	}
	for _, lost := range []error{
		&TransportError{Err: errors.New("test: POST /settle: EOF"), Sent: true},
		errors.New("not a transport error"),
	} {
		res, err := SettleFailure("test", "eip155:196", lost)
		if err != nil || res.State != facilitator.StateUnknown || res.Network != "eip155:196" ||
			res.Message != "settle response lost: "+lost.Error() {
			t.Errorf("%v: %+v, %v; want an unknown outcome", lost, res, err)
		}
	}
}
