// Package fleetbench measures a manager that reconciles a fleet of resources: the Kubernetes API
// requests it sends (by verb and resource), the time its requests waited in client-go's
// client-side rate limiter, the CPU time of the test process (the manager) and of its servers
// (kube-apiserver, etcd, postgres), its heap, and the controller-runtime metrics that say
// whether a controller is idle. The fleet benchmarks of both kinds report through it.
package fleetbench

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/rest"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/testutil/apicount"
	"github.com/insforge/integrations-operator/internal/testutil/cpustat"
)

// Limits are a manager's client-side API limits and its workers per controller.
type Limits struct {
	QPS         float32
	Burst       int
	Concurrency int
}

// LimitsFromEnv returns the shipped defaults (the manager's flag defaults; concurrency as given),
// overridden by FLEET_QPS, FLEET_BURST and FLEET_CONCURRENCY, so that other settings can be
// measured with the same benchmark.
func LimitsFromEnv(tb testing.TB, concurrency int) Limits {
	tb.Helper()
	l := Limits{QPS: kit.DefaultKubeAPIQPS, Burst: kit.DefaultKubeAPIBurst, Concurrency: concurrency}
	if v := os.Getenv("FLEET_QPS"); v != "" {
		f, err := strconv.ParseFloat(v, 32)
		if err != nil {
			tb.Fatalf("FLEET_QPS: %v", err)
		}
		l.QPS = float32(f)
	}
	for name, dst := range map[string]*int{"FLEET_BURST": &l.Burst, "FLEET_CONCURRENCY": &l.Concurrency} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
			*dst = n
		}
	}
	return l
}

// Sizes returns the fleet sizes to run: FLEET_N (comma-separated) or def.
func Sizes(tb testing.TB, def ...int) []int {
	tb.Helper()
	v := os.Getenv("FLEET_N")
	if v == "" {
		return def
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			tb.Fatalf("FLEET_N=%q: want sizes like 100,1000", v)
		}
		out = append(out, n)
	}
	return out
}

// Probe counts a manager's requests; its Config is what the manager must be built from.
type Probe struct {
	counter apicount.Counter
	limits  Limits
}

// NewProbe returns a probe for a manager with these limits. It enables client-go's rate limiter
// latency metric in controller-runtime's registry.
func NewProbe(l Limits) *Probe {
	crmetrics.RegisterRESTClientMetrics(crmetrics.MetricRateLimiterLatency)
	return &Probe{limits: l}
}

// Config returns a copy of base with the probe's limits whose requests are counted.
func (p *Probe) Config(base *rest.Config) *rest.Config {
	cfg := p.counter.Config(base)
	cfg.QPS, cfg.Burst = p.limits.QPS, p.limits.Burst
	return cfg
}

// WaitQuiet waits until the manager has sent no request for quiet: the events it records are
// sent in the background, and a backlog of them must not be counted in the next phase.
func (p *Probe) WaitQuiet(tb testing.TB, quiet time.Duration) {
	tb.Helper()
	last, since := p.counter.Snapshot().Total(), time.Now()
	deadline := time.Now().Add(30 * time.Minute)
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			tb.Fatalf("the manager kept sending requests for 30 minutes")
		}
		time.Sleep(100 * time.Millisecond)
		if n := p.counter.Snapshot().Total(); n != last {
			last, since = n, time.Now()
		}
	}
}

// Sample is the probe's readings at one moment.
type Sample struct {
	At       time.Time
	Requests apicount.Counts
	// Throttled is the time requests waited in client-side rate limiters, summed over requests.
	Throttled time.Duration
	// CPU is the CPU time of the test process ("manager") and of each child ("kube-apiserver",
	// "etcd", "postgres").
	CPU map[string]time.Duration
}

// Sample reads the probe now.
func (p *Probe) Sample(tb testing.TB) Sample {
	tb.Helper()
	s := Sample{At: time.Now(), Requests: p.counter.Snapshot(), CPU: map[string]time.Duration{}}
	s.Throttled = time.Duration(MetricSum(tb, "rest_client_rate_limiter_duration_seconds", nil) * float64(time.Second))
	self, err := cpustat.Process()
	if err != nil {
		tb.Fatal(err)
	}
	s.CPU["manager"] = self
	children, err := cpustat.Children()
	if err != nil {
		tb.Fatal(err)
	}
	for name, d := range children {
		s.CPU[name] += d
	}
	return s
}

// Phase is what happened between two samples.
type Phase struct {
	Wall      time.Duration
	Requests  apicount.Counts
	Throttled time.Duration
	CPU       map[string]time.Duration
}

// Since returns the phase from before to s.
func (s Sample) Since(before Sample) Phase {
	ph := Phase{Wall: s.At.Sub(before.At), Requests: s.Requests.Sub(before.Requests), Throttled: s.Throttled - before.Throttled,
		CPU: map[string]time.Duration{}}
	for name, d := range s.CPU {
		if d -= before.CPU[name]; d > 0 {
			ph.CPU[name] = d
		}
	}
	return ph
}

// Report adds the phase's figures to b as name-prefixed metrics, per resource where n > 0, and
// logs the request breakdown.
func (ph Phase) Report(b *testing.B, name string, n int) {
	b.Helper()
	b.ReportMetric(ph.Wall.Seconds(), "s-"+name)
	b.ReportMetric(float64(ph.Requests.Total())/float64(n), "reqs/obj-"+name)
	b.ReportMetric(float64(ph.Requests.Writes().Total())/float64(n), "writes/obj-"+name)
	b.ReportMetric(ph.Throttled.Seconds(), "s-throttled-"+name)
	b.Logf("%s (N=%d): %.1f s wall, %d requests (%d writes), %.1f s waiting in client-side rate limiters; CPU %s; requests: %s",
		name, n, ph.Wall.Seconds(), ph.Requests.Total(), ph.Requests.Writes().Total(), ph.Throttled.Seconds(), ph.cpuString(), ph.Requests)
}

func (ph Phase) cpuString() string {
	names := make([]string, 0, len(ph.CPU))
	for n := range ph.CPU {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.1f s", n, ph.CPU[n].Seconds())
	}
	return strings.Join(parts, ", ")
}

// HeapMiB is the live heap after two full collections.
func HeapMiB() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// MetricSum sums the series of a metric in controller-runtime's registry whose labels include
// labels: counter and gauge values, histogram sums.
func MetricSum(tb testing.TB, name string, labels map[string]string) float64 {
	tb.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !matches(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += m.Histogram.GetSampleSum()
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Reconciles is how many reconciles the controller has finished, whatever their result.
func Reconciles(tb testing.TB, controller string) float64 {
	tb.Helper()
	return MetricSum(tb, "controller_runtime_reconcile_total", map[string]string{"controller": controller})
}

// Idle reports whether the controller has nothing queued and no reconcile running.
func Idle(tb testing.TB, controller string) bool {
	tb.Helper()
	return MetricSum(tb, "workqueue_depth", map[string]string{"name": controller}) == 0 &&
		MetricSum(tb, "controller_runtime_active_workers", map[string]string{"controller": controller}) == 0
}
