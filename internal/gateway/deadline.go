package gateway

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// writeSlice is the most a single write to the client may carry under one write deadline: a
// large buffered body is written in slices so that a slow reader that keeps reading (at least
// writeSlice per idle period) is served, while one that stops is cut.
const writeSlice = 32 << 10

// connDeadlines manages the client connection's deadlines while the handler runs:
//
//   - every write to the client must complete within idle of its start (the idle write
//     timeout): a reader that stops reading is cut after idle, and a stream that keeps moving
//     is never cut, however long it lasts;
//   - the server's ReadTimeout bounds reading the request; once the body is consumed (or there
//     is none) the read deadline is lifted, because net/http's background read would otherwise
//     hit it and cancel the request's context in the middle of a long answer.
//
// It wraps the ResponseWriter (Flush and Unwrap keep http.ResponseController and the streaming
// ReverseProxy working) and the request body. Deadlines are only touched while the handler
// runs: after it returns the connection may serve another request.
type connDeadlines struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration // 0: no write deadline

	mu        sync.Mutex
	done      bool // the handler returned
	broken    bool // the writer does not support deadlines (a test recorder)
	bodyTouch bool // the body was read once (an Expect: 100-continue answer is written then)
}

// withDeadlines wraps w and r.Body (in place); call finish when the handler returns, before
// net/http flushes the rest of the response.
func withDeadlines(w http.ResponseWriter, r *http.Request, idle time.Duration) *connDeadlines {
	d := &connDeadlines{ResponseWriter: w, rc: http.NewResponseController(w), idle: idle}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		d.liftReadDeadline()
	} else {
		r.Body = &deadlineBody{ReadCloser: r.Body, d: d}
	}
	d.extend()
	return d
}

// extend starts a new idle period for the next write.
func (d *connDeadlines) extend() {
	if d.idle <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done || d.broken {
		return
	}
	if err := d.rc.SetWriteDeadline(time.Now().Add(d.idle)); errors.Is(err, http.ErrNotSupported) {
		d.broken = true
	}
}

func (d *connDeadlines) liftReadDeadline() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done || d.broken {
		return
	}
	if err := d.rc.SetReadDeadline(time.Time{}); errors.Is(err, http.ErrNotSupported) {
		d.broken = true
	}
}

// finish gives the final flush net/http makes after the handler a fresh idle period, and stops
// all further deadline changes.
func (d *connDeadlines) finish() {
	d.extend()
	d.mu.Lock()
	d.done = true
	d.mu.Unlock()
}

// Write writes p in slices, each with its own idle period.
func (d *connDeadlines) Write(p []byte) (int, error) {
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
func (d *connDeadlines) Flush() {
	d.extend()
	_ = d.rc.Flush()
}

// Unwrap lets http.ResponseController reach the server's writer (hijack for upgrades).
func (d *connDeadlines) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// deadlineBody notices the first read (net/http may answer "100 Continue" then, a write) and
// the end of the body. The transport may read it on its own goroutine.
type deadlineBody struct {
	io.ReadCloser
	d *connDeadlines
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	b.d.mu.Lock()
	first := !b.d.bodyTouch
	b.d.bodyTouch = true
	b.d.mu.Unlock()
	if first {
		b.d.extend()
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.d.liftReadDeadline()
	}
	return n, err
}
