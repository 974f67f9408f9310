package attack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/gateway/config"
)

// testTransport: the data server's deadlines. A client trickling its body is disconnected
// after readTimeout; a slow stream that keeps moving outlives writeIdleTimeout.
func testTransport(t *testing.T, w *world) {
	s := w.newStack(t, stackOpts{route: "shop/transport", kind: config.KindMock,
		routes:  []map[string]any{{"path": "/paid", "price": "0.01"}},
		gateway: map[string]any{"readHeaderTimeout": "1s", "readTimeout": "2s", "writeIdleTimeout": "2s"}})

	t.Run("a client trickling its body is disconnected", func(t *testing.T) {
		t.Parallel()
		const size = 200 // bytes, one per 100 ms: 20 s if the gateway waited
		conn, err := w.client().dial(context.Background(), s.gw.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		fmt.Fprintf(conn, "POST /free/upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", s.gw.Addr, size)
		wrote := make(chan int, 1)
		go func() {
			n := 0
			for ; n < size; n++ {
				if _, err := conn.Write([]byte("x")); err != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			wrote <- n
		}()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		// Whatever the gateway answers, it must close the connection.
		_, err = io.Copy(io.Discard, conn)
		elapsed := time.Since(start)
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the connection was still open after %s", elapsed.Round(time.Millisecond))
		}
		_ = conn.Close()
		if n := <-wrote; n >= size {
			t.Errorf("the whole body was accepted (%d bytes in %s)", n, elapsed)
		}
		for _, h := range s.up.hitsOf("/free/upload") {
			if h.BodyErr == nil && h.BodyLen == size {
				t.Error("the upstream received the whole trickled body")
			}
		}
	})

	t.Run("a slow stream that keeps moving is not cut", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Get(s.gw.URL + streamPrefix + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		lines := 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "chunk ") {
				lines++
			}
		}
		if resp.StatusCode != 200 || lines != 25 || sc.Err() != nil {
			t.Errorf("stream: status %d, %d of 25 chunks, %v", resp.StatusCode, lines, sc.Err())
		}
	})
}
