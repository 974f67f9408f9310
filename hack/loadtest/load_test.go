package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/insforge/integrations-operator/internal/facilitator/mock"
	"github.com/insforge/integrations-operator/internal/gateway"
	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Settings of the benchmark's private PostgreSQL: durable, as in production.
var pgSettings = map[string]string{
	"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "max_connections": "200",
}

type result struct {
	Requests int64         `json:"requests"`
	RPS      float64       `json:"rps"`
	P50ms    float64       `json:"p50_ms"`
	P99ms    float64       `json:"p99_ms"`
	Status   map[int]int64 `json:"status"`
	Errors   int64         `json:"errors"`
}

func serve(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func BenchmarkGatewayLoad(b *testing.B) {
	dur := 10 * time.Second
	if v := os.Getenv("LOADTEST_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		dur = d
	}
	gen := filepath.Join(b.TempDir(), "gen")
	build := exec.Command("go", "build", "-o", gen, "./gen")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build gen: %v\n%s", err, out)
	}

	body := bytes.Repeat([]byte("x"), 256)
	upstream := serve(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	upURL, _ := url.Parse(upstream)
	rp := httputil.NewSingleHostReverseProxy(upURL)
	rp.Transport = gateway.NewTransport(30 * time.Second)
	proxy := serve(b, rp)

	srv := pgtest.StartServer(b, pgtest.Options{Settings: pgSettings})
	db := srv.NewDatabase(b)
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		b.Fatal(err)
	}
	pcfg.MaxConns = 64
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := ledger.Migrate(ctx, pool, ledger.Options{}); err != nil {
		b.Fatal(err)
	}
	led, _ := ledger.New(pool, ledger.Options{})
	spool, _ := ledger.OpenSpool(filepath.Join(b.TempDir(), "spool"))
	raw := fmt.Sprintf(`{"route": "bench/route", "upstream": %q, "network": "eip155:196",
	  "asset": {"address": "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8", "decimals": 6, "eip712Name": "Global Dollar", "eip712Version": "1"},
	  "payTo": "0x1111111111111111111111111111111111111111", "maxTimeoutSeconds": 300,
	  "routes": [{"path": "/paid", "price": "0.01"}], "facilitator": {"kind": "mock"}}`, upstream)
	cfg, err := config.Parse([]byte(raw), config.Env{config.EnvDatabaseURL: db.URL})
	if err != nil {
		b.Fatal(err)
	}
	h, err := gateway.New(gateway.Options{Config: cfg, Facilitator: mock.New(mock.Config{}), Ledger: led, Spool: spool,
		Metrics: gateway.NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		b.Fatal(err)
	}
	gw := serve(b, h)
	gwFast := serve(b, fastGateway(b, upstream))

	run := func(name, target string, conc int, pay bool) result {
		args := []string{"-url", target, "-c", fmt.Sprint(conc), "-d", dur.String(), "-warmup", "2s"}
		if pay {
			// Bounded: enough pre-signed payments for 6,000 payments/s.
			args = append(args, "-pay", "-max", fmt.Sprint(int((dur.Seconds()+2)*6000)))
		} else {
			args = append(args, "-max", fmt.Sprint(int((dur.Seconds()+2)*60000)))
		}
		var out bytes.Buffer
		cmd := exec.Command(gen, args...)
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		var r result
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			b.Fatalf("%s: %v: %s", name, err, out.String())
		}
		b.Logf("%-34s c=%-3d %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  status %v errors %d", name, conc, r.RPS, r.P50ms, r.P99ms, r.Status, r.Errors)
		return r
	}
	b.Logf("GOMAXPROCS %d, %s/%s, duration %s per case", runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, dur)
	for range b.N {
		a := run("(a) bare upstream", upstream+"/paid", 64, false)
		p := run("(b) httputil.ReverseProxy", proxy+"/paid", 64, false)
		c := run("(c) gateway 402 challenge", gw+"/paid", 64, false)
		d16 := run("(d) gateway paid (mock, durable PG)", gw+"/paid", 16, true)
		d64 := run("(d) gateway paid (mock, durable PG)", gw+"/paid", 64, true)
		run("(d') gateway paid (mock, PG fsync off)", gwFast+"/paid", 16, true)
		run("(d') gateway paid (mock, PG fsync off)", gwFast+"/paid", 64, true)
		var settled int64
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM x402_payments WHERE status = 'settled'`).Scan(&settled); err != nil {
			b.Fatal(err)
		}
		b.Logf("ratios: (b)/(a) %.2f  (c)/(b) %.2f  (d64)/(b) %.3f; settled rows in the ledger: %d (200s: %d)",
			p.RPS/a.RPS, c.RPS/p.RPS, d64.RPS/p.RPS, settled, d16.Status[200]+d64.Status[200])
		b.ReportMetric(c.RPS/p.RPS, "challenge/proxy")
		b.ReportMetric(d64.RPS, "paid64/s")
		b.ReportMetric(d16.P99ms, "paid16-p99-ms")
	}
}

// fastGateway is the paid gateway on the shared test server (fsync, synchronous_commit and
// full_page_writes off): not durable, only to show the ceiling the CPU sets on this machine.
func fastGateway(b *testing.B, upstream string) http.Handler {
	b.Helper()
	db := pgtest.NewDatabase(b)
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		b.Fatal(err)
	}
	pcfg.MaxConns = 64
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := ledger.Migrate(ctx, pool, ledger.Options{}); err != nil {
		b.Fatal(err)
	}
	led, _ := ledger.New(pool, ledger.Options{})
	spool, _ := ledger.OpenSpool(filepath.Join(b.TempDir(), "spool-fast"))
	raw := fmt.Sprintf(`{"route": "bench/fast", "upstream": %q, "network": "eip155:196",
	  "asset": {"address": "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8", "decimals": 6, "eip712Name": "Global Dollar", "eip712Version": "1"},
	  "payTo": "0x1111111111111111111111111111111111111111", "maxTimeoutSeconds": 300,
	  "routes": [{"path": "/paid", "price": "0.01"}], "facilitator": {"kind": "mock"}}`, upstream)
	cfg, err := config.Parse([]byte(raw), config.Env{config.EnvDatabaseURL: db.URL})
	if err != nil {
		b.Fatal(err)
	}
	h, err := gateway.New(gateway.Options{Config: cfg, Facilitator: mock.New(mock.Config{}), Ledger: led, Spool: spool,
		Metrics: gateway.NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		b.Fatal(err)
	}
	return h
}
