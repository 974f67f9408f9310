package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/x402"
)

// rawAnswer is an answer to a request sent byte for byte (no client-side URL cleaning).
type rawAnswer struct {
	status int
	header http.Header
	body   string
	json   errorBody
}

// raw sends "METHOD target HTTP/1.1" with extra header lines to srv and reads the answer.
func raw(t *testing.T, srv *httptest.Server, method, target string, headers ...string) rawAnswer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	req := method + " " + target + " HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %q: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := rawAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &a.json)
	return a
}

// uriRecorder is an upstream that records the request URIs it receives, as sent.
type uriRecorder struct {
	mu   sync.Mutex
	uris []string
}

func (u *uriRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.uris = append(u.uris, r.Method+" "+r.RequestURI)
	u.mu.Unlock()
	fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
}

func (u *uriRecorder) all() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.uris...)
}

// envWithURIs is an env whose upstream records raw request URIs.
func envWithURIs(t *testing.T, mutate func(*config.Config)) (*env, *uriRecorder) {
	t.Helper()
	rec := &uriRecorder{}
	up := httptest.NewServer(rec)
	t.Cleanup(up.Close)
	e := newEnv(t, envOpts{mutate: func(c *config.Config) {
		c.Upstream = up.URL
		if mutate != nil {
			mutate(c)
		}
	}})
	return e, rec
}

// Each spelling of a priced path gets the challenge of that path, not a free pass to the upstream.
// On main at 36a5bca every one of these was proxied unpaid.
func TestSpellingsOfAPricedPathAreChallenged(t *testing.T) {
	e, rec := envWithURIs(t, nil)
	for _, tc := range []struct{ method, target, resource string }{
		{"GET", "//weather", "/weather"},
		{"GET", "/./weather", "/weather"},
		{"GET", "/x/../weather", "/weather"},
		{"GET", "/weather;x=1", "/weather"},
		{"GET", "/weather/", "/weather/"},
		{"GET", "/Weather", "/Weather"},
		{"GET", "/%77eather", "/weather"},
		{"GET", "/x/%2e%2e/weather?q=1", "/weather"},
		{"HEAD", "/weather", "/weather"},
		{"GET", "/stream//live", "/stream/live"},
		{"GET", "/STREAM/./x/../live;jsessionid=1", "/STREAM/live"},
	} {
		a := raw(t, e.srv, tc.method, tc.target)
		if a.status != http.StatusPaymentRequired {
			t.Errorf("%s %s: status %d, want 402 (%s)", tc.method, tc.target, a.status, a.body)
			continue
		}
		pr, err := x402.DecodePaymentRequired(a.header.Get(x402.HeaderPaymentRequired))
		if err != nil || pr.Resource == nil || pr.Resource.URL != "http://gw.example"+tc.resource {
			t.Errorf("%s %s: challenge resource %+v (%v), want the canonical %q", tc.method, tc.target, pr.Resource, err, tc.resource)
		}
	}
	if got := rec.all(); len(got) != 0 {
		t.Errorf("spellings of priced paths reached the upstream unpaid: %q", got)
	}
}

// A paid request under an odd spelling is charged once and reaches the upstream, the ledger and
// the receipt under the canonical path, on both the buffered and the streaming route.
func TestPaidRequestsReachTheUpstreamAndLedgerCanonical(t *testing.T) {
	e, rec := envWithURIs(t, nil)
	payer := e.payer(t, 2)
	a := raw(t, e.srv, "GET", "//weather;x=1?city=Paris", x402.HeaderPaymentSignature+": "+sign(t, payer, e.requirements()))
	if a.status != http.StatusOK || a.header.Get(x402.HeaderPaymentResponse) == "" {
		t.Fatalf("buffered route: %d %s", a.status, a.body)
	}
	streamReq := e.handler.routes.match("GET", "/stream/live").req
	a = raw(t, e.srv, "GET", "/stream/./x/..//live", x402.HeaderPaymentSignature+": "+sign(t, payer, streamReq))
	if a.status != http.StatusOK {
		t.Fatalf("streaming route: %d %s", a.status, a.body)
	}
	want := []string{"GET /weather?city=Paris", "GET /stream/live"}
	if got := rec.all(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("upstream got %q, want %q", got, want)
	}
	rows := e.rows(t)
	if len(rows) != 2 || rows[0].Endpoint != "/weather" || rows[0].Resource != "http://gw.example/weather" ||
		rows[1].Endpoint != "/stream/live" || rows[1].Resource != "http://gw.example/stream/live" {
		t.Errorf("ledger rows: %+v", rows)
	}
	if e.merchantBalance(t) != 2*price {
		t.Errorf("merchant balance %d", e.merchantBalance(t))
	}
}

// Unpriced paths are proxied too, but under their canonical spelling: whatever the upstream's
// normalisation, it has nothing left to change.
func TestUnpricedPathsAreProxiedCanonical(t *testing.T) {
	e, rec := envWithURIs(t, nil)
	for _, target := range []string{"/free//a/./b;p=1?q=1", "/free/caf%c3%a9/%41", "/free/a%2fb", "/"} {
		if a := raw(t, e.srv, "GET", target); a.status != http.StatusOK {
			t.Errorf("GET %s: %d %s", target, a.status, a.body)
		}
	}
	want := []string{"GET /free/a/b?q=1", "GET /free/caf%C3%A9/A", "GET /free/a%2Fb", "GET /"}
	if got := rec.all(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("upstream got %q, want %q", got, want)
	}
}

// Paths no canonical form can make safe are refused with 400 invalid_path, before any upstream
// call; the message never repeats the path.
func TestUncanonicalisablePathsAre400(t *testing.T) {
	e, rec := envWithURIs(t, nil)
	for _, target := range []string{
		`/free\..\weather`,              // a raw backslash (Windows upstreams split on it)
		"/%2e%2e/weather",               // .. above the root
		"/free/..;x/../weather2",        // .. above the root after ;params go
		"/a%00b",                        // an encoded NUL
		"/a%0Ab",                        // an encoded control character
		"/free%2F..%2Fweather",          // unpriced as written, /weather once %2F is decoded
		"/stream%2F..%2Fx",              // unpriced as written, /stream/../x to Express
		"/stream/a%2F..%2F..%2Fweather", // /stream/* as written, /weather once decoded
		"x:weather",                     // an opaque request target
	} {
		a := raw(t, e.srv, "GET", target)
		if a.status != http.StatusBadRequest || a.json.Reason != string(x402.ReasonInvalidPath) {
			t.Errorf("GET %s: %d %s, want 400 %s", target, a.status, a.body, x402.ReasonInvalidPath)
		}
		if strings.Contains(a.body, target) || strings.Contains(a.body, strings.TrimPrefix(target, "/")) {
			t.Errorf("GET %s: the answer repeats the path: %s", target, a.body)
		}
	}
	if got := rec.all(); len(got) != 0 {
		t.Errorf("refused paths reached the upstream: %q", got)
	}
}

// A configured path with escapes is matched by every spelling of it (at 36a5bca a configured
// "%" never matched), and the per-route options narrow matching as configured.
func TestConfiguredEscapesAndRouteOptions(t *testing.T) {
	e, rec := envWithURIs(t, func(c *config.Config) {
		c.Routes = append(c.Routes,
			config.Route{Path: "/caf%C3%A9/menu", Price: "0.01", Settle: config.SettleAfterUpstream},
			config.Route{Path: "/Case/Exact", Price: "0.01", Settle: config.SettleAfterUpstream, CaseSensitive: true, TrailingSlash: config.TrailingSlashDistinct},
		)
	})
	for _, tc := range []struct {
		target string
		status int
	}{
		{"/caf%C3%A9/menu", http.StatusPaymentRequired},
		{"/caf%c3%a9/menu", http.StatusPaymentRequired},
		{"/caf\xc3\xa9/menu", http.StatusPaymentRequired},
		{"/CAF%C3%89/Menu/", http.StatusPaymentRequired},
		{"/Case/Exact", http.StatusPaymentRequired},
		{"/case/exact", http.StatusOK},
		{"/Case/Exact/", http.StatusOK},
	} {
		if a := raw(t, e.srv, "GET", tc.target); a.status != tc.status {
			t.Errorf("GET %q: %d, want %d (%s)", tc.target, a.status, tc.status, a.body)
		}
	}
	if got := rec.all(); len(got) != 2 {
		t.Errorf("upstream calls %q, want the two unpriced spellings", got)
	}
}
