// Package metricnames lists the metrics the gateway, the manager and the token exchange
// register, read from the registries their own code fills, so that documentation, alerts and dashboards can be checked
// against the metrics that exist rather than a list kept by hand.
package metricnames

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/insforge/integrations-operator/internal/controller/authintegration"
	"github.com/insforge/integrations-operator/internal/controller/paymentroute"
	"github.com/insforge/integrations-operator/internal/gateway"
	"github.com/insforge/integrations-operator/internal/tokenexchange"
)

// Prefixes are the name prefixes of this project's own metrics: the gateway's and the manager's.
// Every other metric the binaries register comes from a library (Go runtime, process,
// controller-runtime).
var Prefixes = []string{"x402_gateway_", "insforge_"}

// Metric is a registered metric family.
type Metric struct {
	Name string
	// Labels are its variable label names, sorted.
	Labels []string
	Help   string
}

// Gateway returns the metrics gateway.NewMetrics registers (its own and the Go and process
// collectors), by name.
func Gateway() (map[string]Metric, error) {
	rec := newRecorder()
	gateway.NewMetrics(rec)
	return rec.metrics()
}

// Exchange returns the metrics tokenexchange.NewMetrics registers (its own and the Go and
// process collectors), by name.
func Exchange() (map[string]Metric, error) {
	rec := newRecorder()
	tokenexchange.NewMetrics(rec)
	return rec.metrics()
}

// Manager returns the metrics the manager's reconcilers register beside controller-runtime's
// own, by name: what authintegration.New and paymentroute.New register on the registry they get
// (controller-runtime's metrics.Registry in the manager).
func Manager() (map[string]Metric, error) {
	rec := newRecorder()
	if _, err := authintegration.New(nil, nil, nil, nil, rec); err != nil {
		return nil, err
	}
	if _, err := paymentroute.New(nil, nil, paymentroute.Options{}, nil, rec); err != nil {
		return nil, err
	}
	return rec.metrics()
}

// recorder is a registry that remembers the collectors registered on it.
type recorder struct {
	*prometheus.Registry
	mu         sync.Mutex
	collectors []prometheus.Collector
}

func newRecorder() *recorder { return &recorder{Registry: prometheus.NewPedanticRegistry()} }

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.collectors = append(r.collectors, c)
	r.mu.Unlock()
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// metrics reads every registered family. A vector with no child yet gathers as nothing, so
// each descriptor is gathered through a stand-in collector that emits one sample for it.
func (r *recorder) metrics() (map[string]Metric, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var descs []*prometheus.Desc
	for _, c := range r.collectors {
		ch := make(chan *prometheus.Desc)
		go func() {
			c.Describe(ch)
			close(ch)
		}()
		for d := range ch {
			descs = append(descs, d)
		}
	}
	shadow := prometheus.NewPedanticRegistry()
	if err := shadow.Register(standIn(descs)); err != nil {
		return nil, fmt.Errorf("registering the stand-in collector: %w", err)
	}
	families, err := shadow.Gather()
	if err != nil {
		return nil, fmt.Errorf("gathering the stand-in samples: %w", err)
	}
	out := map[string]Metric{}
	for _, f := range families {
		m := Metric{Name: f.GetName(), Help: f.GetHelp()}
		for _, l := range f.GetMetric()[0].GetLabel() {
			m.Labels = append(m.Labels, l.GetName())
		}
		out[m.Name] = m
	}
	if len(out) != len(descs) {
		return nil, fmt.Errorf("%d descriptors gathered as %d families", len(descs), len(out))
	}
	return out, nil
}

// standIn emits, for each descriptor, one untyped sample with as many label values as the
// descriptor has variable labels (found by trying counts: NewConstMetric refuses any other).
type standIn []*prometheus.Desc

// maxLabels bounds the label count tried for a descriptor.
const maxLabels = 16

func (s standIn) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s {
		ch <- d
	}
}

func (s standIn) Collect(ch chan<- prometheus.Metric) {
	for _, d := range s {
		values := []string{}
		for len(values) <= maxLabels {
			if m, err := prometheus.NewConstMetric(d, prometheus.UntypedValue, 0, values...); err == nil {
				ch <- m
				break
			}
			values = append(values, "x")
		}
		if len(values) > maxLabels {
			ch <- prometheus.NewInvalidMetric(d, fmt.Errorf("no label count up to %d fits %s", maxLabels, d))
		}
	}
}

// Ours returns the names in ms that carry one of Prefixes, sorted.
func Ours(ms map[string]Metric) []string {
	var out []string
	for _, n := range slices.Sorted(maps.Keys(ms)) {
		if HasOurPrefix(n) {
			out = append(out, n)
		}
	}
	return out
}

// HasOurPrefix reports whether name carries one of Prefixes.
func HasOurPrefix(name string) bool {
	return slices.ContainsFunc(Prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

// All returns the gateway's, the manager's and the token exchange's metrics together.
func All() (map[string]Metric, error) {
	ms, err := Both()
	if err != nil {
		return nil, err
	}
	ex, err := Exchange()
	if err != nil {
		return nil, err
	}
	maps.Copy(ms, ex)
	return ms, nil
}

// Both returns the gateway's and the manager's metrics together.
func Both() (map[string]Metric, error) {
	gw, err := Gateway()
	if err != nil {
		return nil, err
	}
	mgr, err := Manager()
	if err != nil {
		return nil, err
	}
	maps.Copy(gw, mgr)
	return gw, nil
}

// refPattern finds a metric name of ours and the braces right after it: label names
// ({route,outcome}) or matchers ({outcome="settle_failed"}).
var refPattern = regexp.MustCompile(`\b((?:` + strings.Join(Prefixes, "|") + `)[a-zA-Z0-9_]*)(\{[^}]*\})?`)

// Ref is a mention of one of our metrics in a text (documentation, PromQL).
type Ref struct {
	Name string
	// Line is the 1-based line of the mention.
	Line int
	// Labels are the label names in the braces after the name, as written; nil without braces.
	Labels []string
	// Matchers tells that the braces hold matchers (a="b"), not a list of label names.
	Matchers bool
}

// Refs finds every mention of a name with one of Prefixes in text.
func Refs(text string) []Ref {
	var out []Ref
	for i, line := range strings.Split(text, "\n") {
		for _, m := range refPattern.FindAllStringSubmatch(line, -1) {
			r := Ref{Name: m[1], Line: i + 1}
			if m[2] != "" {
				r.Matchers = strings.ContainsAny(m[2], `="~`)
				for _, part := range strings.Split(strings.Trim(m[2], "{}"), ",") {
					name, _, _ := strings.Cut(part, "=")
					if name = strings.TrimRight(strings.TrimSpace(name), "!~"); name != "" {
						r.Labels = append(r.Labels, name)
					}
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// Lookup finds name among ms; a histogram's series (_bucket, _sum, _count) count as the
// histogram.
func Lookup(ms map[string]Metric, name string) (Metric, bool) {
	if m, ok := ms[name]; ok {
		return m, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if m, ok := ms[base]; ok {
				return m, true
			}
		}
	}
	return Metric{}, false
}
