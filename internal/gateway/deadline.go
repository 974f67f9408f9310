package gateway

import (
	"errors"
	"net/http"
	"sync"
	"time"
)

// writeSlice is the most a single write to the client may carry under one write deadline: a
// large buffered body is written in slices so that a slow reader that keeps reading (at least
// writeSlice per idle period) is served, while one that stops is cut.
const writeSlice = 32 << 10

// idleWriter bounds every write to the client: each must complete within idle of its start.
// A reader that stops reading is cut after idle; a stream that keeps moving is never cut,
// however long it lasts (a server WriteTimeout would cut it). The request's ReadTimeout needs
// no such care: net/http lifts the read deadline once the body has been read.
//
// Until the first write there is no deadline (net/http clears it after every request), so an
// "Expect: 100-continue" answer sent when the body is first read, however late, is not cut.
// Flush and Unwrap keep http.ResponseController and the streaming ReverseProxy working.
// Deadlines are only touched while the handler runs: after it returns the connection may serve
// another request.
type idleWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration

	mu     sync.Mutex
	done   bool      // the handler returned
	broken bool      // the writer does not support deadlines (a test recorder)
	armed  time.Time // when the deadline was last set
}

// withIdleWrites wraps w; call finish when the handler returns, before net/http flushes the
// rest of the response. With idle <= 0 the wrapper sets no deadline.
func withIdleWrites(w http.ResponseWriter, idle time.Duration) *idleWriter {
	return &idleWriter{ResponseWriter: w, rc: http.NewResponseController(w), idle: idle}
}

// extend starts a new idle period for the next write. A deadline set less than a sixteenth of
// the period ago is kept: every write still gets at least 15/16 of idle, and a small response
// (one write, then finish) moves the connection's timer once instead of twice.
func (d *idleWriter) extend() {
	if d.idle <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done || d.broken {
		return
	}
	now := time.Now()
	if !d.armed.IsZero() && now.Sub(d.armed) < d.idle/16 {
		return
	}
	d.armed = now
	if err := d.rc.SetWriteDeadline(now.Add(d.idle)); errors.Is(err, http.ErrNotSupported) {
		d.broken = true
	}
}

// finish gives the final flush net/http makes after the handler a fresh idle period, and stops
// all further deadline changes.
func (d *idleWriter) finish() {
	d.extend()
	d.mu.Lock()
	d.done = true
	d.mu.Unlock()
}

// Write writes p in slices, each with its own idle period.
func (d *idleWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		d.extend()
		return d.ResponseWriter.Write(p)
	}
	n := 0
	for len(p) > 0 {
		d.extend()
		m, err := d.ResponseWriter.Write(p[:min(len(p), writeSlice)])
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

// Flush implements http.Flusher for the streaming proxy.
func (d *idleWriter) Flush() {
	d.extend()
	_ = d.rc.Flush()
}

// Unwrap lets http.ResponseController reach the server's writer (hijack for upgrades).
func (d *idleWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
