// Package gatewayproc runs cmd/gateway as a process for black-box tests: it builds the binary,
// writes a config file, starts the process with a chosen environment, waits for /readyz, and
// restarts it with another config on the same addresses (and so the same ledger table, when
// the config names it).
package gatewayproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/proc"
)

// Package is the import path of the command built by Build.
const Package = "github.com/insforge/integrations-operator/cmd/gateway"

// readyTimeout bounds the start of one process.
const readyTimeout = 60 * time.Second

// Build compiles cmd/gateway into a directory of tb and returns the binary's path. Call it once
// per test binary (from the one test that owns the gateways) and share the path.
func Build(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "gateway")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, Package)
	// The test's own build settings, so the compiled packages come from the build cache.
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("gatewayproc: go build %s: %v\n%s", Package, err, out)
	}
	return bin
}

// Options start a gateway.
type Options struct {
	// Binary is the path Build returned.
	Binary string
	// Config is the JSON config file as an object; listen and adminListen are set by Start,
	// spoolDir (under gateway) when absent.
	Config map[string]any
	// Env holds KEY=VALUE pairs (secrets such as config.EnvDatabaseURL) added to the test's
	// environment, from which every X402_ and OKX_ variable is removed first.
	Env []string
}

// Gateway is a running gateway process.
type Gateway struct {
	// Addr and AdminAddr are host:port of the data plane and of /readyz and /metrics.
	Addr, AdminAddr string
	// URL and AdminURL are their http:// URLs.
	URL, AdminURL string

	binary string
	env    []string
	dir    string
	starts int

	logs proc.Buffer // every process's output, in order
	mu   sync.Mutex
	proc *proc.Process
}

// Start runs the gateway and waits until it is ready; the test fails if it exits or is not
// ready in time. The process is killed when the test ends.
func Start(tb testing.TB, o Options) *Gateway {
	tb.Helper()
	g := &Gateway{binary: o.Binary, env: environment(o.Env), dir: tb.TempDir()}
	g.Addr, g.AdminAddr = freeport.MustAddr(tb), freeport.MustAddr(tb)
	g.URL, g.AdminURL = "http://"+g.Addr, "http://"+g.AdminAddr
	tb.Cleanup(func() {
		g.kill()
		if tb.Failed() {
			tb.Logf("gateway %s logs (last 6 KiB):\n%s", g.Addr, tail(g.Logs(), 6<<10))
		}
	})
	g.start(tb, o.Config)
	return g
}

// Restart stops the process (SIGTERM, then SIGKILL after 30 s) and starts one with cfg on the
// same addresses; env, when not nil, replaces Options.Env.
func (g *Gateway) Restart(tb testing.TB, cfg map[string]any, env []string) {
	tb.Helper()
	g.stop(tb)
	if env != nil {
		g.env = environment(env)
	}
	g.start(tb, cfg)
}

// Logs returns everything the processes wrote to stderr.
func (g *Gateway) Logs() string { return g.logs.String() }

// Metrics returns the text of /metrics.
func (g *Gateway) Metrics(tb testing.TB) string {
	tb.Helper()
	resp, err := http.Get(g.AdminURL + config.PathMetrics)
	if err != nil {
		tb.Fatalf("gatewayproc: metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("gatewayproc: metrics: %v", err)
	}
	return string(b)
}

func (g *Gateway) start(tb testing.TB, cfg map[string]any) {
	tb.Helper()
	file := make(map[string]any, len(cfg)+2)
	for k, v := range cfg {
		file[k] = v
	}
	file["listen"], file["adminListen"] = g.Addr, g.AdminAddr
	gw, _ := file["gateway"].(map[string]any)
	gwCopy := map[string]any{"spoolDir": filepath.Join(g.dir, "spool")}
	for k, v := range gw {
		gwCopy[k] = v
	}
	file["gateway"] = gwCopy
	raw, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		tb.Fatalf("gatewayproc: config: %v", err)
	}
	g.starts++
	path := filepath.Join(g.dir, fmt.Sprintf("config-%d.json", g.starts))
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		tb.Fatalf("gatewayproc: %v", err)
	}
	cmd := exec.Command(g.binary, "--config", path)
	cmd.Env, cmd.Stdout, cmd.Stderr = g.env, &g.logs, &g.logs
	p, err := proc.Start(cmd)
	if err != nil {
		tb.Fatalf("gatewayproc: starting %s: %v", g.binary, err)
	}
	g.mu.Lock()
	g.proc = p
	g.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	switch err := p.WaitReady(ctx, 50*time.Millisecond, proc.HTTPReady(g.AdminURL+config.PathReadyz)); {
	case errors.Is(err, proc.ErrExited):
		tb.Fatalf("gatewayproc: the gateway exited during start-up (%v):\n%s", cmd.ProcessState, tail(g.Logs(), 4<<10))
	case err != nil:
		tb.Fatalf("gatewayproc: the gateway was not ready in %s:\n%s", readyTimeout, tail(g.Logs(), 4<<10))
	}
}

func (g *Gateway) stop(tb testing.TB) {
	tb.Helper()
	g.mu.Lock()
	p := g.proc
	g.mu.Unlock()
	if p == nil {
		return
	}
	if err := p.Stop(syscall.SIGTERM, 30*time.Second); errors.Is(err, proc.ErrKilled) {
		tb.Errorf("gatewayproc: the gateway did not stop within 30 s of SIGTERM")
	}
}

func (g *Gateway) kill() {
	g.mu.Lock()
	p := g.proc
	g.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// environment is the test's environment without gateway secrets, plus extra.
func environment(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "X402_") || strings.HasPrefix(kv, "OKX_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
