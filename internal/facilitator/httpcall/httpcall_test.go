package httpcall

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	_ = ln.Close()
	c := &Caller{Name: "test", BaseURL: closed, MaxAttempts: 2, RetryBackoff: time.Millisecond}
	_, err = c.Do(ctx, http.MethodPost, "/settle", []byte(`{}`))
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
