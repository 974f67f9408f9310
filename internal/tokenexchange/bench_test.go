package tokenexchange

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/insforge/integrations-operator/internal/testutil/cpustat"
	"github.com/insforge/integrations-operator/internal/testutil/insforgejwt"
	"github.com/insforge/integrations-operator/internal/testutil/oidcfake"
	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

const benchKey = "benchmark-signing-key-of-thirty-two-bytes-or-more"

// benchExchanger is an exchanger for one tenant of a fake issuer, its key set fetched (warm).
func benchExchanger(b *testing.B, algs ...string) (*Exchanger, *oidcfake.Tenant) {
	b.Helper()
	fake := oidcfake.New(b, oidcfake.Options{})
	ten := fake.Tenant("127.0.0.1", oidcfake.TenantOptions{Algs: algs})
	keyPath := filepath.Join(b.TempDir(), config.SigningKeyName)
	if err := os.WriteFile(keyPath, []byte(benchKey), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := config.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", SigningKeyFile: keyPath,
		Issuers: []config.Issuer{{
			Provider: "bench", Issuers: []string{ten.Issuer}, JWKSURL: ten.JWKSURL(), Audiences: []string{"app"},
			Algorithms: algs, EmailClaim: "email",
		}},
	}.WithDefaults()
	e, err := New(Options{Config: cfg, HTTPClient: fake.Client()})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.sets[0].Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	return e, ten
}

// A typical provider token: iss, sub, aud, exp, iat, nbf, email, azp, sid and a few more.
func benchToken(ten *oidcfake.Tenant, alg string) string {
	return ten.Mint(ten.Claims("user_2abcdefghijklmnopqrstuvwxyz",
		oidcfake.Set("aud", []string{"app", "https://example.com/userinfo"}), oidcfake.Set("nbf", time.Now().Unix()-5),
		oidcfake.Set("email", "someone@example.com"), oidcfake.Set("azp", "https://app.example.com"),
		oidcfake.Set("sid", "sess_2abcdefghijklmnopqrstuvwxyz"), oidcfake.Set("scope", "openid profile email"),
		oidcfake.Set("org_id", "org_123"), oidcfake.Set("v", 2),
	), oidcfake.MintOptions{Alg: alg})
}

// BenchmarkExchange is one exchange without HTTP: parse, key lookup in the warm cache, signature
// verification, claim checks, and minting the HS256 token.
func BenchmarkExchange(b *testing.B) {
	for _, alg := range []string{oidcfake.RS256, oidcfake.ES256, oidcfake.EdDSA} {
		b.Run(alg, func(b *testing.B) {
			e, ten := benchExchanger(b, alg)
			tok := benchToken(ten, alg)
			res, err := e.Exchange(context.Background(), tok)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := insforgejwt.Verify(res.AccessToken, []byte(benchKey), time.Now()); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			defer cpustat.ReportPerOp(b)()
			for b.Loop() {
				if _, err := e.Exchange(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExchangeHTTP is one RS256 exchange over HTTP (client and server in this process,
// keep-alive), against a bare net/http handler answering a fixed token: x-bare is the ratio of
// their CPU per request.
func BenchmarkExchangeHTTP(b *testing.B) {
	e, ten := benchExchanger(b, oidcfake.RS256)
	tok := benchToken(ten, oidcfake.RS256)
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	fixed, _ := json.Marshal(Response{AccessToken: tok, IssuedTokenType: TokenTypeJWT, TokenType: "Bearer", ExpiresIn: 300})
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(fixed)
	}))
	defer bare.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	call := func(url string) {
		req, _ := http.NewRequest(http.MethodPost, url+config.PathExchange, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	call(srv.URL)
	call(bare.URL)

	b.StopTimer()
	bareStart, _ := cpustat.Process()
	wallStart := time.Now()
	for range b.N {
		call(bare.URL)
	}
	bareWall := time.Since(wallStart)
	bareEnd, _ := cpustat.Process()
	b.StartTimer()

	start, _ := cpustat.Process()
	for range b.N {
		call(srv.URL)
	}
	end, _ := cpustat.Process()
	b.StopTimer()
	cpu, bareCPU := float64(end-start), float64(bareEnd-bareStart)
	b.ReportMetric(cpu/float64(b.N), "cpu-ns/op")
	b.ReportMetric(bareCPU/float64(b.N), "bare-cpu-ns/op")
	b.ReportMetric(float64(bareWall.Nanoseconds())/float64(b.N), "bare-ns/op")
	if bareCPU > 0 {
		b.ReportMetric(cpu/bareCPU, "x-bare")
	}
}

// BenchmarkSignatureFloor is the signature check alone, on the same token and key as
// BenchmarkExchange: the part of an exchange no code of ours can make cheaper.
func BenchmarkSignatureFloor(b *testing.B) {
	for _, alg := range []string{oidcfake.RS256, oidcfake.ES256, oidcfake.EdDSA} {
		b.Run(alg, func(b *testing.B) {
			e, ten := benchExchanger(b, alg)
			tok := benchToken(ten, alg)
			i := strings.LastIndexByte(tok, '.')
			sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
			if err != nil {
				b.Fatal(err)
			}
			key, err := e.sets[0].Lookup(context.Background(), ten.Key(alg).KID, alg)
			if err != nil {
				b.Fatal(err)
			}
			m := jwt.GetSigningMethod(alg)
			defer cpustat.ReportPerOp(b)()
			for b.Loop() {
				if err := m.Verify(tok[:i], sig, key.Public); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
