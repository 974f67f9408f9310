package install

import (
	"path/filepath"
	"reflect"
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

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

func podDisruptionBudgets(t *testing.T, objs []*unstructured.Unstructured) []policyv1.PodDisruptionBudget {
	t.Helper()
	var out []policyv1.PodDisruptionBudget
	for _, o := range objs {
		if o.GetKind() == "PodDisruptionBudget" {
			var pdb policyv1.PodDisruptionBudget
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &pdb); err != nil {
				t.Fatal(err)
			}
			out = append(out, pdb)
		}
	}
	return out
}

// TestHelmChartPodDisruptionBudget: the manager's budget selects its pods and lets a drain evict
// one of them at a time, even the only one, and a crash-looping one.
func TestHelmChartPodDisruptionBudget(t *testing.T) {
	objs := renderChart(t)
	pdbs := podDisruptionBudgets(t, objs)
	if len(pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets by default, want 1", len(pdbs))
	}
	pdb := pdbs[0]
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.String() != "1" || pdb.Spec.MinAvailable != nil {
		t.Errorf("maxUnavailable %v minAvailable %v, want maxUnavailable 1 only (minAvailable 1 would block drains of a single replica)",
			pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
	}
	if pdb.Spec.UnhealthyPodEvictionPolicy == nil || *pdb.Spec.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow {
		t.Errorf("unhealthyPodEvictionPolicy %v, want AlwaysAllow", pdb.Spec.UnhealthyPodEvictionPolicy)
	}
	dep := deployment(t, objs)
	if pdb.Spec.Selector == nil || !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget selects %v, the manager's pods are %v", pdb.Spec.Selector, dep.Spec.Selector.MatchLabels)
	}
	if pdb.Namespace != "ops" {
		t.Errorf("PodDisruptionBudget in %q", pdb.Namespace)
	}

	pdbs = podDisruptionBudgets(t, renderChart(t, "replicaCount=3", "podDisruptionBudget.maxUnavailable=50%"))
	if len(pdbs) != 1 || pdbs[0].Spec.MaxUnavailable.String() != "50%" {
		t.Errorf("maxUnavailable=50%%: %v", pdbs)
	}
	if pdbs := podDisruptionBudgets(t, renderChart(t, "podDisruptionBudget.enabled=false")); len(pdbs) != 0 {
		t.Errorf("podDisruptionBudget.enabled=false renders %d", len(pdbs))
	}
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
