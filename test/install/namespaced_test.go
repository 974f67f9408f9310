package install

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

// namespacedInstall checks a kustomize build of config/namespaced: the manager gets its rules in
// a Role per watched namespace, bound to its ServiceAccount, WATCH_NAMESPACES names exactly those
// namespaces, and nothing cluster-wide grants Secrets or the manager's rules. It returns the
// watched namespaces.
func namespacedInstall(t *testing.T, root string, objs []*unstructured.Unstructured) []string {
	t.Helper()
	dep := deployment(t, objs)
	watched := strings.Split(envValue(dep.Spec.Template.Spec.Containers[0], "WATCH_NAMESPACES"), ",")
	slices.Sort(watched)

	var managerRules []rbacv1.PolicyRule
	for _, o := range decode(t, read(t, filepath.Join(root, "config", "rbac", "role.yaml"))) {
		var cr rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &cr); err != nil {
			t.Fatal(err)
		}
		managerRules = cr.Rules
	}

	var roleNamespaces, bindingNamespaces []string
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(b.RoleRef.Name, "manager-role") {
				t.Errorf("ClusterRoleBinding %s binds the manager's role cluster-wide", b.Name)
			}
		case "ClusterRole":
			if strings.HasSuffix(o.GetName(), "manager-role") {
				t.Errorf("the manager's ClusterRole %s is still there", o.GetName())
			}
		case "Role":
			if o.GetName() != "integrations-operator-manager-role" {
				continue
			}
			var r rbacv1.Role
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Rules, managerRules) {
				t.Errorf("Role %s/%s has rules %v, want config/rbac/role.yaml's", r.Namespace, r.Name, r.Rules)
			}
			roleNamespaces = append(roleNamespaces, r.Namespace)
		case "RoleBinding":
			var b rbacv1.RoleBinding
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b); err != nil {
				t.Fatal(err)
			}
			if b.RoleRef.Kind != "Role" || b.RoleRef.Name != "integrations-operator-manager-role" {
				continue
			}
			want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: dep.Spec.Template.Spec.ServiceAccountName, Namespace: dep.Namespace}}
			if !reflect.DeepEqual(b.Subjects, want) {
				t.Errorf("RoleBinding %s/%s binds %v, want the manager's ServiceAccount %v", b.Namespace, b.Name, b.Subjects, want)
			}
			bindingNamespaces = append(bindingNamespaces, b.Namespace)
		}
	}
	slices.Sort(roleNamespaces)
	slices.Sort(bindingNamespaces)
	if !slices.Equal(roleNamespaces, watched) || !slices.Equal(bindingNamespaces, watched) {
		t.Errorf("manager Roles in %v, RoleBindings in %v, WATCH_NAMESPACES %v: want the same namespaces",
			roleNamespaces, bindingNamespaces, watched)
	}
	for _, name := range clusterRolesGranting(t, objs, "", "secrets") {
		t.Errorf("ClusterRole %s grants Secrets", name)
	}
	return watched
}

// TestNamespacedKustomizeInstall builds config/namespaced (the kustomize twin of the chart's
// watchNamespaces) and applies it to the API server.
func TestNamespacedKustomizeInstall(t *testing.T) {
	env := kubetest.Shared(t)
	kustomize := tool(t, env.Root, "bin/kustomize-v5.8.2", "make kustomize")
	rendered := run(t, env.Root, kustomize, "build", "config/namespaced")
	objs := decode(t, rendered)
	watched := namespacedInstall(t, env.Root, objs)
	if !slices.Equal(watched, []string{"insforge"}) {
		t.Errorf("config/namespaced watches %v, want insforge (its documented default)", watched)
	}
	// Still the whole install: CRDs, the manager, its leader election and metrics.
	kinds := countKinds(objs)
	for _, k := range []string{"CustomResourceDefinition", "Deployment", "ServiceAccount", "Service", "Namespace", "NetworkPolicy"} {
		if kinds[k] == 0 {
			t.Errorf("config/namespaced has no %s", k)
		}
	}
	assertHardened(t, deployment(t, objs))

	createNamespace(t, env, "integrations-operator-system")
	for _, ns := range watched {
		createNamespace(t, env, ns)
	}
	kubectlDryRun(t, env, rendered)

	// The recipe of config/namespaced/watch/kustomization.yaml for a second namespace.
	t.Run("second namespace", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.CopyFS(filepath.Join(dir, "config"), os.DirFS(filepath.Join(env.Root, "config"))); err != nil {
			t.Fatal(err)
		}
		overlay := filepath.Join(dir, "config", "namespaced")
		write := func(rel, content string) {
			t.Helper()
			path := filepath.Join(overlay, rel)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		edit := func(rel, old, replacement string) {
			t.Helper()
			b := string(read(t, filepath.Join(overlay, rel)))
			if !strings.Contains(b, old) {
				t.Fatalf("%s has no %q: the recipe in config/namespaced/watch/kustomization.yaml is out of date", rel, old)
			}
			write(rel, strings.Replace(b, old, replacement, 1))
		}
		teamB := env.Namespace(t)
		write("watch-team-b/kustomization.yaml", "namespace: "+teamB+"\nresources:\n- ../watch\n")
		edit("kustomization.yaml", "- watch\n", "- watch\n- watch-team-b\n")
		edit("manager_watch_namespaces_patch.yaml", "value: insforge\n", "value: insforge,"+teamB+"\n")

		rendered := run(t, overlay, kustomize, "build", ".")
		watched := namespacedInstall(t, env.Root, decode(t, rendered))
		want := []string{"insforge", teamB}
		slices.Sort(want)
		if !slices.Equal(watched, want) {
			t.Errorf("watches %v, want %v", watched, want)
		}
		kubectlDryRun(t, env, rendered)
	})
}
