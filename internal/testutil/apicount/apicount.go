// Package apicount counts the Kubernetes API requests a client sends, by verb and resource, so
// that benchmarks can say where a manager's requests go and tests can assert that a steady state
// writes nothing. It wraps a rest.Config's transport; everything built from the config (the
// manager's client, its informers, its event recorder) is counted.
package apicount

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// Key is one kind of request: a verb (get, list, watch, create, update, patch, apply, delete)
// and a resource, with its subresource after a slash (authintegrations/status).
type Key struct{ Verb, Resource string }

func (k Key) String() string { return k.Verb + " " + k.Resource }

// IsWrite reports whether the request changes something on the server.
func (k Key) IsWrite() bool {
	switch k.Verb {
	case "create", "update", "patch", "apply", "delete":
		return true
	}
	return false
}

// Counts are requests by kind.
type Counts map[Key]int

// Sub returns c minus before, dropping kinds that did not change.
func (c Counts) Sub(before Counts) Counts {
	out := Counts{}
	for k, n := range c {
		if d := n - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Total is the number of requests.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Writes are the requests that change something; Writes().Total() is their number.
func (c Counts) Writes() Counts {
	out := Counts{}
	for k, n := range c {
		if k.IsWrite() {
			out[k] = n
		}
	}
	return out
}

// String lists the counts, largest first.
func (c Counts) String() string {
	keys := slices.Collect(maps.Keys(c))
	slices.SortFunc(keys, func(a, b Key) int {
		if c[a] != c[b] {
			return c[b] - c[a]
		}
		return strings.Compare(a.String(), b.String())
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, c[k])
	}
	return strings.Join(parts, ", ")
}

// Counter counts requests. The zero value is ready to use and safe for concurrent use.
type Counter struct {
	mu     sync.Mutex
	counts Counts
}

// Config returns a copy of cfg whose requests c counts.
func (c *Counter) Config(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			c.add(Classify(req))
			return rt.RoundTrip(req)
		})
	})
	return out
}

// Snapshot returns the counts so far.
func (c *Counter) Snapshot() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

func (c *Counter) add(k Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = Counts{}
	}
	c.counts[k]++
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// Classify names a request as the API server's audit log would: verb and resource.
func Classify(req *http.Request) Key {
	resource, named := resourceOf(req.URL.Path)
	verb := ""
	switch req.Method {
	case http.MethodGet:
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
		if strings.HasPrefix(req.Header.Get("Content-Type"), "application/apply-patch") {
			verb = "apply"
		}
	case http.MethodDelete:
		verb = "delete"
	default:
		verb = strings.ToLower(req.Method)
	}
	return Key{Verb: verb, Resource: resource}
}

// resourceOf parses /api/v1/[namespaces/NS/]RESOURCE[/NAME[/SUB]] and the /apis/GROUP/VERSION
// equivalent; named says whether the path names one object.
func resourceOf(path string) (resource string, named bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return path, false
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	switch len(parts) {
	case 0:
		return "namespaces", false
	case 1:
		return parts[0], false
	case 2:
		return parts[0], true
	default:
		return parts[0] + "/" + parts[2], true
	}
}
