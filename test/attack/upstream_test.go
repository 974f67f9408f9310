package attack

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// streamPrefix names the resources the upstream answers with a slow stream.
const streamPrefix = "/slowstream"

// hit is one request the upstream received.
type hit struct {
	Method   string
	Target   string // the request-target as received (path and query, escaped)
	Resource string // what a normalising server would serve for it
	Header   http.Header
	At       time.Time
	BodyLen  int
	BodyErr  error
	Probe    string // what upstream.probe returned when the call arrived
}

// upstream is the service behind the gateway. It serves every path, maps each request to the
// resource a normalising server would serve (resourceOf), counts calls per resource and records
// what it received. Its body names the resource and the call number, so a stored response can
// be told from a fresh one.
type upstream struct {
	*httptest.Server
	mu    sync.Mutex
	calls map[string]int
	hits  []hit
	// probe, if set, runs as each call arrives; its result is recorded with the call.
	probe func(resource string) string
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{calls: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	res := resourceOf(r.RequestURI)
	u.mu.Lock()
	probe := u.probe
	u.mu.Unlock()
	var probed string
	if probe != nil {
		probed = probe(res)
	}
	body, err := io.ReadAll(r.Body)
	u.mu.Lock()
	u.calls[res]++
	n := u.calls[res]
	u.hits = append(u.hits, hit{Method: r.Method, Target: r.RequestURI, Resource: res, Header: r.Header.Clone(), At: at,
		BodyLen: len(body), BodyErr: err, Probe: probed})
	u.mu.Unlock()
	if err != nil {
		return
	}
	if strings.HasPrefix(res, streamPrefix) {
		u.stream(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	raw, _ := json.Marshal(map[string]any{"resource": res, "target": r.RequestURI, "call": n, "content": "paid content of " + res})
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	_, _ = w.Write(raw)
}

// stream writes 25 chunks 200 ms apart: a slow answer that keeps moving.
func (u *upstream) stream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain")
	fl, _ := w.(http.Flusher)
	for i := range 25 {
		if _, err := io.WriteString(w, "chunk "+strconv.Itoa(i)+"\n"); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// setProbe sets the function run as each call arrives.
func (u *upstream) setProbe(f func(resource string) string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.probe = f
}

// count is the number of calls that reached resource.
func (u *upstream) count(resource string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[resource]
}

// hitsOf returns the requests that reached resource.
func (u *upstream) hitsOf(resource string) []hit {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []hit
	for _, h := range u.hits {
		if h.Resource == resource {
			out = append(out, h)
		}
	}
	return out
}

// resourceOf maps a request-target to the resource a normalising server serves for it: Tomcat
// and Spring drop ";params" from each segment; nginx and Express percent-decode, nginx merges
// repeated slashes and resolves "." and ".." after decoding; Express routes case-insensitively
// and ignores a trailing slash. An encoded "/" or "\" stays data, as Tomcat (which refuses it)
// and Express's router treat it; see the threat model for servers that decode it.
func resourceOf(target string) string {
	path, _, _ := strings.Cut(target, "?")
	var out []string
	for seg := range strings.SplitSeq(path, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		seg = decodeKeepingSeparators(seg)
		switch seg {
		case "", ".":
			continue
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			continue
		}
		out = append(out, strings.ToLower(seg))
	}
	return "/" + strings.Join(out, "/")
}

// decodeKeepingSeparators percent-decodes s except %2F and %5C (kept, lower-cased) and
// malformed escapes (kept as they are).
func decodeKeepingSeparators(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+2 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			b.WriteByte(s[i])
			continue
		}
		if v == '/' || v == '\\' {
			b.WriteString(strings.ToLower(s[i : i+3]))
		} else {
			b.WriteByte(byte(v))
		}
		i += 2
	}
	return b.String()
}

func TestResourceOfModelsNormalisingServers(t *testing.T) {
	for target, want := range map[string]string{
		"/reports/weekly":          "/reports/weekly",
		"//reports/weekly":         "/reports/weekly",
		"/./reports/weekly":        "/reports/weekly",
		"/x/../reports/weekly":     "/reports/weekly",
		"/x/%2e%2E/reports/weekly": "/reports/weekly",
		"/reports//weekly;x=1":     "/reports/weekly",
		"/reports;v=1/weekly/":     "/reports/weekly",
		"/REPORTS/%57eekly?a=b":    "/reports/weekly",
		"/../reports/weekly":       "/reports/weekly",
		"/reports%2Fweekly":        "/reports%2fweekly",
		"/docs/a%20b":              "/docs/a b",
		"/bad/%zz":                 "/bad/%zz",
		"/bad/%4":                  "/bad/%4",
		"/":                        "/",
	} {
		if got := resourceOf(target); got != want {
			t.Errorf("resourceOf(%q) = %q, want %q", target, got, want)
		}
	}
}
