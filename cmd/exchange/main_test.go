package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/insforgejwt"
	"github.com/insforge/integrations-operator/internal/testutil/oidcfake"
	"github.com/insforge/integrations-operator/internal/testutil/proc"
	"github.com/insforge/integrations-operator/internal/tokenexchange"
	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

const signingKey = "graceful-shutdown-test-signing-key-0123456789"

func buildExchange(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "exchange")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestSIGTERMFinishesTheRequestInFlight runs the real binary, holds an exchange in flight (it
// waits for a slow JWKS refetch after the issuer rotated its key), sends SIGTERM, and checks
// that readiness fails at once, the exchange still completes with a valid token, and the
// process exits cleanly.
func TestSIGTERMFinishesTheRequestInFlight(t *testing.T) {
	bin := buildExchange(t)
	fake := oidcfake.New(t, oidcfake.Options{})
	ten := fake.Tenant("127.0.0.1", oidcfake.TenantOptions{Algs: []string{oidcfake.RS256}})
	dir := t.TempDir()
	keyPath := filepath.Join(dir, config.SigningKeyName)
	if err := os.WriteFile(keyPath, []byte(signingKey), 0o600); err != nil {
		t.Fatal(err)
	}
	listen, admin := freeport.MustAddr(t), freeport.MustAddr(t)
	cfg := config.Config{
		Listen: listen, AdminListen: admin, SigningKeyFile: keyPath,
		Issuers: []config.Issuer{{
			Provider: "custom", Issuers: []string{ten.Issuer}, JWKSURL: ten.JWKSURL(), Algorithms: []string{"RS256"},
		}},
		JWKS:            config.JWKS{MinRefreshInterval: config.D(time.Second)},
		ShutdownTimeout: config.D(10 * time.Second),
	}
	raw, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	var logs proc.Buffer
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stderr = &logs
	p, err := proc.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx, 20*time.Millisecond, proc.HTTPReady("http://"+admin+config.PathReadyz)); err != nil {
		t.Fatalf("not ready: %v\n%s", err, logs.String())
	}
	ready := time.Now()

	// The issuer rotates; its JWKS becomes slow. A token with the new kid makes the exchange
	// refetch (allowed once the minimum interval since the start-up fetch has passed) and wait.
	ten.Rotate(oidcfake.RS256)
	ten.SetDelay(1500 * time.Millisecond)
	tok := ten.Mint(ten.Claims("user_slow"), oidcfake.MintOptions{})
	time.Sleep(time.Until(ready.Add(1100 * time.Millisecond)))
	type result struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+listen+config.PathExchange, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{status: resp.StatusCode, body: b}
	}()
	for ten.Fetches() < 2 {
		if time.Since(ready) > 10*time.Second {
			t.Fatalf("the exchange did not refetch the keys\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}

	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Readiness fails while the request drains.
	deadline := time.Now().Add(time.Second)
	for {
		resp, err := http.Get("http://" + admin + config.PathReadyz)
		if err == nil {
			resp.Body.Close()
		}
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still answers %v, %v after SIGTERM", resp, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-p.Exited():
		t.Fatalf("exited before the request in flight finished\n%s", logs.String())
	default:
	}

	r := <-done
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("request in flight: %v %d %s\n%s", r.err, r.status, r.body, logs.String())
	}
	var out tokenexchange.Response
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	if c, _, err := insforgejwt.Verify(out.AccessToken, []byte(signingKey), time.Now()); err != nil || c.Sub != "user_slow" || c.Role != "authenticated" {
		t.Fatalf("minted token: %+v, %v", c, err)
	}
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit after the drain\n%s", logs.String())
	}
	if err := p.Err(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs.String())
	}
	out2 := logs.String()
	for _, want := range []string{`"msg":"exchange serving"`, `"msg":"exchange shutting down`, `"msg":"exchange stopped"`} {
		if !strings.Contains(out2, want) {
			t.Errorf("logs lack %s:\n%s", want, out2)
		}
	}
	if strings.Contains(out2, tok) || strings.Contains(out2, signingKey) || strings.Contains(out2, out.AccessToken) {
		t.Error("a token or the key was logged")
	}
}

func TestBadConfigurationExitsWithTwo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(`{"issuers":[{"provider":"clerk","issuers":["https://c"],"jwksURL":"https://c/jwks","algorithms":["HS256"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--config", path}, &stderr); code != 2 {
		t.Fatalf("exit code %d; want 2\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "HS256") {
		t.Errorf("the error does not name the problem: %s", stderr.String())
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"--config", filepath.Join(t.TempDir(), "absent.json")}, &stderr); code != 2 {
		t.Errorf("missing file: exit code %d", code)
	}
	if code := run(context.Background(), []string{"--log-level", "loud"}, &stderr); code != 2 {
		t.Errorf("bad log level: exit code %d", code)
	}
}
