package attack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/testutil/gatewayproc"
	"github.com/insforge/integrations-operator/internal/x402"
)

// requestTimeout bounds one exchange with a gateway.
const requestTimeout = 60 * time.Second

// client sends requests from its own loopback address, so that the gateway's per-address
// limits of one case do not leak into another. It writes the request line and headers
// verbatim: the paths and header names under attack are sent exactly as written.
type client struct {
	ip net.IP
}

// req is one request; Header pairs are written in order, names untouched.
type req struct {
	Method string
	Target string // request-target: escaped path and query, as sent
	Header [][2]string
	Body   []byte
}

// answer is a gateway's response, decoded.
type answer struct {
	Status   int
	Header   http.Header
	Body     []byte
	JSON     errorBody             // the JSON body of the gateway's own answers
	Required *x402.PaymentRequired // PAYMENT-REQUIRED, decoded
	Receipt  *x402.SettleResponse  // PAYMENT-RESPONSE, decoded
}

// errorBody is the gateway's JSON answer body (a challenge, a refusal, or both).
type errorBody struct {
	X402Version int                        `json:"x402Version"`
	Error       string                     `json:"error"`
	Reason      string                     `json:"reason"`
	Resource    *x402.ResourceInfo         `json:"resource"`
	Accepts     []x402.PaymentRequirements `json:"accepts"`
	Transaction string                     `json:"transaction"`
}

func (a answer) String() string {
	return fmt.Sprintf("%d reason=%q body=%.300s", a.Status, a.JSON.Reason, a.Body)
}

// amount is the price the challenge names, or "".
func (a answer) amount() string {
	if a.Required == nil || len(a.Required.Accepts) != 1 {
		return ""
	}
	return a.Required.Accepts[0].Amount
}

// resourceURL is the challenge's resource URL, or "".
func (a answer) resourceURL() string {
	if a.Required == nil || a.Required.Resource == nil {
		return ""
	}
	return a.Required.Resource.URL
}

func (c client) dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: c.ip}, Timeout: 10 * time.Second}
	return d.DialContext(ctx, "tcp", addr)
}

// do sends r to the gateway on a fresh connection and reads the whole answer.
func (c client) do(t *testing.T, gw *gatewayproc.Gateway, r req) answer {
	t.Helper()
	a, err := c.try(gw, r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Target, err)
	}
	return a
}

func (c client) try(gw *gatewayproc.Gateway, r req) (answer, error) {
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	conn, err := c.dial(ctx, gw.Addr)
	if err != nil {
		return answer{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(requestTimeout))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", r.Method, r.Target, gw.Addr)
	for _, h := range r.Header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if r.Body != nil || r.Method == http.MethodPost {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.Body))
	}
	b.WriteString("\r\n")
	b.Write(r.Body)
	if _, err := conn.Write(b.Bytes()); err != nil {
		return answer{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: r.Method})
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: body}
	_ = json.Unmarshal(body, &a.JSON)
	if v := resp.Header.Get(x402.HeaderPaymentRequired); v != "" {
		if pr, err := x402.DecodePaymentRequired(v); err == nil {
			a.Required = &pr
		}
	}
	if v := resp.Header.Get(x402.HeaderPaymentResponse); v != "" {
		if sr, err := x402.DecodePaymentResponse(v); err == nil {
			a.Receipt = &sr
		}
	}
	return a, nil
}

// get sends a GET of target with the given header pairs.
func (c client) get(t *testing.T, gw *gatewayproc.Gateway, target string, header ...[2]string) answer {
	t.Helper()
	return c.do(t, gw, req{Method: http.MethodGet, Target: target, Header: header})
}

// pay sends a GET of target carrying the payment.
func (c client) pay(t *testing.T, gw *gatewayproc.Gateway, target, payment string, header ...[2]string) answer {
	t.Helper()
	return c.do(t, gw, req{Method: http.MethodGet, Target: target, Header: append([][2]string{{x402.HeaderPaymentSignature, payment}}, header...)})
}

// challenge fetches the requirements of target as a client would: GET, 402, PAYMENT-REQUIRED.
func (c client) challenge(t *testing.T, gw *gatewayproc.Gateway, target string) (x402.PaymentRequirements, *x402.ResourceInfo) {
	t.Helper()
	a := c.get(t, gw, target)
	if a.Status != http.StatusPaymentRequired || a.Required == nil || len(a.Required.Accepts) != 1 {
		t.Fatalf("challenge for %s: %v", target, a)
	}
	return a.Required.Accepts[0], a.Required.Resource
}

// retryAfter is the Retry-After header in seconds, or -1.
func retryAfter(a answer) int {
	v, err := strconv.Atoi(a.Header.Get("Retry-After"))
	if err != nil {
		return -1
	}
	return v
}
