package providerapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAPIErrorMatches(t *testing.T) {
	cases := []struct {
		e    *APIError
		is   []error
		isnt []error
	}{
		{&APIError{Status: 401}, []error{ErrUnauthorized}, []error{ErrInsufficientScope, ErrRateLimited, ErrNotFound}},
		{&APIError{Status: 403}, []error{ErrUnauthorized}, []error{ErrInsufficientScope}},
		{&APIError{Status: 403, Scope: "read:actions"}, []error{ErrUnauthorized, ErrInsufficientScope}, nil},
		{&APIError{Status: 402}, []error{ErrPlanRequired}, []error{ErrUnauthorized}},
		{&APIError{Status: 429, Delay: time.Second}, []error{ErrRateLimited}, []error{ErrUnauthorized}},
		{&APIError{Status: 404}, []error{ErrNotFound}, []error{ErrUnauthorized}},
		{&APIError{Status: 422}, nil, []error{ErrUnauthorized, ErrPlanRequired, ErrRateLimited, ErrNotFound}},
	}
	for _, c := range cases {
		wrapped := fmt.Errorf("context: %w", c.e)
		for _, target := range c.is {
			if !errors.Is(wrapped, target) {
				t.Errorf("HTTP %d scope %q is not %v", c.e.Status, c.e.Scope, target)
			}
		}
		for _, target := range c.isnt {
			if errors.Is(wrapped, target) {
				t.Errorf("HTTP %d scope %q is %v", c.e.Status, c.e.Scope, target)
			}
		}
	}
	d, ok := RetryAfter(fmt.Errorf("x: %w", &APIError{Status: 429, Delay: 3 * time.Second}))
	if !ok || d != 3*time.Second {
		t.Fatalf("RetryAfter = %s %v", d, ok)
	}
	if s, ok := MissingScope(&APIError{Status: 403, Scope: "read:actions"}); !ok || s != "read:actions" {
		t.Fatalf("MissingScope = %q %v", s, ok)
	}
}

func TestParseDelays(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		v    string
		f    func(string, time.Time) (time.Duration, bool)
		want time.Duration
		ok   bool
	}{
		{"7", ParseRetryAfter, 7 * time.Second, true},
		{"0", ParseRetryAfter, time.Second, true}, // never zero: no hammering
		{now.Add(30 * time.Second).Format(http.TimeFormat), ParseRetryAfter, 30 * time.Second, true},
		{"999999", ParseRetryAfter, time.Hour, true}, // capped
		{"", ParseRetryAfter, 0, false},
		{"soon", ParseRetryAfter, 0, false},
		{fmt.Sprint(now.Unix() + 12), ParseResetEpoch, 12 * time.Second, true},
		{fmt.Sprint(now.Unix() - 12), ParseResetEpoch, time.Second, true},
		{"x", ParseResetEpoch, 0, false},
	}
	for _, c := range cases {
		if d, ok := c.f(c.v, now); d != c.want || ok != c.ok {
			t.Errorf("%q: %s %v, want %s %v", c.v, d, ok, c.want, c.ok)
		}
	}
}

func TestRedacted(t *testing.T) {
	got := Redacted("key abcdef and sk_x and abc", "abcdef", "", "abc")
	if got != "key [REDACTED] and sk_x and abc" {
		t.Fatalf("%q", got) // values under 4 characters are left alone
	}
}

func TestDoDoesNotFollowRedirects(t *testing.T) {
	var hits int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	h := http.Header{"Authorization": {"Bearer sk_secret_value"}}
	_, err := Do(context.Background(), srv.Client(), "clerk", Request{Method: "GET", URL: srv.URL + "/v1/x?q=1", Header: h})
	if err == nil || hits != 0 || !strings.Contains(err.Error(), "redirect not followed") {
		t.Fatalf("err %v, %d requests to the redirect target", err, hits)
	}
	srv.Close()
	_, err = Do(context.Background(), nil, "clerk", Request{Method: "GET", URL: srv.URL + "/v1/x?token=abc", Header: h})
	if err == nil || strings.Contains(err.Error(), "token=abc") || !strings.Contains(err.Error(), "clerk: GET /v1/x") {
		t.Fatalf("transport error %v", err)
	}
}

func TestFingerprintMatchesJWTSecret(t *testing.T) {
	if got := Fingerprint([]byte("abc")); got != "sha256:ba7816bf8f01" {
		t.Fatalf("%q", got)
	}
	if SpecHash(map[string]int{"b": 1, "a": 2}) != SpecHash(map[string]int{"a": 2, "b": 1}) {
		t.Fatal("spec hash depends on map order")
	}
}
