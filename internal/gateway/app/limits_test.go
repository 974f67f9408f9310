package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// bound is the generous limit within which the gateway must have acted; the behaviour under
// test takes a fraction of it, its absence takes forever.
const bound = 30 * time.Second

// running is a gateway started with Run, in front of a real upstream, on a real ledger.
type running struct {
	data, admin string
}

// startGateway runs the gateway with gatewayJSON as the members of its "gateway" object (mock
// facilitator, one priced route GET /paid) until the test ends.
func startGateway(t *testing.T, upstream http.Handler, gatewayJSON string) running {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	db := pgtest.NewDatabase(t)
	g := running{data: freeport.MustAddr(t), admin: freeport.MustAddr(t)}
	raw := fmt.Sprintf(`{"route": "ns/limits", "listen": %q, "adminListen": %q, "upstream": %q, "network": "eip155:196",
	  "asset": {"address": "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8", "decimals": 6, "eip712Name": "Global Dollar", "eip712Version": "1"},
	  "payTo": "0x1111111111111111111111111111111111111111", "maxTimeoutSeconds": 300,
	  "routes": [{"path": "/paid", "price": "0.01"}], "facilitator": {"kind": "mock"}, "ledger": {"migrate": true},
	  "gateway": {"spoolDir": %q, "shutdownTimeout": "2s" %s}}`,
		g.data, g.admin, up.URL, filepath.Join(t.TempDir(), "spool"), gatewayJSON)
	cfg, err := config.Parse([]byte(raw), config.Env{config.EnvDatabaseURL: db.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(bound):
			t.Error("the gateway did not stop")
		}
	})
	deadline := time.Now().Add(bound)
	for {
		resp, err := http.Get("http://" + g.admin + config.PathReadyz)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g
			}
		}
		select {
		case err := <-done:
			t.Fatalf("the gateway stopped during start-up: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not become ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialSlow connects with a small receive buffer, so that a client that does not read fills
// the path quickly instead of letting the kernel soak up megabytes. The buffer is set before
// the handshake: shrunk afterwards, the window already advertised makes the kernel drop data.
func dialSlow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRequestBodyTrickledPastReadTimeoutIsCut(t *testing.T) {
	var complete atomic.Int64
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, err := io.ReadAll(r.Body); err == nil && len(b) == 1000 {
			complete.Add(1)
		}
	})
	g := startGateway(t, up, `, "readTimeout": "1s", "readHeaderTimeout": "1s"`)
	c := dialSlow(t, g.data)
	if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 100ms: the whole body would take 100s
		for i := 0; i < 1000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := c.Write([]byte{'x'}); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(bound))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if isTimeout(err) {
		t.Fatalf("the gateway was still reading the trickled body after %s", bound)
	}
	if err == nil && resp.StatusCode < 400 {
		t.Fatalf("a request whose body never arrived answered %d", resp.StatusCode)
	}
	if complete.Load() != 0 {
		t.Fatal("the upstream received the whole body")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestClientThatStopsReadingIsCut: a client that asks for a large answer and reads nothing must
// not hold the gateway (and its upstream connection) forever, whether the answer streams or is
// buffered for a settlement.
func TestClientThatStopsReadingIsCut(t *testing.T) {
	upstreamCut := make(chan struct{}, 1)
	const paidSize = 6 << 20 // above what the kernel buffers for a 16 KiB receive window
	up := http.NewServeMux()
	up.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("e", 32<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				upstreamCut <- struct{}{}
				return
			}
		}
	})
	up.HandleFunc("/paid", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("p", paidSize)))
	})
	g := startGateway(t, up, `, "writeIdleTimeout": "500ms"`)

	t.Run("stream", func(t *testing.T) {
		c := dialSlow(t, g.data)
		if _, err := io.WriteString(c, "GET /endless HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		// The gateway gives up on the client and so drops the upstream request.
		select {
		case <-upstreamCut:
		case <-time.After(bound):
			t.Fatalf("the gateway still waits on a client that reads nothing after %s", bound)
		}
	})

	t.Run("buffered", func(t *testing.T) {
		payment := signFor(t, g.data, "/paid")
		c := dialSlow(t, g.data)
		if _, err := io.WriteString(c, "GET /paid HTTP/1.1\r\nHost: gw\r\n"+x402.HeaderPaymentSignature+": "+payment+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(bound))
		br := bufio.NewReaderSize(c, 4096)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength != paidSize {
			t.Fatalf("paid answer: %v %v", resp, err)
		}
		// Stall well past the idle write timeout, then read what is left: the gateway cut the
		// connection, so the body ends short.
		time.Sleep(10 * 500 * time.Millisecond)
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil || n >= paidSize || isTimeout(err) {
			t.Fatalf("read %d of %d bytes, err %v: the stalled client was not cut", n, paidSize, err)
		}
	})
}

// signFor fetches the challenge of path and returns a signed PAYMENT-SIGNATURE for it.
func signFor(t *testing.T, addr, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil || resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("challenge: %d %v", resp.StatusCode, err)
	}
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := eip3009.NewSigner(key).Sign(pr.Accepts[0], pr.Resource)
	if err != nil {
		t.Fatal(err)
	}
	h, err := x402.EncodePaymentSignature(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestStreamThatKeepsMovingOutlivesEveryTimeout: a stream that sends a chunk every 200ms for 3s
// outlasts the idle write timeout (500ms) and the request read timeout (1s) and arrives whole,
// for a request without a body and one with.
func TestStreamThatKeepsMovingOutlivesEveryTimeout(t *testing.T) {
	const ticks = 15
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, _ := io.ReadAll(r.Body); r.Method == http.MethodPost && string(b) != "hello" {
			http.Error(w, "body "+string(b), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range ticks {
			fmt.Fprintf(w, "tick %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(200 * time.Millisecond)
		}
	})
	g := startGateway(t, up, `, "writeIdleTimeout": "500ms", "readTimeout": "1s", "readHeaderTimeout": "1s"`)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("hello")
			}
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, method, "http://"+g.data+"/ticks", body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, read %q, err %v", resp.StatusCode, got, err)
			}
			if lines := strings.Count(string(got), "\n"); lines != ticks || !strings.HasSuffix(string(got), fmt.Sprintf("tick %d\n", ticks-1)) {
				t.Fatalf("got %d of %d ticks: %q", lines, ticks, got)
			}
		})
	}
}

// TestConnectionCap: with maxConnections 2, a third client is not served until one of the two
// open connections closes; the admin server stays reachable.
func TestConnectionCap(t *testing.T) {
	var served atomic.Int64
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.WriteString(w, "ok")
	})
	g := startGateway(t, up, `, "maxConnections": 2`)
	get := func(c net.Conn, br *bufio.Reader, wait time.Duration) (*http.Response, error) {
		if _, err := io.WriteString(c, "GET /free HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		return resp, err
	}
	var open []net.Conn
	for i := range 2 {
		c, err := net.Dial("tcp", g.data)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if resp, err := get(c, bufio.NewReader(c), bound); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d: %v %v", i, resp, err)
		}
		open = append(open, c) // kept alive, so it holds its slot
	}
	third, err := net.Dial("tcp", g.data) // the kernel completes the handshake; the gateway does not accept
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = third.Close() })
	br := bufio.NewReader(third)
	if resp, err := get(third, br, time.Second); !isTimeout(err) {
		t.Fatalf("the connection over the cap was served: %v %v", resp, err)
	}
	if served.Load() != 2 {
		t.Fatalf("the upstream served %d requests, want 2", served.Load())
	}
	if resp, err := http.Get("http://" + g.admin + config.PathReadyz); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readiness at the connection cap: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// A slot frees up: the waiting request is served.
	_ = open[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(bound))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after a connection closed: %v %v", resp, err)
	}
	if served.Load() != 3 {
		t.Fatalf("the upstream served %d requests, want 3", served.Load())
	}
}
