// Package docs checks the documentation against the code.
package docs

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/metricnames"
)

func read(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// registered returns the metrics of the gateway, the manager and the token exchange, as their
// code registers them.
func registered(t *testing.T) map[string]metricnames.Metric {
	t.Helper()
	ms, err := metricnames.All()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestDocumentedMetricsExist: every metric name of ours in the docs is registered by the
// gateway, the manager or the token exchange, with the label names the docs give it.
func TestDocumentedMetricsExist(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	reg := registered(t)
	seen := 0
	for _, f := range files {
		for _, ref := range metricnames.Refs(read(t, f)) {
			seen++
			at := filepath.Base(f) + ":" + strconv.Itoa(ref.Line)
			m, ok := metricnames.Lookup(reg, ref.Name)
			if !ok {
				t.Errorf("%s: %s is not a metric the gateway, the manager or the exchange registers", at, ref.Name)
				continue
			}
			labels := slices.Sorted(slices.Values(ref.Labels))
			switch {
			case ref.Labels != nil && !ref.Matchers && !slices.Equal(labels, m.Labels):
				t.Errorf("%s: %s{%s}: its labels are {%s}", at, ref.Name, strings.Join(ref.Labels, ","), strings.Join(m.Labels, ","))
			case ref.Matchers:
				for _, l := range labels {
					if !slices.Contains(m.Labels, l) && l != "le" {
						t.Errorf("%s: %s has no label %q (its labels are {%s})", at, ref.Name, l, strings.Join(m.Labels, ","))
					}
				}
			}
		}
	}
	if seen < 20 {
		t.Fatalf("only %d metric names found in the docs: do the prefixes %q still hold?", seen, metricnames.Prefixes)
	}
}

// TestOperationsDocumentsEveryMetric: docs/operations.md names every metric of ours the gateway,
// the manager and the token exchange register, and every metric they register (but the Go and process collectors)
// is ours by its prefix.
func TestOperationsDocumentsEveryMetric(t *testing.T) {
	documented := map[string]bool{}
	for _, ref := range metricnames.Refs(read(t, filepath.Join(repoRoot(t), "docs", "operations.md"))) {
		documented[ref.Name] = true
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
