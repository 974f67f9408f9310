package main

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/x402"
)

// countingServer starts an httptest server with h and returns its URL and a counter of the
// connections it accepted.
func countingServer(t *testing.T, h http.Handler) (string, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, &conns
}

// sequenced wraps h so that the n-th response (from 0) has status 200+n%3: a client that
// misreads a body's end sees the wrong status on the next response.
func sequenced(h func(w http.ResponseWriter, r *http.Request, status int)) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, 200+int((n.Add(1)-1)%3))
	})
}

// roundTrips sends n requests to rawURL with one client and checks each status.
func roundTrips(t *testing.T, rawURL string, pay bool, n int, want func(i int) int) {
	t.Helper()
	addr, req, err := newRequest(rawURL, pay)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(addr, time.Now().Add(10*time.Second))
	defer c.close()
	for i := range n {
		status, err := c.do(req, "sig-"+strconv.Itoa(i))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if w := want(i); status != w {
			t.Fatalf("request %d: status %d, want %d", i, status, w)
		}
	}
}

func wantSequence(i int) int { return 200 + i%3 }

func TestContentLength(t *testing.T) {
	for _, size := range []int{0, 256, 200 << 10} { // the last one is larger than the read buffer
		body := bytes.Repeat([]byte("x"), size)
		u, conns := countingServer(t, sequenced(func(w http.ResponseWriter, _ *http.Request, status int) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(status)
			_, _ = w.Write(body)
		}))
		roundTrips(t, u+"/paid?q=1", false, 30, wantSequence)
		if n := conns.Load(); n != 1 {
			t.Errorf("body %d bytes: %d connections, want 1 (keep-alive)", size, n)
		}
	}
}

func TestChunked(t *testing.T) {
	u, conns := countingServer(t, sequenced(func(w http.ResponseWriter, _ *http.Request, status int) {
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(status)
		for _, size := range []int{1, 100 << 10, 17} { // one chunk larger than the read buffer
			_, _ = w.Write(bytes.Repeat([]byte("y"), size))
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Checksum", "1")
	}))
	roundTrips(t, u+"/", false, 30, wantSequence)
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (keep-alive)", n)
	}
}

func TestConnectionClose(t *testing.T) {
	u, conns := countingServer(t, sequenced(func(w http.ResponseWriter, _ *http.Request, status int) {
		w.Header().Set("Connection", "close")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("bye"))
	}))
	roundTrips(t, u+"/", false, 20, wantSequence)
	if n := conns.Load(); n != 20 {
		t.Errorf("%d connections, want 20 (one per request)", n)
	}
}

func TestPaymentHeader(t *testing.T) {
	var n atomic.Int64
	u, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := "sig-" + strconv.FormatInt(n.Add(1)-1, 10)
		if got := r.Header.Get(x402.HeaderPaymentSignature); got != want {
			http.Error(w, "wrong payment "+got, http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("paid"))
	}))
	roundTrips(t, u+"/paid", true, 10, func(int) int { return http.StatusOK })
}

// rawServer serves every request on every connection with resp, written as is, and closes the
// connection after each response if closeAfter. It returns the URL and the accepted connections.
func rawServer(t *testing.T, resp string, closeAfter bool) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	out := []byte(resp)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					for { // the request's head
						line, err := r.ReadSlice('\n')
						if err != nil {
							return
						}
						if string(line) == "\r\n" {
							break
						}
					}
					if _, err := conn.Write(out); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/", &conns
}

func TestRawResponses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		resp       string
		closeAfter bool
		wantStatus int
		wantConns  int64 // for 3 requests
		wantErr    error
	}{
		{name: "lower-case content-length", wantStatus: 200, wantConns: 1,
			resp: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"},
		{name: "chunk extension and trailer, upper-case header", wantStatus: 402, wantConns: 1,
			resp: "HTTP/1.1 402 Payment Required\r\nTRANSFER-ENCODING: Chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"},
		{name: "chunked wins over content-length", wantStatus: 200, wantConns: 1,
			resp: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{name: "no content on 204", wantStatus: 204, wantConns: 1,
			resp: "HTTP/1.1 204 No Content\r\n\r\n"},
		{name: "body until close", wantStatus: 200, wantConns: 3, closeAfter: true,
			resp: "HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\nthe body runs to the end"},
		{name: "HTTP/1.0 closes", wantStatus: 200, wantConns: 3, closeAfter: true,
			resp: "HTTP/1.0 200 OK\r\n\r\nold"},
		{name: "no framing on a persistent connection", wantErr: errProtocol,
			resp: "HTTP/1.1 200 OK\r\n\r\nhello"},
		{name: "garbage status line", wantErr: errProtocol,
			resp: "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"},
		{name: "bad chunk size", wantErr: errProtocol,
			resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, conns := rawServer(t, tc.resp, tc.closeAfter)
			addr, req, err := newRequest(u, false)
			if err != nil {
				t.Fatal(err)
			}
			c := newClient(addr, time.Now().Add(10*time.Second))
			defer c.close()
			for i := range 3 {
				status, err := c.do(req, "")
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("err %v, want %v", err, tc.wantErr)
					}
					return
				}
				if err != nil || status != tc.wantStatus {
					t.Fatalf("request %d: status %d, err %v; want %d", i, status, err, tc.wantStatus)
				}
			}
			if n := conns.Load(); n != tc.wantConns {
				t.Errorf("%d connections, want %d", n, tc.wantConns)
			}
		})
	}
}

// TestRun runs the generator briefly against a 402 server, with CPU sampling of this process by
// pid and by comm.
func TestRun(t *testing.T) {
	u, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(x402.HeaderPaymentRequired, strings.Repeat("c", 600))
		http.Error(w, "pay", http.StatusPaymentRequired)
	}))
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	watches, err := parseWatch("self=" + strconv.Itoa(os.Getpid()) + ",same=comm:" + strings.TrimSpace(string(comm)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := run(config{url: u + "/paid", conc: 4, warm: 50 * time.Millisecond, dur: 300 * time.Millisecond, maxReq: 1 << 20, watch: watches})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Status[http.StatusPaymentRequired] != res.Requests || len(res.Status) != 1 || res.Errors != 0 {
		t.Fatalf("requests %d, status %v, errors %d: want only 402s", res.Requests, res.Status, res.Errors)
	}
	for _, name := range []string{"gen", "machine", "self", "same"} {
		if _, ok := res.CPUusPerReq[name]; !ok {
			t.Errorf("cpu_us_per_req has no %q: %v", name, res.CPUusPerReq)
		}
	}
	if res.CPUusPerReq["gen"] <= 0 || res.MachineBusyPct <= 0 || res.MachineBusyPct > 100 {
		t.Errorf("cpu_us_per_req %v, machine busy %v%%", res.CPUusPerReq, res.MachineBusyPct)
	}
}

func TestRunMax(t *testing.T) {
	u, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	res, err := run(config{url: u, conc: 3, warm: 0, dur: 10 * time.Second, maxReq: 500})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 500 || res.Status[200] != 500 || res.Seconds >= 10 {
		t.Fatalf("requests %d, status %v, seconds %v: want 500 200s well before the end", res.Requests, res.Status, res.Seconds)
	}
}

func TestParseWatch(t *testing.T) {
	got, err := parseWatch("gateway=1234,postgres=comm:postgres,,bench=9")
	if err != nil {
		t.Fatal(err)
	}
	want := []watch{{name: "gateway", pid: 1234}, {name: "postgres", comm: "postgres"}, {name: "bench", pid: 9}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"gateway", "=1", "g=", "g=x", "g=-1", "g=comm:", "gen=1", "machine=comm:x", "a=1,a=2"} {
		if _, err := parseWatch(bad); err == nil {
			t.Errorf("parseWatch(%q) accepted", bad)
		}
	}
}

func TestCPUPerRequest(t *testing.T) {
	w := []watch{{name: "pg", comm: "postgres"}}
	k1, k2, k3 := procKey{1, 10}, procKey{2, 10}, procKey{3, 500}
	s0 := cpuSample{procs: []map[procKey]uint64{{k1: 100, k2: 50}}, gen: time.Second, busy: 1000, total: 4000}
	// k2 exited (lost), k3 started in the window (counted in full).
	s1 := cpuSample{procs: []map[procKey]uint64{{k1: 300, k3: 100}}, gen: 3 * time.Second, busy: 1600, total: 4800}
	got, busy := cpuPerRequest(w, s0, s1, 1000)
	// pg: 300 ticks = 3 s over 1000 requests; gen 2 s; machine 600 ticks = 6 s.
	if got["pg"] != 3000 || got["gen"] != 2000 || got["machine"] != 6000 || busy != 75 {
		t.Fatalf("got %v, busy %v%%", got, busy)
	}
}

// TestAllocs checks that a request on an open connection allocates nothing. AllocsPerRun counts
// the whole process's allocations, so the server is rawServer, which allocates none per request.
func TestAllocs(t *testing.T) {
	u, _ := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
	addr, req, err := newRequest(u, true)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(addr, time.Time{})
	defer c.close()
	if _, err := c.do(req, "sig"); err != nil { // dials
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() {
		if _, err := c.do(req, "sig"); err != nil {
			t.Fatal(err)
		}
	}); n > 0 {
		t.Errorf("%v allocations per request on an open connection, want 0", n)
	}
}
