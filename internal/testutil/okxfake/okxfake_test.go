package okxfake_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator/mock"
	"github.com/insforge/integrations-operator/internal/facilitator/okx"
	"github.com/insforge/integrations-operator/internal/testutil/okxfake"
)

const (
	key    = "k-123"
	secret = "s-456"
	pass   = "p-789"
)

// send signs (unless sign is false) and sends a request, returning the HTTP status and the
// envelope code.
func send(t *testing.T, srv *okxfake.Server, method, path, body string, mutate func(h http.Header)) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts := okx.Timestamp(time.Now())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(okx.HeaderKey, key)
	req.Header.Set(okx.HeaderPassphrase, pass)
	req.Header.Set(okx.HeaderTimestamp, ts)
	req.Header.Set(okx.HeaderSign, okx.Signature(secret, ts, method, path, body))
	if mutate != nil {
		mutate(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("response %q: %v", raw, err)
	}
	return resp.StatusCode, env.Code
}

func TestFakeChecksWhatOKXChecks(t *testing.T) {
	srv := okxfake.New(t, okxfake.Config{APIKey: key, SecretKey: secret, Passphrase: pass, Backend: mock.New(mock.Config{Networks: []string{"eip155:196"}})})
	const minimal = `{"x402Version":2,"paymentPayload":{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:196"},"payload":{}},"paymentRequirements":{"scheme":"exact","network":"eip155:196"}`
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		mutate     func(h http.Header)
		wantStatus int
		wantCode   string
	}{
		{"supported ok", "GET", okxfake.PathSupported, "", nil, 200, "0"},
		{"query is signed", "GET", okxfake.PathSettleStatus + "?txHash=0x01", "", nil, 200, "0"},
		{"missing key", "GET", okxfake.PathSupported, "", func(h http.Header) { h.Del(okx.HeaderKey) }, 401, "50103"},
		{"missing passphrase", "GET", okxfake.PathSupported, "", func(h http.Header) { h.Del(okx.HeaderPassphrase) }, 401, "50104"},
		{"missing sign", "GET", okxfake.PathSupported, "", func(h http.Header) { h.Del(okx.HeaderSign) }, 401, "50106"},
		{"missing timestamp", "GET", okxfake.PathSupported, "", func(h http.Header) { h.Del(okx.HeaderTimestamp) }, 401, "50107"},
		{"timestamp without ms", "GET", okxfake.PathSupported, "", func(h http.Header) {
			h.Set(okx.HeaderTimestamp, time.Now().UTC().Format("2006-01-02T15:04:05Z"))
		}, 401, "50112"},
		{"timestamp 31s old", "GET", okxfake.PathSupported, "", func(h http.Header) {
			ts := okx.Timestamp(time.Now().Add(-31 * time.Second))
			h.Set(okx.HeaderTimestamp, ts)
			h.Set(okx.HeaderSign, okx.Signature(secret, ts, "GET", okxfake.PathSupported, ""))
		}, 401, "50112"},
		{"signature over another path", "GET", okxfake.PathSupported, "", func(h http.Header) {
			h.Set(okx.HeaderSign, okx.Signature(secret, h.Get(okx.HeaderTimestamp), "GET", okxfake.PathVerify, ""))
		}, 401, "50113"},
		{"signature with lower-case method", "GET", okxfake.PathSupported, "", func(h http.Header) {
			h.Set(okx.HeaderSign, okx.Signature(secret, h.Get(okx.HeaderTimestamp), "get", okxfake.PathSupported, ""))
		}, 401, "50113"},
		{"settle without syncSettle", "POST", okxfake.PathSettle, minimal + `}`, nil, 400, "50014"},
		{"verify with x402Version 1", "POST", okxfake.PathVerify, strings.Replace(minimal, `{"x402Version":2,"paymentPayload"`, `{"x402Version":1,"paymentPayload"`, 1) + `}`, nil, 400, "51000"},
		{"verify without requirements", "POST", okxfake.PathVerify, `{"x402Version":2,"paymentPayload":{}}`, nil, 400, "50014"},
		{"verify with text content type", "POST", okxfake.PathVerify, minimal + `}`, func(h http.Header) { h.Set("Content-Type", "text/plain") }, 400, "51000"},
		{"verify shape ok (payment invalid)", "POST", okxfake.PathVerify, minimal + `}`, nil, 200, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := send(t, srv, tt.method, tt.path, tt.body, tt.mutate)
			if status != tt.wantStatus || code != tt.wantCode {
				t.Fatalf("got HTTP %d code %s, want HTTP %d code %s", status, code, tt.wantStatus, tt.wantCode)
			}
		})
	}
}
