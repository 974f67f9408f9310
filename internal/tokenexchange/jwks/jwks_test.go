package jwks

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/testutil/oidcfake"
)

func newSet(t *testing.T, srv *oidcfake.Server, url string, min time.Duration, onFetch func(string, int)) *Set {
	t.Helper()
	s, err := New(Options{
		URL: url, Client: srv.Client(), RefreshInterval: time.Hour, MinRefreshInterval: min,
		FetchTimeout: 2 * time.Second, OnFetch: onFetch,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLookupFindsEachKeyTypeByKID(t *testing.T) {
	srv := oidcfake.New(t, oidcfake.Options{TLS: true})
	ten := srv.Tenant("issuer.example.com", oidcfake.TenantOptions{Algs: []string{oidcfake.RS256, oidcfake.ES256, oidcfake.ES384, oidcfake.EdDSA}})
	s := newSet(t, srv, ten.JWKSURL(), time.Hour, nil)
	if s.Ready() {
		t.Fatal("ready before any fetch")
	}
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 4 || !s.Ready() {
		t.Fatalf("Len = %d; want 4", s.Len())
	}
	for _, k := range ten.Keys() {
		got, err := s.Lookup(context.Background(), k.KID, k.Alg)
		if err != nil {
			t.Fatalf("%s: %v", k.Alg, err)
		}
		if got.ID != k.KID {
			t.Errorf("%s: got kid %s", k.Alg, got.ID)
		}
	}
	// A key serves only its own algorithm family (and the JWK's alg, when it names one).
	rsaKey, ecKey := ten.Key(oidcfake.RS256), ten.Key(oidcfake.ES256)
	for _, tc := range []struct{ kid, alg string }{
		{rsaKey.KID, "ES256"}, {rsaKey.KID, "EdDSA"}, {rsaKey.KID, "HS256"}, {rsaKey.KID, "PS256"},
		{ecKey.KID, "ES384"}, {ecKey.KID, "RS256"}, {ten.Key(oidcfake.EdDSA).KID, "ES256"},
	} {
		if _, err := s.Lookup(context.Background(), tc.kid, tc.alg); !errors.Is(err, ErrKeyMismatch) {
			t.Errorf("kid %s with alg %s: %v; want ErrKeyMismatch", tc.kid, tc.alg, err)
		}
	}
	if _, err := s.Lookup(context.Background(), "", "RS256"); !errors.Is(err, ErrKIDRequired) {
		t.Errorf("no kid, 4 keys: %v; want ErrKIDRequired", err)
	}
}

func TestLookupWithoutKIDUsesTheOnlyKey(t *testing.T) {
	srv := oidcfake.New(t, oidcfake.Options{})
	ten := srv.Tenant("127.0.0.1", oidcfake.TenantOptions{Algs: []string{oidcfake.EdDSA}})
	s := newSet(t, srv, ten.JWKSURL(), time.Hour, nil)
	k, err := s.Lookup(context.Background(), "", "EdDSA") // the first lookup fetches
	if err != nil || k.ID != ten.Key(oidcfake.EdDSA).KID {
		t.Fatalf("Lookup = %v, %v", k, err)
	}
}

func TestKeysNotForSignaturesAndBadKeysAreSkipped(t *testing.T) {
	srv := oidcfake.New(t, oidcfake.Options{})
	ten := srv.Tenant("127.0.0.1", oidcfake.TenantOptions{Algs: []string{oidcfake.RS256}})
	enc := ten.Key(oidcfake.RS256).JWK()
	enc["kid"], enc["use"] = "enc-key", "enc"
	ten.PublishRaw(enc)
	ops := ten.Key(oidcfake.RS256).JWK()
	ops["kid"], ops["key_ops"] = "wrap-key", []string{"wrapKey"}
	delete(ops, "use")
	ten.PublishRaw(ops)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	ten.PublishRaw(map[string]any{"kty": "RSA", "kid": "weak", "n": b64u(weak.N.Bytes()), "e": "AQAB"})
	ten.PublishRaw(map[string]any{"kty": "EC", "kid": "short", "crv": "P-256", "x": "AAAA", "y": "AAAA"})
	ten.PublishRaw(map[string]any{"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": b64u(make([]byte, 32)), "y": b64u(make([]byte, 32))})
	ten.PublishRaw(map[string]any{"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": b64u(make([]byte, 32))})
	ten.PublishRaw(map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})
	ten.PublishRaw("not an object")
	s := newSet(t, srv, ten.JWKSURL(), time.Hour, nil)
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d; want only the signing key", s.Len())
	}
	for _, kid := range []string{"enc-key", "wrap-key", "weak", "short", "off-curve", "x25519", "hmac"} {
		if _, err := s.Lookup(context.Background(), kid, "RS256"); !errors.Is(err, ErrUnknownKID) {
			t.Errorf("kid %s: %v; want ErrUnknownKID", kid, err)
		}
	}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// A flood of made-up kids from many goroutines costs at most one fetch per MinRefreshInterval.
func TestUnknownKIDFloodIsBounded(t *testing.T) {
	srv := oidcfake.New(t, oidcfake.Options{TLS: true})
	ten := srv.Tenant("flood.example.com", oidcfake.TenantOptions{Algs: []string{oidcfake.RS256}})
	const minInterval = 200 * time.Millisecond
	s := newSet(t, srv, ten.JWKSURL(), minInterval, nil)
	start := time.Now()
	var wg sync.WaitGroup
	var lookups atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := 0; time.Since(start) < time.Second; i++ {
				_, err := s.Lookup(context.Background(), fmt.Sprintf("made-up-%d-%d", g, i), "RS256")
				if !errors.Is(err, ErrUnknownKID) {
					t.Errorf("made-up kid: %v", err)
					return
				}
				lookups.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	max := 1 + int64(elapsed/minInterval)
	if got := ten.Fetches(); got > max || got < 1 {
		t.Fatalf("%d lookups in %s made %d fetches; want 1..%d", lookups.Load(), elapsed, got, max)
	}
	t.Logf("%d lookups of made-up kids in %s: %d fetches", lookups.Load(), elapsed.Round(time.Millisecond), ten.Fetches())
}

func TestRotationIsPickedUpOnTheNewKID(t *testing.T) {
	srv := oidcfake.New(t, oidcfake.Options{TLS: true})
	ten := srv.Tenant("rotating.example.com", oidcfake.TenantOptions{Algs: []string{oidcfake.RS256}})
	const minInterval = 100 * time.Millisecond
	s := newSet(t, srv, ten.JWKSURL(), minInterval, nil)
	old := ten.Key(oidcfake.RS256)
	if _, err := s.Lookup(context.Background(), old.KID, "RS256"); err != nil {
		t.Fatal(err)
	}
	fresh := ten.Rotate(oidcfake.RS256)
	time.Sleep(minInterval)
	for _, k := range []*oidcfake.Key{fresh, old} {
		if _, err := s.Lookup(context.Background(), k.KID, "RS256"); err != nil {
			t.Fatalf("kid %s after rotation: %v", k.KID, err)
		}
	}
	if n := ten.Fetches(); n != 2 {
		t.Errorf("fetches = %d; want 2", n)
	}
}

func TestRunRefreshesInTheBackground(t *testing.T) {
	srv := oidcfake.New(t, oidcfake.Options{})
	ten := srv.Tenant("127.0.0.1", oidcfake.TenantOptions{Algs: []string{oidcfake.ES256}})
	s, err := New(Options{URL: ten.JWKSURL(), Client: srv.Client(), RefreshInterval: 100 * time.Millisecond,
		MinRefreshInterval: 50 * time.Millisecond, FetchTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, s.Ready)
	fresh := ten.Rotate(oidcfake.ES256)
	waitFor(t, func() bool { return s.Len() == 2 })
	before := ten.Fetches()
	// No miss was needed: the refresh found it.
	if _, err := s.keys.Load().find(fresh.KID, "ES256"); err != nil {
		t.Fatal(err)
	}
	if before < 2 {
		t.Errorf("fetches = %d", before)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFailedRefreshKeepsTheKeys(t *testing.T) {
	srv := oidcfake.New(t, oidcfake.Options{TLS: true})
	ten := srv.Tenant("flaky.example.com", oidcfake.TenantOptions{Algs: []string{oidcfake.RS256}})
	var results []string
	var mu sync.Mutex
	s, err := New(Options{URL: ten.JWKSURL(), Client: srv.Client(), RefreshInterval: time.Hour,
		MinRefreshInterval: time.Millisecond, FetchTimeout: 300 * time.Millisecond, MaxBytes: 64 << 10,
		OnFetch: func(r string, _ int) { mu.Lock(); results = append(results, r); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	kid := ten.Key(oidcfake.RS256).KID
	failures := []struct {
		set  func()
		want string
	}{
		{func() { ten.SetStatus(http.StatusInternalServerError) }, ResultStatus},
		{func() { ten.SetStatus(0); ten.SetBody([]byte(`{"keys":[]}`)) }, ResultInvalid},
		{func() { ten.SetBody([]byte(`<html>`)) }, ResultInvalid},
		{func() { ten.SetBody([]byte(`{"keys":[` + strings.Repeat(" ", 70<<10) + `]}`)) }, ResultTooLarge},
		{func() { ten.SetBody(nil); ten.SetDelay(time.Second) }, ResultTimeout},
	}
	for _, f := range failures {
		f.set()
		if err := s.Refresh(ctx); err == nil {
			t.Fatalf("%s: refresh succeeded", f.want)
		}
		if _, err := s.Lookup(ctx, kid, "RS256"); err != nil {
			t.Fatalf("after a failed refresh (%s), the known key is gone: %v", f.want, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{ResultOK, ResultStatus, ResultInvalid, ResultInvalid, ResultTooLarge, ResultTimeout}
	if fmt.Sprint(results[:len(want)]) != fmt.Sprint(want) {
		t.Errorf("fetch results = %v; want %v first", results, want)
	}
}

func TestNoKeysYetIsUnavailable(t *testing.T) {
	srv := oidcfake.New(t, oidcfake.Options{})
	ten := srv.Tenant("127.0.0.1", oidcfake.TenantOptions{})
	ten.SetStatus(http.StatusBadGateway)
	s := newSet(t, srv, ten.JWKSURL(), time.Hour, nil)
	if _, err := s.Lookup(context.Background(), "any", "RS256"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Lookup = %v; want ErrUnavailable", err)
	}
	if s.Err() == nil || s.Ready() {
		t.Error("the failed fetch is not reported")
	}
}

func TestRedirectsStayOnTheOrigin(t *testing.T) {
	srv := oidcfake.New(t, oidcfake.Options{})
	ten := srv.Tenant("127.0.0.1", oidcfake.TenantOptions{Algs: []string{oidcfake.EdDSA}})
	var otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		_, _ = w.Write(ten.JWKS())
	}))
	defer other.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/jwks", http.StatusFound)
		case "/jwks":
			_, _ = w.Write(ten.JWKS())
		case "/away":
			http.Redirect(w, r, other.URL+"/jwks", http.StatusFound)
		}
	}))
	defer redir.Close()
	for path, ok := range map[string]bool{"/moved": true, "/away": false} {
		s, err := New(Options{URL: redir.URL + path, Client: http.DefaultClient, RefreshInterval: time.Hour,
			MinRefreshInterval: time.Hour, FetchTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Refresh(context.Background()); (err == nil) != ok {
			t.Errorf("%s: refresh error %v; want success %v", path, err, ok)
		}
	}
	if otherHits.Load() != 0 {
		t.Error("a redirect to another origin was followed")
	}
}

// A waiting lookup gives up with its context; the fetch goes on for the others.
func TestLookupHonoursItsContext(t *testing.T) {
	srv := oidcfake.New(t, oidcfake.Options{})
	ten := srv.Tenant("127.0.0.1", oidcfake.TenantOptions{Algs: []string{oidcfake.EdDSA}})
	ten.SetDelay(300 * time.Millisecond)
	s := newSet(t, srv, ten.JWKSURL(), time.Hour, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Lookup(ctx, "x", "EdDSA"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lookup = %v; want the context's deadline", err)
	}
	waitFor(t, s.Ready)
}
