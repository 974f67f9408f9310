package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/x402"
)

func ptrTo[T any](v T) *T { return &v }

// hostileHeaders are client headers that an nginx, CGI, PHP or Express upstream folds into the
// payer, payment or forwarding headers: underscores for dashes, any case, repeated. The map is
// sent as is, so every key goes on the wire with exactly this spelling.
func hostileHeaders() http.Header {
	return http.Header{
		"x_payment_payer":    {"0xspoof1"},
		"X_PAYMENT_PAYER":    {"0xspoof2"},
		"X-PAYMENT-PAYER":    {"0xspoof3"},
		"x-payment-payer":    {"0xspoof4", "0xspoof5"},
		"Payment_Signature":  {"junk"},
		"x_payment":          {"junk"},
		"X_Forwarded_For":    {"6.6.6.6"},
		"x_forwarded_host":   {"evil.example"},
		"X-Forwarded-Host":   {"evil2.example"},
		"X-FORWARDED-PROTO":  {"https"},
		"X-Forwarded-Prefix": {"/evil"},
		"x-forwarded-port":   {"443"},
		"X_Forwarded_Port":   {"443"},
		"Forwarded":          {"for=6.6.6.6;host=evil.example"},
		"FORWARDED":          {"for=7.7.7.7"},
		"X-Keep_Me":          {"yes"}, // an ordinary header with an underscore stays
	}
}

// folded is a header name as the upstreams above see it.
func folded(k string) string { return strings.ToLower(strings.ReplaceAll(k, "_", "-")) }

// send makes a request with headers written exactly as given (no canonicalisation).
func (e *env) send(t *testing.T, method, path string, h http.Header) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &a.json)
	return a
}

// checkUpstreamHeaders fails unless the upstream saw no client spelling of a gateway header:
// only the gateway's own X-Forwarded-For/Host/Proto (plus, when trusted, canonical
// X-Forwarded-* of the client) and the payer header when paid.
func checkUpstreamHeaders(t *testing.T, up http.Header, payer string, allowed map[string][]string) {
	t.Helper()
	for k, v := range up {
		f := folded(k)
		switch {
		case f == folded(config.DefaultPayerHeader):
			if payer == "" || k != config.DefaultPayerHeader || len(v) != 1 || v[0] != payer {
				t.Errorf("upstream got %s: %q (payer %q)", k, v, payer)
			}
		case f == "payment-signature", f == "x-payment", f == "forwarded":
			t.Errorf("upstream got %s: %q", k, v)
		case strings.HasPrefix(f, "x-forwarded-"):
			want, ok := allowed[k]
			if !ok || strings.Join(v, "|") != strings.Join(want, "|") {
				t.Errorf("upstream got %s: %q, want %q", k, v, want)
			}
		}
	}
	for k := range allowed {
		if up[k] == nil {
			t.Errorf("upstream lacks %s", k)
		}
	}
	if payer != "" && up.Get(config.DefaultPayerHeader) == "" {
		t.Error("upstream lacks the payer header")
	}
	if up.Get("X-Keep_me") != "yes" {
		t.Errorf("an ordinary header was dropped: %v", up)
	}
}

// TestClientSpellingsOfGatewayHeadersNeverReachTheUpstream covers the streaming proxy (an
// unpriced path, a beforeUpstream route) and the buffered fetch (an afterUpstream route).
func TestClientSpellingsOfGatewayHeadersNeverReachTheUpstream(t *testing.T) {
	e := newEnv(t, envOpts{})
	host := strings.TrimPrefix(e.srv.URL, "http://")
	own := map[string][]string{"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Host": {host}, "X-Forwarded-Proto": {"http"}}

	t.Run("unpriced, streamed", func(t *testing.T) {
		a := e.send(t, http.MethodGet, "/free", hostileHeaders())
		if a.status != http.StatusOK {
			t.Fatalf("status %d %s", a.status, a.body)
		}
		checkUpstreamHeaders(t, e.up.last(), "", own)
	})
	for _, path := range []string{"/weather", "/stream/x"} {
		t.Run("paid "+path, func(t *testing.T) {
			payer := e.payer(t, 1)
			h := hostileHeaders()
			h[x402.HeaderPaymentSignature] = []string{sign(t, payer, e.handler.routes.match("GET", path).req)}
			a := e.send(t, http.MethodGet, path, h)
			if a.status != http.StatusOK {
				t.Fatalf("status %d %s", a.status, a.body)
			}
			checkUpstreamHeaders(t, e.up.last(), payer.Address().Hex(), own)
		})
	}
	// Untrusted X-Forwarded-* do not shape the challenge either.
	a := e.send(t, http.MethodGet, "/weather", http.Header{"X-Forwarded-Host": {"evil.example"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Prefix": {"/x"}})
	pr, err := x402.DecodePaymentRequired(a.header.Get(x402.HeaderPaymentRequired))
	if err != nil || pr.Resource == nil || pr.Resource.URL != e.srv.URL+"/weather" {
		t.Fatalf("resource = %+v, %v; want %s", pr.Resource, err, e.srv.URL+"/weather")
	}
}

// TestTrustedForwardedHeadersPassInTheirCanonicalSpellingOnly: behind a trusted proxy the
// canonical X-Forwarded-* carry on; underscore spellings, Forwarded and the payer header still go.
func TestTrustedForwardedHeadersPassInTheirCanonicalSpellingOnly(t *testing.T) {
	e := newEnv(t, envOpts{mutate: func(c *config.Config) { c.Gateway.TrustForwarded = ptrTo(true) }})
	h := hostileHeaders()
	h["X-Forwarded-For"] = []string{"203.0.113.9"}
	allowed := map[string][]string{
		"X-Forwarded-For":    {"203.0.113.9, 127.0.0.1"},
		"X-Forwarded-Host":   {"evil2.example"}, // the first canonical value: the proxy's
		"X-Forwarded-Proto":  {"https"},
		"X-Forwarded-Prefix": {"/evil"},
		"X-Forwarded-Port":   {"443"},
	}
	t.Run("unpriced, streamed", func(t *testing.T) {
		if a := e.send(t, http.MethodGet, "/free", h); a.status != http.StatusOK {
			t.Fatalf("status %d %s", a.status, a.body)
		}
		checkUpstreamHeaders(t, e.up.last(), "", allowed)
	})
	t.Run("paid, buffered", func(t *testing.T) {
		payer := e.payer(t, 1)
		ph := h.Clone()
		ph[x402.HeaderPaymentSignature] = []string{sign(t, payer, e.requirements())}
		a := e.send(t, http.MethodGet, "/weather", ph)
		if a.status != http.StatusOK {
			t.Fatalf("status %d %s", a.status, a.body)
		}
		checkUpstreamHeaders(t, e.up.last(), payer.Address().Hex(), allowed)
	})
}

// The challenge to a request without a payment is encoded once per resource URL and route;
// each answer must still name the URL its request reached, past the cache's bound too.
func TestChallengeNamesEachRequestsResourcePastTheCache(t *testing.T) {
	e := newEnv(t, envOpts{})
	for i := range maxCachedChallenges + 20 {
		for range 2 { // encoded, then (within the bound) from the cache
			host := fmt.Sprintf("h%d.example", i)
			req := httptest.NewRequest(http.MethodGet, "http://"+host+"/weather", nil)
			w := httptest.NewRecorder()
			e.handler.ServeHTTP(w, req)
			pr, err := x402.DecodePaymentRequired(w.Header().Get(x402.HeaderPaymentRequired))
			if err != nil || w.Code != http.StatusPaymentRequired {
				t.Fatalf("%s: %d %v", host, w.Code, err)
			}
			var body errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			want := "http://" + host + "/weather"
			if pr.Resource == nil || pr.Resource.URL != want || body.Resource == nil || body.Resource.URL != want ||
				body.Error != msgPaymentRequired || len(pr.Accepts) != 1 || pr.Accepts[0].Amount != "10000" {
				t.Fatalf("%s: header %+v body %+v", host, pr, body)
			}
		}
	}
}
