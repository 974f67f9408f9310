// Package jwks caches one issuer's JSON Web Key Set: it fetches the set over HTTP with a timeout
// and a size cap, refreshes it in the background, and refetches on an unknown kid at most once
// per minimum interval, however many requests ask at once, so that a flood of made-up kids
// costs the issuer one fetch per interval. A failed fetch keeps the keys already known.
package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxBytes caps a JWKS response body; real sets are a few KiB.
const DefaultMaxBytes = 1 << 20

// Results of a fetch, the values OnFetch receives (a bounded set, for a metrics label).
const (
	ResultOK       = "ok"
	ResultNetwork  = "network_error"
	ResultTimeout  = "timeout"
	ResultStatus   = "http_status"
	ResultTooLarge = "too_large"
	ResultInvalid  = "invalid"
)

// Errors of Lookup.
var (
	// ErrUnknownKID: no key with the token's kid, even after a refetch (or the refetch was not
	// due yet).
	ErrUnknownKID = errors.New("no key with this kid")
	// ErrKIDRequired: the token names no kid and the set has several keys.
	ErrKIDRequired = errors.New("the token has no kid and the issuer has several keys")
	// ErrKeyMismatch: the key with this kid does not serve the token's algorithm.
	ErrKeyMismatch = errors.New("the key with this kid does not serve the token's algorithm")
	// ErrUnavailable: no key set could be fetched yet.
	ErrUnavailable = errors.New("the issuer's keys could not be fetched")
)

// Options configure a Set.
type Options struct {
	// URL serves the JWK Set.
	URL string
	// Client fetches it (nil: a client of its own). Set copies it and replaces its redirect
	// policy: redirects are followed only within URL's origin.
	Client *http.Client
	// RefreshInterval: Run refetches the set this often.
	RefreshInterval time.Duration
	// MinRefreshInterval: two fetches never start closer together than this (Refresh aside).
	MinRefreshInterval time.Duration
	// FetchTimeout bounds one fetch, body included.
	FetchTimeout time.Duration
	// MaxBytes caps the response body (0: DefaultMaxBytes).
	MaxBytes int64
	// OnFetch, if set, is called after each fetch with one of the Result* values and the number
	// of usable keys now cached.
	OnFetch func(result string, keys int)
	// Logger receives fetch failures (nil: discarded).
	Logger *slog.Logger
}

// Set is one issuer's cached key set. Its methods are safe for concurrent use.
type Set struct {
	opts   Options
	client *http.Client
	keys   atomic.Pointer[keySet]

	mu        sync.Mutex
	lastStart time.Time     // when the last fetch started
	inflight  chan struct{} // closed when the running fetch ends; nil when none runs
	lastErr   error         // the last fetch's error
}

// keySet is an immutable snapshot of fetched keys.
type keySet struct {
	all   []*Key
	byKID map[string][]*Key
}

// New returns a Set that has fetched nothing yet: call Run (or Refresh) to fetch.
func New(opts Options) (*Set, error) {
	if opts.URL == "" {
		return nil, errors.New("jwks: URL is required")
	}
	if opts.RefreshInterval <= 0 || opts.MinRefreshInterval <= 0 || opts.FetchTimeout <= 0 {
		return nil, errors.New("jwks: RefreshInterval, MinRefreshInterval and FetchTimeout must be positive")
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var c http.Client
	if opts.Client != nil {
		c = *opts.Client
	}
	c.CheckRedirect = sameOrigin
	return &Set{opts: opts, client: &c}, nil
}

// sameOrigin follows at most three redirects, none of them to another scheme or host: the keys
// must come from the origin the configuration names.
func sameOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("too many redirects")
	}
	if o := via[0].URL; req.URL.Scheme != o.Scheme || req.URL.Host != o.Host {
		return fmt.Errorf("redirect to another origin (%s://%s) refused", req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// URL is the set's JWKS URL.
func (s *Set) URL() string { return s.opts.URL }

// Ready reports whether a fetch has succeeded at least once.
func (s *Set) Ready() bool { return s.keys.Load() != nil }

// Err is the last fetch's error (nil after a success or before any fetch).
func (s *Set) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Len is the number of usable keys.
func (s *Set) Len() int {
	if ks := s.keys.Load(); ks != nil {
		return len(ks.all)
	}
	return 0
}

// Lookup returns the key for a token's kid and alg. A kid the set does not know triggers one
// refetch when the last fetch started at least MinRefreshInterval ago (or waits for a fetch
// already running), then looks again; concurrent lookups share that one fetch.
func (s *Set) Lookup(ctx context.Context, kid, alg string) (*Key, error) {
	k, err := s.keys.Load().find(kid, alg)
	if !errors.Is(err, ErrUnknownKID) && !errors.Is(err, ErrUnavailable) {
		return k, err
	}
	if werr := s.fetch(ctx, true); werr != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return s.keys.Load().find(kid, alg)
}

func (ks *keySet) find(kid, alg string) (*Key, error) {
	if ks == nil {
		return nil, ErrUnavailable
	}
	var cands []*Key
	switch {
	case kid != "":
		cands = ks.byKID[kid]
	case len(ks.all) > 1:
		return nil, ErrKIDRequired
	default:
		cands = ks.all
	}
	if len(cands) == 0 {
		return nil, ErrUnknownKID
	}
	for _, k := range cands {
		if k.Fits(alg) {
			return k, nil
		}
	}
	return nil, ErrKeyMismatch
}

// Refresh fetches the set now, whenever the last fetch was (or waits for the one running), and
// returns that fetch's error.
func (s *Set) Refresh(ctx context.Context) error { return s.fetch(ctx, false) }

// Run fetches the set at once, then every RefreshInterval after the last fetch (every
// MinRefreshInterval while no fetch has succeeded), until ctx ends.
func (s *Set) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		interval := s.opts.RefreshInterval
		if !s.Ready() {
			interval = s.opts.MinRefreshInterval
		}
		s.mu.Lock()
		wait := time.Until(s.lastStart.Add(interval))
		s.mu.Unlock()
		if wait <= 0 {
			_ = s.fetch(ctx, true)
			wait = interval
		}
		t.Reset(wait)
	}
}

// fetch starts a fetch, or joins the one running, and waits for it (or for ctx). With spaced, it
// starts none when the last one started less than MinRefreshInterval ago, and returns nil. The
// fetch itself does not stop with ctx: other callers may be waiting on it.
func (s *Set) fetch(ctx context.Context, spaced bool) error {
	s.mu.Lock()
	ch := s.inflight
	if ch == nil {
		if spaced && !s.lastStart.IsZero() && time.Since(s.lastStart) < s.opts.MinRefreshInterval {
			s.mu.Unlock()
			return nil
		}
		ch = make(chan struct{})
		s.inflight, s.lastStart = ch, time.Now()
		go s.run(ch)
	}
	s.mu.Unlock()
	select {
	case <-ch:
		return s.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Set) run(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.FetchTimeout)
	keys, result, err := s.get(ctx)
	cancel()
	if err == nil {
		ks := &keySet{all: keys, byKID: make(map[string][]*Key, len(keys))}
		for _, k := range keys {
			ks.byKID[k.ID] = append(ks.byKID[k.ID], k)
		}
		s.keys.Store(ks)
	} else {
		s.opts.Logger.Warn("fetching the issuer's keys failed; the keys already known stay in use",
			"jwks", s.opts.URL, "result", result, "error", err)
	}
	if s.opts.OnFetch != nil {
		s.opts.OnFetch(result, s.Len())
	}
	s.mu.Lock()
	s.lastErr, s.inflight = err, nil
	s.mu.Unlock()
	close(done)
}

func (s *Set) get(ctx context.Context) ([]*Key, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.opts.URL, nil)
	if err != nil {
		return nil, ResultInvalid, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, netResult(err), fmt.Errorf("jwks fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, ResultStatus, fmt.Errorf("jwks fetch: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxBytes+1))
	if err != nil {
		return nil, netResult(err), fmt.Errorf("jwks fetch: reading the body: %w", err)
	}
	if int64(len(body)) > s.opts.MaxBytes {
		return nil, ResultTooLarge, fmt.Errorf("jwks fetch: body exceeds %d bytes", s.opts.MaxBytes)
	}
	keys, skipped, err := parseSet(body)
	for _, e := range skipped {
		s.opts.Logger.Info("ignoring a malformed key of the issuer's set", "jwks", s.opts.URL, "error", e)
	}
	if err != nil {
		return nil, ResultInvalid, fmt.Errorf("jwks: %w", err)
	}
	return keys, ResultOK, nil
}

func netResult(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return ResultTimeout
	}
	return ResultNetwork
}
