package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/insforge/integrations-operator/internal/gateway"
	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/testutil/proc"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Settings of the benchmark's private PostgreSQL: durable, as in production. LOADTEST_PG adds
// or overrides settings, e.g. LOADTEST_PG=commit_delay=200,commit_siblings=4.
func pgSettings(b *testing.B) map[string]string {
	s := map[string]string{"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "max_connections": "300"}
	for kv := range strings.SplitSeq(os.Getenv("LOADTEST_PG"), ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			b.Fatalf("LOADTEST_PG: %q is not name=value", kv)
		}
		s[k] = v
	}
	if reportStatements() {
		s["shared_preload_libraries"] = "pg_stat_statements"
		s["pg_stat_statements.track"] = "all"
	}
	return s
}

// reportStatements: LOADTEST_STATEMENTS=1 prints, after each paid case of the gateway, the
// statements that took most of PostgreSQL's execution time in its database, per row and with
// their WAL, to see which ledger write costs what under real load.
func reportStatements() bool { return os.Getenv("LOADTEST_STATEMENTS") != "" }

// statements resets pg_stat_statements (show false) or prints its top statements for the
// database of dbURL (show true).
func statements(b *testing.B, dbURL string, show bool) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		b.Fatalf("pg_stat_statements: %v", err)
	}
	if !show {
		if _, err := conn.Exec(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
			b.Fatalf("pg_stat_statements: %v", err)
		}
		return
	}
	rows, err := conn.Query(ctx, `SELECT calls, rows, total_exec_time, total_plan_time, wal_bytes::float8,
	left(regexp_replace(query, '\s+', ' ', 'g'), 90)
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time + total_plan_time DESC LIMIT 10`)
	if err != nil {
		b.Fatalf("pg_stat_statements: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var calls, n int64
		var execMs, planMs, wal float64
		var query string
		if err := rows.Scan(&calls, &n, &execMs, &planMs, &wal, &query); err != nil {
			b.Fatal(err)
		}
		report("    %7d calls %7d rows %6.0f+%4.0f ms exec+plan (%5.1f µs/row) %5.0f WAL B/row  %s",
			calls, n, execMs, planMs, 1000*(execMs+planMs)/float64(max(n, 1)), wal/float64(max(n, 1)), query)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
}

type result struct {
	Requests       int64              `json:"requests"`
	RPS            float64            `json:"rps"`
	P50ms          float64            `json:"p50_ms"`
	P99ms          float64            `json:"p99_ms"`
	Status         map[int]int64      `json:"status"`
	Errors         int64              `json:"errors"`
	CPUusPerReq    map[string]float64 `json:"cpu_us_per_req"`
	MachineBusyPct float64            `json:"machine_busy_pct"`
}

// cpuFigures formats the CPU time per request of r, by process, as the generator measured it.
func cpuFigures(r result) string {
	var sb strings.Builder
	sb.WriteString("cpu µs/req")
	for _, name := range []string{"gen", "gateway", "postgres", "bench", "machine"} {
		if v, ok := r.CPUusPerReq[name]; ok {
			fmt.Fprintf(&sb, " %s %.0f", name, v)
		}
	}
	fmt.Fprintf(&sb, " (busy %.0f%%)", r.MachineBusyPct)
	return sb.String()
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

// goBuild builds package pkg of the module in dir into out. With cgo it builds like the
// Dockerfile does: libsecp256k1 through cgo, statically linked.
func goBuild(b *testing.B, dir, pkg, out string, cgo bool) {
	b.Helper()
	args := []string{"build", "-trimpath", "-o", out}
	env := append(os.Environ(), "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if cgo {
		args = append(args, "-tags", "netgo,osusergo", "-ldflags", `-s -w -extldflags "-static"`)
		env = append(os.Environ(), "GOTOOLCHAIN=local", "CGO_ENABLED=1")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir, cmd.Env = dir, env
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s in %s (cgo %v): %v\n%s", pkg, dir, cgo, err, o)
	}
}

// startGatewayPID runs the gateway binary bin as its own process, as in production
// (cmd/gateway, mock facilitator, ledger migrated at start) on the database dbURL, and returns
// its data URL once it is ready, and its pid, for the generator to measure its CPU time.
func startGatewayPID(b *testing.B, bin, upstream, dbURL string) (string, int) {
	b.Helper()
	dir := b.TempDir()
	listen, admin := freeport.MustAddr(b), freeport.MustAddr(b)
	cfg := fmt.Sprintf(`{"route": "bench/route", "listen": %q, "adminListen": %q, "upstream": %q, "network": "eip155:196",
	  "asset": {"address": "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8", "decimals": 6, "eip712Name": "Global Dollar", "eip712Version": "1"},
	  "payTo": "0x1111111111111111111111111111111111111111", "maxTimeoutSeconds": 300,
	  "routes": [{"path": "/paid", "price": "0.01"}], "facilitator": {"kind": "mock"},
	  "ledger": {"migrate": true}, "gateway": {"spoolDir": %q}}`, listen, admin, upstream, filepath.Join(dir, "spool"))
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	// The log goes to a file: the generator cancels requests in flight when a case ends, and
	// the gateway logs each of those (nothing was charged for them).
	logPath := filepath.Join(dir, "gateway.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", path, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "X402_DATABASE_URL="+dbURL)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p, err := proc.Start(cmd)
	logFile.Close() // the child has its own descriptor
	if err != nil {
		b.Fatal(err)
	}
	// The gateway drains within its shutdownTimeout (45 s by default).
	b.Cleanup(func() { _ = p.Stop(os.Interrupt, 2*time.Minute) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.WaitReady(ctx, 50*time.Millisecond, proc.HTTPReady("http://"+admin+"/readyz")); err != nil {
		out, _ := os.ReadFile(logPath)
		b.Fatalf("gateway %s not ready after a minute: %v\n%s", bin, err, out)
	}
	return "http://" + listen, cmd.Process.Pid
}

// startReference runs bin, the reference x402 middleware's server (LOADTEST_REFERENCE, see the
// package doc), on a free loopback port and returns, once that answers with a v2 challenge, its
// priced route's URL, its pid and check, which fails the benchmark with the exit status and
// output of the reference if it has ended.
func startReference(b *testing.B, bin string, args ...string) (target string, pid int, check func()) {
	b.Helper()
	if !filepath.IsAbs(bin) {
		b.Fatalf("LOADTEST_REFERENCE %q: want an absolute path to the reference binary", bin)
	}
	listen := freeport.MustAddr(b)
	logPath := filepath.Join(b.TempDir(), "reference.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"-listen", listen}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p, err := proc.Start(cmd)
	logFile.Close() // the child has its own descriptor
	if err != nil {
		b.Fatalf("LOADTEST_REFERENCE: %v", err)
	}
	b.Cleanup(func() { _ = p.Stop(os.Interrupt, 10*time.Second) })
	output := func() []byte { o, _ := os.ReadFile(logPath); return o }
	check = func() {
		b.Helper()
		select {
		case <-p.Exited():
			b.Fatalf("LOADTEST_REFERENCE %s exited: %v\n%s", bin, p.Err(), output())
		default:
		}
	}
	target = "http://" + listen + "/paid"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = p.WaitReady(ctx, 50*time.Millisecond, proc.HTTPCheck(target, func(resp *http.Response) error {
		if resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get("PAYMENT-REQUIRED") == "" {
			return fmt.Errorf("GET %s: status %d, PAYMENT-REQUIRED %q; want a 402 with a v2 challenge", target, resp.StatusCode, resp.Header.Get("PAYMENT-REQUIRED"))
		}
		return nil
	}))
	if err != nil {
		check()
		b.Fatalf("LOADTEST_REFERENCE %s not ready after a minute: %v\n%s", bin, err, output())
	}
	return target, cmd.Process.Pid, check
}

func countSettled(b *testing.B, dbURL string) int64 {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM x402_payments WHERE status = 'settled'`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// countRows counts the rows of the guide's table (every row of it is a settled payment).
func countRows(b *testing.B, dbURL string) int64 {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM x402_payments`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// report prints a result line. Not b.Logf: a benchmark's log is cut to a few lines without -v.
func report(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func BenchmarkGatewayLoad(b *testing.B) {
	dur := 10 * time.Second
	if v := os.Getenv("LOADTEST_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		dur = d
	}
	// LOADTEST_CASES narrows a run to the cases whose name matches, for profiling one case; the
	// ratios of a narrowed run are meaningless.
	only, err := regexp.Compile(os.Getenv("LOADTEST_CASES"))
	if err != nil {
		b.Fatalf("LOADTEST_CASES: %v", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		b.Fatal(err)
	}
	bins := b.TempDir()
	gen := filepath.Join(bins, "gen")
	// The generator signs with cgo too: pre-signing is not measured, only waited for.
	goBuild(b, root, "./hack/loadtest/gen", gen, true)
	gwCgo, gwPure := filepath.Join(bins, "gateway-cgo"), filepath.Join(bins, "gateway-purego")
	goBuild(b, root, "./cmd/gateway", gwCgo, true)
	goBuild(b, root, "./cmd/gateway", gwPure, false)
	// LOADTEST_BASELINE is another source tree of the module (e.g. `git archive <commit>`), whose
	// gateway is measured in the same run for a before/after comparison.
	var gwBase string
	if dir := os.Getenv("LOADTEST_BASELINE"); dir != "" {
		gwBase = filepath.Join(bins, "gateway-baseline")
		goBuild(b, dir, "./cmd/gateway", gwBase, true)
	}

	body := bytes.Repeat([]byte("x"), 256)
	upstream := serve(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	upURL, _ := url.Parse(upstream)
	rp := httputil.NewSingleHostReverseProxy(upURL)
	rp.Transport = gateway.NewTransport(30 * time.Second)
	rp.ErrorLog = log.New(io.Discard, "", 0) // requests cancelled at the end of a case
	proxy := serve(b, rp)

	settings := pgSettings(b)
	srv := pgtest.StartServer(b, pgtest.Options{Settings: settings})
	type gw struct {
		name, url, db string
		pid           int
	}
	newGW := func(name, bin string, db *pgtest.Database) gw {
		u, pid := startGatewayPID(b, bin, upstream, db.URL)
		return gw{name, u, db.URL, pid}
	}
	cgoGW := newGW("cgo, durable PG", gwCgo, srv.NewDatabase(b))
	pureGW := newGW("pure Go, durable PG", gwPure, srv.NewDatabase(b))
	paid := []gw{cgoGW, pureGW}
	if gwBase != "" {
		paid = append(paid, newGW("baseline cgo, durable PG", gwBase, srv.NewDatabase(b)))
	}
	// The shared test server (fsync, synchronous_commit, full_page_writes off): not durable, only
	// to show the ceiling the CPU sets on this machine.
	fastGW := newGW("cgo, PG fsync off", gwCgo, pgtest.NewDatabase(b))
	// LOADTEST_REFERENCE: the reference x402 middleware (see the package doc), measured with the
	// same generator in the same run, so that the paid path reads as a ratio against it.
	refBin := os.Getenv("LOADTEST_REFERENCE")
	type reference struct {
		url   string
		pid   int
		check func()
	}
	var ref, refInsert reference
	var refInsertDB string
	if refBin != "" {
		ref.url, ref.pid, ref.check = startReference(b, refBin)
		// (d-ref+insert): the reference recording each settled payment with the single INSERT
		// of InsForge's x402 guide, in a database of the same durable server as the gateway's.
		refInsertDB = srv.NewDatabase(b).URL
		refInsert.url, refInsert.pid, refInsert.check = startReference(b, refBin, "-database", refInsertDB)
	}

	// The generator reports the CPU time per request of these processes: this one (upstream and
	// reverse proxy), PostgreSQL (all its processes) and, in the gateway cases, the gateway.
	watchBase := fmt.Sprintf("bench=%d,postgres=comm:postgres", os.Getpid())
	watchGW := func(g gw) string { return fmt.Sprintf("gateway=%d,%s", g.pid, watchBase) }
	// runRate measures target; with pay, payRate bounds the payments per second pre-signed.
	runRate := func(name, target string, conc int, pay bool, watch string, payRate int) result {
		if !only.MatchString(fmt.Sprintf("%s c=%d", name, conc)) {
			return result{}
		}
		args := []string{"-url", target, "-c", fmt.Sprint(conc), "-d", dur.String(), "-warmup", "2s", "-watch", watch}
		if pay {
			// Bounded: enough pre-signed payments for payRate payments/s.
			args = append(args, "-pay", "-max", fmt.Sprint(int((dur.Seconds()+2)*float64(payRate))))
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
		report("%-44s c=%-3d %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  status %v errors %d  %s", name, conc, r.RPS, r.P50ms, r.P99ms, r.Status, r.Errors, cpuFigures(r))
		return r
	}
	run := func(name, target string, conc int, pay bool, watch string) result {
		return runRate(name, target, conc, pay, watch, 6000)
	}
	// runRef measures the reference, which must still be running and answer every request
	// measured with status want: anything else means it is misconfigured, not slow.
	runRef := func(ref reference, name string, conc int, pay bool, want int) result {
		// The reference's paid path is faster than the gateway's: more payments are pre-signed.
		r := runRate(name, ref.url, conc, pay, fmt.Sprintf("gateway=%d,%s", ref.pid, watchBase), 12000)
		ref.check()
		for code := range r.Status {
			if code != want {
				b.Fatalf("%s: LOADTEST_REFERENCE answered status %d (want only %d): %v", name, code, want, r.Status)
			}
		}
		return r
	}
	report("GOMAXPROCS %d, %s/%s, %d CPUs, duration %s per case, durable PG settings %v", runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), dur, settings)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		report("load average before: %s", strings.TrimSpace(string(la)))
	}
	for range b.N {
		a := run("(a) bare upstream", upstream+"/paid", 64, false, watchBase)
		p := run("(b) httputil.ReverseProxy", proxy+"/paid", 64, false, watchBase)
		c := run("(c) gateway 402 challenge (cgo)", cgoGW.url+"/paid", 64, false, watchGW(cgoGW))
		report("ratios: (b)/(a) %.2f  (c)/(b) %.2f", p.RPS/a.RPS, c.RPS/p.RPS)
		if refBin != "" {
			cRef := runRef(ref, "(c-ref) reference 402 challenge", 64, false, http.StatusPaymentRequired)
			report("ratios: (c)/(c-ref) %.2f  (c-ref)/(b) %.2f", c.RPS/cRef.RPS, cRef.RPS/p.RPS)
		}
		var d16, d64 result
		for _, g := range append(paid, fastGW) {
			paidCase := func(conc int) result {
				if reportStatements() {
					statements(b, g.db, false)
				}
				r := run("(d) gateway paid, "+g.name, g.url+"/paid", conc, true, watchGW(g))
				if reportStatements() && r.Requests > 0 {
					statements(b, g.db, true)
				}
				return r
			}
			r16, r64 := paidCase(16), paidCase(64)
			report("  %s: settled rows %d, 200s %d, (d64)/(b) %.3f", g.name, countSettled(b, g.db), r16.Status[200]+r64.Status[200], r64.RPS/p.RPS)
			if g == cgoGW {
				d16, d64 = r16, r64
			}
		}
		if refBin != "" {
			r16 := runRef(ref, "(d-ref) reference paid, fake facilitator", 16, true, http.StatusOK)
			r64 := runRef(ref, "(d-ref) reference paid, fake facilitator", 64, true, http.StatusOK)
			report("  reference: 200s %d, (d-ref64)/(b) %.3f", r16.Status[200]+r64.Status[200], r64.RPS/p.RPS)
			report("ratios: (d64)/(d-ref64) %.3f  (d16)/(d-ref16) %.3f  p99 (d16)/(d-ref16) %.2f (cgo, durable PG)",
				d64.RPS/r64.RPS, d16.RPS/r16.RPS, d16.P99ms/r16.P99ms)
			b.ReportMetric(d64.RPS/r64.RPS, "paid64/ref64")
			i16 := runRef(refInsert, "(d-ref+insert) reference paid, guide INSERT", 16, true, http.StatusOK)
			i64 := runRef(refInsert, "(d-ref+insert) reference paid, guide INSERT", 64, true, http.StatusOK)
			report("  reference+insert: recorded rows %d, 200s %d", countRows(b, refInsertDB), i16.Status[200]+i64.Status[200])
			report("ratios: (d64)/(d-ref+insert64) %.3f  (d16)/(d-ref+insert16) %.3f  machine CPU (d64)/(d-ref+insert64) %.2f (cgo, durable PG)",
				d64.RPS/i64.RPS, d16.RPS/i16.RPS, d64.CPUusPerReq["machine"]/i64.CPUusPerReq["machine"])
			b.ReportMetric(d64.RPS/i64.RPS, "paid64/ref+insert64")
		}
		b.ReportMetric(c.RPS/p.RPS, "challenge/proxy")
		b.ReportMetric(d64.RPS, "paid64/s")
		b.ReportMetric(d16.P99ms, "paid16-p99-ms")
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		report("load average after: %s", strings.TrimSpace(string(la)))
	}
}
