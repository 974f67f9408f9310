package install

import (
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

// chartPath returns the repository root, helm and the chart's directory.
func chartPath(t *testing.T) (root, helm, chart string) {
	t.Helper()
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root, tool(t, root, "bin/helm", "make helm"), filepath.Join(root, "charts", "integrations-operator")
}

// TestHelmChartInstallsCRDsAsTemplates: the CRDs are templates (so helm upgrade upgrades them)
// equal to config/crd/bases, kept on uninstall; crds.install=false leaves them out.
func TestHelmChartInstallsCRDsAsTemplates(t *testing.T) {
	root, _, _ := chartPath(t)
	bases, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	want := map[string]*unstructured.Unstructured{}
	for _, b := range bases {
		for _, o := range decode(t, read(t, b)) {
			want[o.GetName()] = o
		}
	}
	if len(want) != 2 {
		t.Fatalf("want 2 CRDs in config/crd/bases, found %d", len(want))
	}

	got := map[string]*unstructured.Unstructured{}
	for _, o := range renderChart(t) {
		if o.GetKind() == "CustomResourceDefinition" {
			got[o.GetName()] = o
		}
	}
	if len(got) != len(want) {
		t.Errorf("the chart renders CRDs %v, want those of config/crd/bases", got)
	}
	for name, crd := range got {
		if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("%s lacks helm.sh/resource-policy: keep (helm uninstall would delete every custom resource)", name)
		}
		if crd.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
			t.Errorf("%s labels %v", name, crd.GetLabels())
		}
		// Equal to the generated CRD but for the chart's labels and the keep annotation.
		if want[name] == nil {
			t.Errorf("the chart renders %s, which config/crd/bases does not have", name)
			continue
		}
		crd = crd.DeepCopy()
		ann := crd.GetAnnotations()
		delete(ann, "helm.sh/resource-policy")
		crd.SetAnnotations(ann)
		crd.SetLabels(want[name].GetLabels())
		if !reflect.DeepEqual(crd.Object, want[name].Object) {
			t.Errorf("the chart's %s differs from config/crd/bases: run make manifests", name)
		}
	}

	for _, o := range renderChart(t, "crds.install=false") {
		if o.GetKind() == "CustomResourceDefinition" {
			t.Errorf("crds.install=false renders %s", o.GetName())
		}
	}
}
