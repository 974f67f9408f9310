package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/insforge/integrations-operator/internal/x402"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 (plus the de-facto ones) that a proxy
// must not forward.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// paymentHeaders never reach the upstream: they are the gateway's business, and a signed payment
// is a bearer instrument until settled. Lower case, as foldedEqual compares.
var paymentHeaders = []string{strings.ToLower(x402.HeaderPaymentSignature), strings.ToLower(x402.HeaderXPayment)}

// foldedEqual reports whether header name k, lower-cased with '_' read as '-', equals lower
// (already lower case). nginx (underscores_in_headers), CGI, PHP and Express-style upstreams
// fold those spellings into one header, while Go keeps X_Payment_Payer apart from
// X-Payment-Payer; comparing folded names closes that gap without allocating.
func foldedEqual(k, lower string) bool {
	return len(k) == len(lower) && foldedHasPrefix(k, lower)
}

// foldedHasPrefix is foldedEqual for a prefix.
func foldedHasPrefix(k, lower string) bool {
	if len(k) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		c := k[i]
		if c == '_' {
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// removeHopHeaders deletes hop-by-hop headers, including those named in Connection.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// upstream forwards requests to the service behind the gateway.
type upstream struct {
	base        *url.URL
	transport   http.RoundTripper
	timeout     time.Duration
	maxBytes    int64
	payerHeader string
	payerLower  string // payerHeader lower-cased, for foldedEqual
	trustFwd    bool
	proxy       *httputil.ReverseProxy // streaming: unpriced paths and beforeUpstream routes
}

// errTooLarge: the upstream response exceeds maxResponseBytes on a buffered route.
var errTooLarge = errors.New("upstream response exceeds the buffered size limit")

// payerKey carries the verified payer and the receipt header into the streaming proxy.
type payerKey struct{}

type streamInfo struct {
	payer   string
	receipt http.Header // added to the response
}

func newUpstream(base *url.URL, transport http.RoundTripper, timeout time.Duration, maxBytes int64, payerHeader string, trustFwd bool) *upstream {
	u := &upstream{base: base, transport: transport, timeout: timeout, maxBytes: maxBytes,
		payerHeader: payerHeader, payerLower: strings.ToLower(payerHeader), trustFwd: trustFwd}
	u.proxy = &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			info, _ := pr.In.Context().Value(payerKey{}).(*streamInfo)
			u.outgoingHeaders(pr.Out, pr.In, info)
		},
		ModifyResponse: func(resp *http.Response) error {
			if info, _ := resp.Request.Context().Value(payerKey{}).(*streamInfo); info != nil {
				for k, v := range info.receipt {
					resp.Header[k] = v
				}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, http.StatusBadGateway, "upstream_unavailable", "the upstream did not answer")
		},
	}
	return u
}

// outgoingHeaders prepares out's headers (a copy of in's, hop-by-hop headers removed): the
// client's payment, payer and forwarding headers go, in every spelling; then the gateway sets
// X-Forwarded-* and the payer.
func (u *upstream) outgoingHeaders(out, in *http.Request, info *streamInfo) {
	u.dropClientHeaders(out.Header)
	u.forwardedHeaders(out, in)
	if info != nil && info.payer != "" {
		out.Header.Set(u.payerHeader, info.payer)
	}
}

// dropClientHeaders deletes every header whose folded name is a payment header, the payer header
// (a client must not be able to claim to be a payer), Forwarded or X-Forwarded-*. With
// trustForwarded, X-Forwarded-* in the canonical spelling stay: a proxy in front sets those,
// and no proxy writes them with underscores.
func (u *upstream) dropClientHeaders(h http.Header) {
	for k := range h {
		switch {
		case foldedEqual(k, u.payerLower), foldedEqual(k, paymentHeaders[0]), foldedEqual(k, paymentHeaders[1]),
			foldedEqual(k, "forwarded"):
			delete(h, k)
		case foldedHasPrefix(k, "x-forwarded-"):
			if !u.trustFwd || k != textproto.CanonicalMIMEHeaderKey(k) || strings.IndexByte(k, '_') >= 0 {
				delete(h, k)
			}
		}
	}
}

// forwardedHeaders sets X-Forwarded-For/Host/Proto on out. Trusted incoming values (from an
// ingress in front) are kept; otherwise they describe this hop.
func (u *upstream) forwardedHeaders(out, in *http.Request) {
	clientIP, _, err := net.SplitHostPort(in.RemoteAddr)
	if err == nil {
		prior := in.Header.Values("X-Forwarded-For")
		if u.trustFwd && len(prior) > 0 {
			clientIP = strings.Join(prior, ", ") + ", " + clientIP
		}
		out.Header.Set("X-Forwarded-For", clientIP)
	} else {
		out.Header.Del("X-Forwarded-For")
	}
	host, proto := in.Host, "http"
	if in.TLS != nil {
		proto = "https"
	}
	if u.trustFwd {
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
		if v := in.Header.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
	}
	out.Header.Set("X-Forwarded-Host", host)
	out.Header.Set("X-Forwarded-Proto", proto)
}

// stream proxies r to the upstream and streams the answer; payer and receipt may be empty.
func (u *upstream) stream(w http.ResponseWriter, r *http.Request, payer string, receipt http.Header) {
	ctx := context.WithValue(r.Context(), payerKey{}, &streamInfo{payer: payer, receipt: receipt})
	u.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// buffered is an upstream response held in memory until the payment is settled.
type buffered struct {
	status int
	header http.Header
	body   []byte
}

// fetch sends r to the upstream with payer set and reads the whole response, at most maxBytes.
func (u *upstream) fetch(ctx context.Context, r *http.Request, payer string) (*buffered, error) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	out := r.Clone(ctx)
	out.RequestURI = ""
	out.Close = false
	out.Host = ""
	out.URL.Scheme, out.URL.Host = u.base.Scheme, u.base.Host
	out.URL.Path, out.URL.RawPath = joinPath(u.base, r.URL)
	if u.base.RawQuery != "" {
		out.URL.RawQuery = u.base.RawQuery + "&" + r.URL.RawQuery
	}
	if r.ContentLength == 0 {
		out.Body = nil // no chunked empty body to upstreams that dislike it
	}
	removeHopHeaders(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // Go would add its own otherwise
	}
	u.outgoingHeaders(out, r, &streamInfo{payer: payer})

	resp, err := u.transport.RoundTrip(out)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, u.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("upstream: reading the response: %w", err)
	}
	if int64(len(body)) > u.maxBytes {
		return nil, errTooLarge
	}
	removeHopHeaders(resp.Header)
	// HEAD, 204 and 304 answers carry no body but may carry the representation's length.
	if len(body) > 0 || resp.Header.Get("Content-Length") == "" {
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	return &buffered{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// joinPath joins the upstream base path and the request path as httputil.ReverseProxy does.
func joinPath(base, req *url.URL) (path, rawPath string) {
	if base.Path == "" || base.Path == "/" {
		return req.Path, req.RawPath
	}
	bp, rp := base.EscapedPath(), req.EscapedPath()
	joined := strings.TrimSuffix(bp, "/") + "/" + strings.TrimPrefix(rp, "/")
	p, err := url.PathUnescape(joined)
	if err != nil {
		return strings.TrimSuffix(base.Path, "/") + "/" + strings.TrimPrefix(req.Path, "/"), ""
	}
	if p == joined {
		return p, ""
	}
	return p, joined
}

// write sends a buffered response with extra headers.
func (b *buffered) write(w http.ResponseWriter, extra http.Header) {
	h := w.Header()
	for k, v := range b.header {
		h[k] = v
	}
	for k, v := range extra {
		h[k] = v
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body)
}
