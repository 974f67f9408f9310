// Package oidcfake is a fake OIDC issuer for tests: an httptest server that serves JWK Sets for
// several tenants, told apart by the Host they are addressed by, each with its own iss and keys
// (RS256, ES256, EdDSA), key rotation, token minting with any algorithm, kid or key, helpers for
// the usual forged tokens, and a count of JWKS fetches.
//
// With TLS, the server mints a certificate for whatever host name a client asks for, signed by
// its own CA, and Client returns an HTTP client that trusts that CA and sends every request to
// the server, whatever its host: tests can use real provider URLs
// (https://api.workos.com/sso/jwks/client_x) against the fake.
package oidcfake

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Options configure a Server.
type Options struct {
	// TLS serves https with certificates for any host name, signed by the server's CA.
	TLS bool
}

// Server is a running fake issuer.
type Server struct {
	srv   *httptest.Server
	tls   bool
	pool  *x509.CertPool
	ca    *x509.Certificate
	caKey crypto.Signer

	certMu sync.Mutex
	certs  map[string]*tls.Certificate

	mu      sync.Mutex
	tenants map[string]*Tenant // by host name, lower case, no port

	fetches atomic.Int64
	tb      testing.TB
}

// New starts a server; it stops when the test ends.
func New(tb testing.TB, o Options) *Server {
	tb.Helper()
	s := &Server{tls: o.TLS, certs: map[string]*tls.Certificate{}, tenants: map[string]*Tenant{}, tb: tb}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if o.TLS {
		if err := s.newCA(); err != nil {
			tb.Fatalf("oidcfake: %v", err)
		}
		ipCert, err := s.leaf("127.0.0.1")
		if err != nil {
			tb.Fatalf("oidcfake: %v", err)
		}
		// Certificates answers clients that send no SNI (IP addresses); GetCertificate the rest.
		s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*ipCert}, GetCertificate: s.getCertificate}
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	tb.Cleanup(s.srv.Close)
	return s
}

// URL is the server's base URL (scheme://127.0.0.1:port).
func (s *Server) URL() string { return s.srv.URL }

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.srv.Listener.Addr().String() }

// Fetches counts JWKS responses of every tenant.
func (s *Server) Fetches() int64 { return s.fetches.Load() }

// Transport sends every request to the server, whatever its host and port, and trusts the
// server's CA.
func (s *Server) Transport() *http.Transport {
	addr := s.Addr()
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 16,
	}
	if s.tls {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// Client is an HTTP client with Transport; its idle connections close when the test ends.
func (s *Server) Client() *http.Client {
	tr := s.Transport()
	s.tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// CertPool holds the server's CA (nil without TLS).
func (s *Server) CertPool() *x509.CertPool { return s.pool }

func (s *Server) newCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "oidcfake CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if s.ca, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	s.caKey, s.pool = key, x509.NewCertPool()
	s.pool.AddCert(s.ca)
	return nil
}

func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := hello.ServerName
	if name == "" {
		name = "127.0.0.1"
	}
	return s.leaf(strings.ToLower(name))
}

// leaf returns (and caches) a certificate for one host name or IP address.
func (s *Server) leaf(name string) (*tls.Certificate, error) {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	if c := s.certs[name]; c != nil {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(len(s.certs) + 2)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, &key.PublicKey, s.caKey)
	if err != nil {
		return nil, fmt.Errorf("certificate for %s: %w", name, err)
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	s.certs[name] = c
	return c, nil
}

// TenantOptions configure a tenant.
type TenantOptions struct {
	// Issuer is the iss the tenant's tokens carry (default: BaseURL).
	Issuer string
	// JWKSPaths serve the tenant's JWK Set (default: /.well-known/jwks.json).
	JWKSPaths []string
	// Algs are the algorithms of the initial keys, one key each (default: RS256, ES256, EdDSA).
	Algs []string
}

// Tenant adds (or replaces) the tenant addressed as host (a host name, no port).
func (s *Server) Tenant(host string, o TenantOptions) *Tenant {
	s.tb.Helper()
	host = strings.ToLower(host)
	t := &Tenant{Host: host, srv: s, paths: o.JWKSPaths, current: map[string]*Key{}}
	if len(t.paths) == 0 {
		t.paths = []string{"/.well-known/jwks.json"}
	}
	t.Issuer = o.Issuer
	if t.Issuer == "" {
		t.Issuer = t.BaseURL()
	}
	algs := o.Algs
	if algs == nil {
		algs = []string{RS256, ES256, EdDSA}
	}
	for _, a := range algs {
		t.AddKey(a)
	}
	s.mu.Lock()
	s.tenants[host] = t
	s.mu.Unlock()
	return t
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	s.mu.Lock()
	t := s.tenants[strings.ToLower(host)]
	s.mu.Unlock()
	if t == nil {
		http.Error(w, "no tenant for host "+host, http.StatusNotFound)
		return
	}
	t.serve(w, r)
}

// Tenant is one issuer of the fake server.
type Tenant struct {
	// Host addresses the tenant; Issuer is its iss.
	Host, Issuer string

	srv   *Server
	paths []string

	mu      sync.Mutex
	keys    []*Key          // published, oldest first
	current map[string]*Key // per algorithm, the key Mint uses by default
	extra   []json.RawMessage
	delay   time.Duration
	status  int
	body    []byte

	fetches atomic.Int64
}

// BaseURL is https://host with TLS; without, http://host, with the server's port when host is
// loopback (so it is reachable without Client's routing).
func (t *Tenant) BaseURL() string {
	if t.srv.tls {
		return "https://" + t.Host
	}
	if t.Host == "127.0.0.1" || t.Host == "localhost" {
		_, port, _ := net.SplitHostPort(t.srv.Addr())
		return "http://" + net.JoinHostPort(t.Host, port)
	}
	return "http://" + t.Host
}

// JWKSURL is the URL of the tenant's first JWKS path.
func (t *Tenant) JWKSURL() string { return t.BaseURL() + t.paths[0] }

// Fetches counts the tenant's JWKS responses (any status).
func (t *Tenant) Fetches() int64 { return t.fetches.Load() }

// AddKey publishes a new key for alg and makes it the one Mint uses for alg; older keys stay
// published.
func (t *Tenant) AddKey(alg string) *Key {
	t.srv.tb.Helper()
	k, err := NewKey(alg)
	if err != nil {
		t.srv.tb.Fatalf("oidcfake: %v", err)
	}
	t.Publish(k)
	return k
}

// Rotate is AddKey: a rotation publishes the new key next to the old.
func (t *Tenant) Rotate(alg string) *Key { return t.AddKey(alg) }

// Publish adds k to the tenant's set and makes it current for its algorithm.
func (t *Tenant) Publish(k *Key) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys = append(t.keys, k)
	t.current[k.Alg] = k
}

// Remove unpublishes the key with kid.
func (t *Tenant) Remove(kid string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, k := range t.keys {
		if k.KID == kid {
			t.keys = append(t.keys[:i:i], t.keys[i+1:]...)
			break
		}
	}
}

// PublishRaw adds a JWK as given (an encryption key, a malformed one) to the served set.
func (t *Tenant) PublishRaw(jwk any) {
	b, err := json.Marshal(jwk)
	if err != nil {
		t.srv.tb.Fatalf("oidcfake: %v", err)
	}
	t.mu.Lock()
	t.extra = append(t.extra, b)
	t.mu.Unlock()
}

// Key is the current key for alg (nil if none).
func (t *Tenant) Key(alg string) *Key {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.current[alg]
}

// Keys are the published keys, oldest first.
func (t *Tenant) Keys() []*Key {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*Key(nil), t.keys...)
}

// SetDelay delays every JWKS response.
func (t *Tenant) SetDelay(d time.Duration) { t.mu.Lock(); t.delay = d; t.mu.Unlock() }

// SetStatus makes JWKS responses fail with status (0: serve normally).
func (t *Tenant) SetStatus(status int) { t.mu.Lock(); t.status = status; t.mu.Unlock() }

// SetBody makes JWKS responses this body (nil: the real set).
func (t *Tenant) SetBody(b []byte) { t.mu.Lock(); t.body = b; t.mu.Unlock() }

// JWKS is the JWK Set the tenant serves now.
func (t *Tenant) JWKS() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]json.RawMessage, 0, len(t.keys)+len(t.extra))
	for _, k := range t.keys {
		keys = append(keys, k.JWKJSON())
	}
	keys = append(keys, t.extra...)
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

func (t *Tenant) serve(w http.ResponseWriter, r *http.Request) {
	jwks := false
	for _, p := range t.paths {
		jwks = jwks || r.URL.Path == p
	}
	if r.Method != http.MethodGet || !jwks {
		http.NotFound(w, r)
		return
	}
	t.fetches.Add(1)
	t.srv.fetches.Add(1)
	t.mu.Lock()
	delay, status, body := t.delay, t.status, t.body
	t.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		http.Error(w, "unavailable", status)
		return
	}
	if body == nil {
		body = t.JWKS()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}
