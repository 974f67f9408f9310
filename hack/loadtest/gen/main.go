// Command gen is the load generator of the gateway benchmark. It runs in its own process, sends
// GET requests from -c concurrent clients for -d (after a warm-up), and prints one JSON line with
// the request rate, latency percentiles and CPU time per request. With -pay it first fetches the
// 402 challenge and pre-signs up to -max payments with fresh nonces, so signing costs nothing
// during the run.
//
// Each client is a minimal HTTP/1.1 keep-alive client on one raw TCP connection, with the request
// bytes built once: on a small machine the generator shares the cores with the system under
// test, and net/http's client costs several times more CPU per request.
//
// -watch names processes whose CPU time to report (name=PID, or name=comm:NAME for the sum over
// all processes of that name); the generator's own CPU ("gen") and the whole machine's busy time
// ("machine") are always reported. CPU figures need Linux's /proc.
package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/testutil/cpustat"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// Result is the generator's output.
type Result struct {
	Requests int64         `json:"requests"`
	Seconds  float64       `json:"seconds"`
	RPS      float64       `json:"rps"`
	P50ms    float64       `json:"p50_ms"`
	P99ms    float64       `json:"p99_ms"`
	Status   map[int]int64 `json:"status"`
	Errors   int64         `json:"errors"`
	Signed   int           `json:"signed,omitempty"`
	// CPUusPerReq is the CPU time in the measured window per measured request, in microseconds:
	// of each -watch entry by name, of the generator ("gen") and of the machine ("machine", the
	// busy time of all CPUs).
	CPUusPerReq map[string]float64 `json:"cpu_us_per_req"`
	// MachineBusyPct is the share of all CPUs' time that was busy in the measured window.
	MachineBusyPct float64 `json:"machine_busy_pct"`
}

type config struct {
	url       string
	conc      int
	dur, warm time.Duration
	pay       bool
	maxReq    int
	watch     []watch
}

func main() {
	var cfg config
	flag.StringVar(&cfg.url, "url", "", "target URL (http://host:port/path)")
	flag.IntVar(&cfg.conc, "c", 16, "concurrent clients, one connection each")
	flag.DurationVar(&cfg.dur, "d", 10*time.Second, "measured duration")
	flag.DurationVar(&cfg.warm, "warmup", 2*time.Second, "warm-up before measuring")
	flag.BoolVar(&cfg.pay, "pay", false, "send pre-signed payments (one per request)")
	flag.IntVar(&cfg.maxReq, "max", 60000, "bound on requests (and pre-signed payments)")
	watchFlag := flag.String("watch", "", "processes whose CPU time to report: comma-separated name=PID or name=comm:NAME")
	flag.Parse()
	res, err := func() (Result, error) {
		var err error
		if cfg.watch, err = parseWatch(*watchFlag); err != nil {
			return Result{}, err
		}
		return run(cfg)
	}()
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// load is the state the clients of one run share.
type load struct {
	req        request
	sigs       []string // pre-signed payments, one per request; nil when not paying
	maxReq     int64
	start, end time.Time // the measured window
	next       atomic.Int64
	errs       atomic.Int64
}

// tally is one client's measurements; each client has its own, so recording needs no lock.
type tally struct {
	lat    []time.Duration
	status [600]int64 // by status code; parseStatusLine admits 100-599 only
}

func run(cfg config) (Result, error) {
	if cfg.conc < 1 || cfg.maxReq < 1 {
		return Result{}, fmt.Errorf("-c and -max must be positive")
	}
	addr, req, err := newRequest(cfg.url, cfg.pay)
	if err != nil {
		return Result{}, err
	}
	// A first sample checks the -watch entries before the run rather than after it.
	if _, err := takeSample(cfg.watch); err != nil {
		return Result{}, err
	}
	l := &load{req: req, maxReq: int64(cfg.maxReq)}
	if cfg.pay {
		if l.sigs, err = presign(cfg.url, cfg.maxReq); err != nil {
			return Result{}, fmt.Errorf("presign: %w", err)
		}
	}
	l.start = time.Now().Add(cfg.warm)
	l.end = l.start.Add(cfg.dur)
	tallies := make([]tally, cfg.conc)
	var wg sync.WaitGroup
	for i := range tallies {
		tallies[i].lat = make([]time.Duration, 0, cfg.maxReq/cfg.conc+1)
		wg.Go(func() { l.client(addr, &tallies[i]) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// CPU is sampled from the end of the warm-up to the end of the window, or to the moment the
	// clients stop early (-max), so it covers the requests measured.
	var s0, s1 cpuSample
	var sampleErr error
	stop := time.Now()
	if waitUntil(l.start, done) {
		s0, sampleErr = takeSample(cfg.watch)
		waitUntil(l.end, done)
		stop = time.Now()
		if sampleErr == nil {
			s1, sampleErr = takeSample(cfg.watch)
		}
	}
	<-done
	if sampleErr != nil {
		return Result{}, sampleErr
	}

	var lat []time.Duration
	res := Result{Status: map[int]int64{}, Errors: l.errs.Load(), Signed: len(l.sigs)}
	for _, t := range tallies {
		lat = append(lat, t.lat...)
		for code, n := range t.status {
			if n > 0 {
				res.Status[code] += n
			}
		}
	}
	if len(lat) == 0 {
		return Result{}, fmt.Errorf("no responses measured (requests bounded by -max %d?)", cfg.maxReq)
	}
	slices.Sort(lat)
	res.Requests = int64(len(lat))
	res.Seconds = min(stop.Sub(l.start), cfg.dur).Seconds()
	res.RPS = float64(res.Requests) / res.Seconds
	res.P50ms = float64(lat[len(lat)/2].Microseconds()) / 1000
	res.P99ms = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	res.CPUusPerReq, res.MachineBusyPct = cpuPerRequest(cfg.watch, s0, s1, res.Requests)
	return res, nil
}

// waitUntil waits until t and reports true, or reports false as soon as done is closed.
func waitUntil(t time.Time, done <-chan struct{}) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-done:
		return false
	}
}

// client sends requests on one connection until the end of the run or -max, and records in t
// the responses that complete in the measured window.
func (l *load) client(addr string, t *tally) {
	// The connection's deadline is the end of the run: it unblocks a request in flight then.
	c := newClient(addr, l.end)
	defer c.close()
	for {
		t0 := time.Now()
		if !t0.Before(l.end) {
			return
		}
		n := l.next.Add(1)
		if n > l.maxReq {
			return
		}
		var sig string
		if l.sigs != nil {
			sig = l.sigs[n-1]
		}
		status, err := c.do(l.req, sig)
		t1 := time.Now()
		if err != nil {
			// Requests cut by the end of the run are not errors.
			if t1.Before(l.end) {
				l.errs.Add(1)
			}
			continue
		}
		if !t1.Before(l.start) && t1.Before(l.end) {
			t.lat = append(t.lat, t1.Sub(t0))
			t.status[status]++
		}
	}
}

// request is a GET request built once: head, then the payment signature if pay, then tail.
type request struct {
	head, tail []byte
	pay        bool
}

// newRequest returns the address to dial for the http URL rawURL and the request for it.
func newRequest(rawURL string, pay bool) (string, request, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", request{}, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return "", request{}, fmt.Errorf("-url %q: want http://host[:port]/path", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	head := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n"
	tail := "\r\n"
	if pay {
		head += x402.HeaderPaymentSignature + ": "
		tail = "\r\n\r\n"
	}
	return addr, request{head: []byte(head), tail: []byte(tail), pay: pay}, nil
}

// errProtocol marks a response this client cannot parse or frame.
var errProtocol = errors.New("HTTP protocol error")

// httpClient is a minimal HTTP/1.1 client on one keep-alive connection, redialled after an error
// or a Connection: close. It reads every body to keep the connection in step, and allocates
// nothing per request once the connection is up.
type httpClient struct {
	addr     string
	deadline time.Time // of every connection; zero for none
	conn     net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
}

func newClient(addr string, deadline time.Time) *httpClient {
	// The reader's size bounds a header line: 64 KiB, as the benchmark's servers' MaxHeaderBytes.
	return &httpClient{
		addr:     addr,
		deadline: deadline,
		r:        bufio.NewReaderSize(nil, 64<<10),
		w:        bufio.NewWriterSize(nil, 4<<10),
	}
}

// do sends req, with the payment signature sig if req pays, and returns the response's status.
// After an error or a response that closes the connection, the next call dials again.
func (c *httpClient) do(req request, sig string) (int, error) {
	if c.conn == nil {
		if err := c.dial(); err != nil {
			return 0, err
		}
	}
	_, _ = c.w.Write(req.head)
	if req.pay {
		_, _ = c.w.WriteString(sig)
	}
	_, _ = c.w.Write(req.tail)
	// bufio.Writer's errors are sticky: Flush reports any of the writes'.
	if err := c.w.Flush(); err != nil {
		c.close()
		return 0, fmt.Errorf("write request: %w", err)
	}
	status, keep, err := c.readResponse()
	if err != nil || !keep {
		c.close()
	}
	return status, err
}

func (c *httpClient) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	if !c.deadline.IsZero() {
		if err := conn.SetDeadline(c.deadline); err != nil {
			_ = conn.Close()
			return fmt.Errorf("set deadline: %w", err)
		}
	}
	c.conn = conn
	c.r.Reset(conn)
	c.w.Reset(conn)
	return nil
}

func (c *httpClient) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

// readResponse reads a response and discards its body. keep reports whether the connection
// stays open for the next request.
func (c *httpClient) readResponse() (status int, keep bool, err error) {
	line, err := c.readLine()
	if err != nil {
		return 0, false, fmt.Errorf("read status line: %w", err)
	}
	status, http10, err := parseStatusLine(line)
	if err != nil {
		return 0, false, err
	}
	length := int64(-1)
	var chunked, closing, keepAlive bool
	for {
		line, err := c.readLine()
		if err != nil {
			return status, false, fmt.Errorf("read header: %w", err)
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return status, false, fmt.Errorf("%w: header line without a colon: %q", errProtocol, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, ok = parseDecimal(value); !ok {
				return status, false, fmt.Errorf("%w: Content-Length %q", errProtocol, value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			// Chunked framing applies when chunked is the last coding.
			chunked = lastToken(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			closing = closing || hasToken(value, "close")
			keepAlive = keepAlive || hasToken(value, "keep-alive")
		}
	}
	if http10 && !keepAlive {
		closing = true
	}
	switch {
	case status == http.StatusNoContent || status == http.StatusNotModified:
		// No body, whatever the headers say.
	case chunked: // takes precedence over Content-Length (RFC 9112, 6.3)
		err = c.discardChunked()
	case length >= 0:
		_, err = c.r.Discard(int(length))
	case closing:
		// The body runs to the end of the connection.
		_, err = io.Copy(io.Discard, c.r)
	default:
		err = fmt.Errorf("%w: neither Content-Length nor chunked on a persistent connection", errProtocol)
	}
	if err != nil {
		return status, false, fmt.Errorf("read body of a %d response: %w", status, err)
	}
	return status, !closing, nil
}

// discardChunked reads a chunked body and its trailer section.
func (c *httpClient) discardChunked() error {
	for {
		line, err := c.readLine()
		if err != nil {
			return fmt.Errorf("chunk size: %w", err)
		}
		sizeField, _, _ := bytes.Cut(line, []byte{';'}) // chunk extensions are ignored
		size, ok := parseHex(bytes.TrimSpace(sizeField))
		if !ok {
			return fmt.Errorf("%w: chunk size line %q", errProtocol, line)
		}
		if size == 0 {
			break
		}
		if _, err := c.r.Discard(int(size)); err != nil {
			return fmt.Errorf("chunk data: %w", err)
		}
		if line, err := c.readLine(); err != nil {
			return fmt.Errorf("chunk end: %w", err)
		} else if len(line) != 0 {
			return fmt.Errorf("%w: chunk data longer than its size", errProtocol)
		}
	}
	for {
		line, err := c.readLine()
		if err != nil {
			return fmt.Errorf("trailer: %w", err)
		}
		if len(line) == 0 {
			return nil
		}
	}
}

// readLine returns the next line without its CRLF (or LF). The line is valid until the next read.
func (c *httpClient) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errProtocol, c.r.Size())
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine parses "HTTP/1.x NNN reason".
func parseStatusLine(line []byte) (status int, http10 bool, err error) {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
		line[8] != ' ' || line[9] < '1' || line[9] > '5' || !isDigit(line[10]) || !isDigit(line[11]) ||
		(len(line) > 12 && line[12] != ' ') {
		return 0, false, fmt.Errorf("%w: status line %q", errProtocol, line)
	}
	status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	// Interim responses are never sent here: the client sends no Expect and takes no upgrade.
	if status < 200 {
		return 0, false, fmt.Errorf("%w: unexpected interim response %d", errProtocol, status)
	}
	return status, line[7] == '0', nil
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// parseDecimal parses a non-negative decimal number of at most 18 digits (no overflow).
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if !isDigit(d) {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// parseHex parses a chunk size: at most 15 hex digits (no overflow).
func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		switch {
		case isDigit(d):
			n = n<<4 | int64(d-'0')
		case 'a' <= lower(d) && lower(d) <= 'f':
			n = n<<4 | int64(lower(d)-'a'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// asciiEqualFold reports whether b equals s ignoring ASCII case: header names and the tokens
// looked for are ASCII. It needs no conversion of b, hence no allocation.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token (ASCII case-insensitive).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var item []byte
		item, v, _ = bytes.Cut(v, []byte{','})
		if asciiEqualFold(bytes.TrimSpace(item), token) {
			return true
		}
	}
	return false
}

// lastToken reports whether the last item of the comma-separated list v is token.
func lastToken(v []byte, token string) bool {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return asciiEqualFold(bytes.TrimSpace(v), token)
}

// presign fetches the challenge and signs n payments spread over payerKeys keys. One request
// only, so net/http's cost does not matter here.
// payerKeys is how many payers the signed payments come from. The gateway lets a payer have one
// payment in flight per route (429 payment_in_flight otherwise), so requests sent together must
// come from distinct payers: with 1,024 keys, two payments of one payer are 1,024 requests apart,
// far more than the clients in flight.
const payerKeys = 1024

func presign(rawURL string, n int) ([]string, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(rawURL)
	if err != nil {
		return nil, fmt.Errorf("fetch challenge: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		return nil, fmt.Errorf("challenge (status %d): %w", resp.StatusCode, err)
	}
	keys := make([]*ecdsa.PrivateKey, payerKeys)
	for i := range keys {
		if keys[i], err = crypto.GenerateKey(); err != nil {
			return nil, fmt.Errorf("payer key: %w", err)
		}
	}
	out := make([]string, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				p, err := eip3009.NewSigner(keys[i%len(keys)]).Sign(pr.Accepts[0], pr.Resource)
				if err == nil {
					out[i], err = x402.EncodePaymentSignature(p)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return out, nil
}

// watch is one -watch entry: the process pid, or every process whose comm is comm.
type watch struct {
	name string
	pid  int
	comm string
}

// parseWatch parses -watch: comma-separated name=PID or name=comm:NAME. NAME is compared with
// /proc/PID/comm, which the kernel cuts to 15 bytes.
func parseWatch(s string) ([]watch, error) {
	var out []watch
	seen := map[string]bool{"gen": true, "machine": true} // reported anyway
	for entry := range strings.SplitSeq(s, ",") {
		if entry == "" {
			continue
		}
		name, target, ok := strings.Cut(entry, "=")
		if !ok || name == "" || target == "" {
			return nil, fmt.Errorf("-watch %q: want name=PID or name=comm:NAME", entry)
		}
		if seen[name] {
			return nil, fmt.Errorf("-watch %q: name %s is reserved or given twice", entry, name)
		}
		seen[name] = true
		if comm, ok := strings.CutPrefix(target, "comm:"); ok {
			if comm == "" {
				return nil, fmt.Errorf("-watch %q: empty comm", entry)
			}
			out = append(out, watch{name: name, comm: comm})
			continue
		}
		pid, err := strconv.Atoi(target)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("-watch %q: %q is not a pid", entry, target)
		}
		out = append(out, watch{name: name, pid: pid})
	}
	return out, nil
}

// userHZ is the unit of the CPU times in /proc: USER_HZ, which Linux fixes at 100 ticks per
// second for user space whatever the kernel's internal HZ.
const userHZ = 100

// procKey names a process across the window; its start time tells a reused pid apart.
type procKey struct {
	pid   int
	start uint64
}

// cpuSample is the CPU time used up to one moment.
type cpuSample struct {
	procs       []map[procKey]uint64 // per watch entry: ticks by process
	gen         time.Duration        // the generator's own user+system time
	busy, total uint64               // the machine's, in ticks; total is 0 without /proc/stat
}

func takeSample(watches []watch) (cpuSample, error) {
	s := cpuSample{procs: make([]map[procKey]uint64, len(watches))}
	comms := false
	for i, w := range watches {
		s.procs[i] = map[procKey]uint64{}
		if w.comm != "" {
			comms = true
			continue
		}
		ticks, start, err := procCPU(w.pid)
		if err != nil {
			return s, fmt.Errorf("watch %s: %w", w.name, err)
		}
		s.procs[i][procKey{w.pid, start}] = ticks
	}
	if comms {
		if err := sampleComms(watches, s.procs); err != nil {
			return s, err
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return s, fmt.Errorf("getrusage: %w", err)
	}
	s.gen = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	busy, total, err := cpustat.Machine()
	switch {
	case errors.Is(err, fs.ErrNotExist): // not Linux: no machine figures
	case err != nil:
		return s, err
	default:
		s.busy, s.total = busy, total
	}
	return s, nil
}

// sampleComms adds to procs the CPU time of every process whose comm a comm entry names.
// Processes that exit meanwhile are skipped: their time is lost.
func sampleComms(watches []watch, procs []map[procKey]uint64) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil {
			continue // exited
		}
		comm := strings.TrimSuffix(string(b), "\n")
		for i, w := range watches {
			if w.comm == "" || w.comm != comm {
				continue
			}
			ticks, start, err := procCPU(pid)
			if err != nil {
				break // exited
			}
			procs[i][procKey{pid, start}] = ticks
		}
	}
	return nil
}

// procCPU returns the user+system time of process pid (all its threads) in ticks, and its start
// time, from /proc/PID/stat: fields 14, 15 and 22.
func procCPU(pid int) (ticks, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	// Field 2, the comm in parentheses, may hold spaces and parentheses: field 3 follows the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("pid %d: malformed /proc stat", pid)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 22-3+1 {
		return 0, 0, fmt.Errorf("pid %d: /proc stat has %d fields", pid, len(f)+2)
	}
	var v [3]uint64
	for j, field := range []int{14, 15, 22} {
		if v[j], err = strconv.ParseUint(f[field-3], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("pid %d: /proc stat field %d: %w", pid, field, err)
		}
	}
	return v[0] + v[1], v[2], nil
}

// cpuPerRequest returns the CPU microseconds per request between the samples s0 and s1, by
// name, and the machine's busy percentage.
func cpuPerRequest(watches []watch, s0, s1 cpuSample, requests int64) (map[string]float64, float64) {
	perReq := func(us float64) float64 { return math.Round(us/float64(requests)*10) / 10 }
	const usPerTick = 1e6 / userHZ
	out := map[string]float64{"gen": perReq(float64((s1.gen - s0.gen).Microseconds()))}
	for i, w := range watches {
		var ticks uint64
		for k, t := range s1.procs[i] {
			ticks += t - s0.procs[i][k] // a process started in the window counts in full
		}
		out[w.name] = perReq(float64(ticks) * usPerTick)
	}
	var busyPct float64
	if s1.total > s0.total {
		out["machine"] = perReq(float64(s1.busy-s0.busy) * usPerTick)
		busyPct = math.Round(float64(s1.busy-s0.busy)/float64(s1.total-s0.total)*1000) / 10
	}
	return out, busyPct
}
