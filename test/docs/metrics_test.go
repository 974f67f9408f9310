// Package docs checks the documentation against the code.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/metricnames"
)

// metricRef finds a metric name of ours and what follows it in braces: label names
// ({route,outcome}) or matchers ({outcome="settle_failed"}).
var metricRef = regexp.MustCompile(`\b((?:` + strings.Join(metricnames.Prefixes, "|") + `)[a-zA-Z0-9_]*)(\{[^}]*\})?`)

// mention is one metric name in a document, with the label names given beside it.
type mention struct {
	file, name string
	line       int
	labels     []string // as written in braces; nil when none
	exact      bool     // the braces list the label names ({a,b}), not matchers
}

func mentions(t *testing.T, path string) []mention {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []mention
	for i, line := range strings.Split(string(raw), "\n") {
		for _, m := range metricRef.FindAllStringSubmatch(line, -1) {
			mn := mention{file: filepath.Base(path), name: m[1], line: i + 1}
			if m[2] != "" {
				mn.exact = !strings.ContainsAny(m[2], `="~`)
				for _, part := range strings.Split(strings.Trim(m[2], "{}"), ",") {
					name, _, _ := strings.Cut(part, "=")
					name = strings.TrimRight(strings.TrimSpace(name), "!~")
					if name != "" {
						mn.labels = append(mn.labels, name)
					}
				}
			}
			out = append(out, mn)
		}
	}
	return out
}

// registered returns the metrics of the gateway and the manager, as their code registers them.
func registered(t *testing.T) map[string]metricnames.Metric {
	t.Helper()
	gw, err := metricnames.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := metricnames.Manager()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]metricnames.Metric{}
	for _, ms := range []map[string]metricnames.Metric{gw, mgr} {
		for n, m := range ms {
			all[n] = m
		}
	}
	return all
}

// lookup finds a documented name among the registered ones; a histogram's series (_bucket,
// _sum, _count) count as the histogram.
func lookup(reg map[string]metricnames.Metric, name string) (metricnames.Metric, bool) {
	if m, ok := reg[name]; ok {
		return m, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if m, ok := reg[base]; ok {
				return m, true
			}
		}
	}
	return metricnames.Metric{}, false
}

// TestDocumentedMetricsExist: every metric name of ours in the docs is registered by the
// gateway or the manager, with the label names the docs give it.
func TestDocumentedMetricsExist(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	reg := registered(t)
	seen := 0
	for _, f := range files {
		for _, mn := range mentions(t, f) {
			seen++
			m, ok := lookup(reg, mn.name)
			if !ok {
				t.Errorf("%s:%d: %s is not a metric the gateway or the manager registers", mn.file, mn.line, mn.name)
				continue
			}
			labels := slices.Sorted(slices.Values(mn.labels))
			switch {
			case mn.exact && !slices.Equal(labels, m.Labels):
				t.Errorf("%s:%d: %s{%s}: its labels are {%s}", mn.file, mn.line, mn.name, strings.Join(mn.labels, ","), strings.Join(m.Labels, ","))
			case !mn.exact:
				for _, l := range labels {
					if !slices.Contains(m.Labels, l) && l != "le" {
						t.Errorf("%s:%d: %s has no label %q (its labels are {%s})", mn.file, mn.line, mn.name, l, strings.Join(m.Labels, ","))
					}
				}
			}
		}
	}
	if seen < 20 {
		t.Fatalf("only %d metric names found in the docs: is the pattern %s still right?", seen, metricRef)
	}
}

// TestOperationsDocumentsEveryMetric: docs/operations.md names every metric of ours the gateway
// and the manager register, and every metric they register (but the Go, process and
// controller-runtime ones) is ours by its prefix.
func TestOperationsDocumentsEveryMetric(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, mn := range mentions(t, filepath.Join(root, "docs", "operations.md")) {
		documented[mn.name] = true
	}
	reg := registered(t)
	for _, name := range metricnames.Ours(reg) {
		if !documented[name] {
			t.Errorf("%s is registered but docs/operations.md does not name it", name)
		}
	}
	for name := range reg {
		if !metricnames.HasOurPrefix(name) && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("%s carries none of the prefixes %q", name, metricnames.Prefixes)
		}
	}
}
