// Package install checks the install paths against a real apiserver: dist/install.yaml (the
// kustomize build of config/default), its namespace-scoped variant config/namespaced, and the Helm
// chart in charts/integrations-operator.
package install

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.Shutdown()
	os.Exit(code)
}

func TestInstallYAMLAppliesToTheAPIServer(t *testing.T) {
	env := kubetest.Shared(t)
	kustomize := tool(t, env.Root, "bin/kustomize-v5.8.2", "make kustomize")
	rendered := run(t, env.Root, kustomize, "build", "config/default")

	objs := decode(t, rendered)
	kinds := countKinds(objs)
	for _, k := range []string{"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Deployment", "ServiceAccount", "Service", "Namespace", "NetworkPolicy"} {
		if kinds[k] == 0 {
			t.Errorf("install.yaml has no %s", k)
		}
	}
	dep := deployment(t, objs)
	c := dep.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--leader-elect") {
		t.Errorf("manager args %v lack --leader-elect", c.Args)
	}
	if env := envValue(c, "GATEWAY_IMAGE"); env != c.Image {
		t.Errorf("GATEWAY_IMAGE = %q, want the manager's image %q", env, c.Image)
	}
	assertHardened(t, dep)

	// The namespace must exist for a server-side dry run of what goes into it.
	createNamespace(t, env, "integrations-operator-system")
	kubectlDryRun(t, env, rendered)
}

func TestHelmChartRendersAndApplies(t *testing.T) {
	env := kubetest.Shared(t)
	helm := tool(t, env.Root, "bin/helm", "make helm")
	chart := filepath.Join(env.Root, "charts", "integrations-operator")
	ns := env.Namespace(t)

	t.Run("defaults", func(t *testing.T) {
		rendered := run(t, env.Root, helm, "template", "ops", chart, "--namespace", ns)
		objs := decode(t, rendered)
		dep := deployment(t, objs)
		c := dep.Spec.Template.Spec.Containers[0]
		if slices.Contains(c.Args, "--allow-mock-facilitator") {
			t.Error("the mock facilitator is allowed by default")
		}
		if got := envValue(c, "GATEWAY_IMAGE"); got != c.Image {
			t.Errorf("GATEWAY_IMAGE = %q, want the manager's image %q", got, c.Image)
		}
		if kinds := countKinds(objs); kinds["ClusterRole"] == 0 || kinds["Role"] != 1 || kinds["CustomResourceDefinition"] != 2 || kinds["PodDisruptionBudget"] != 1 {
			t.Errorf("default install wants the CRDs, a ClusterRole, only the leader-election Role and a PodDisruptionBudget, got %v", kinds)
		}
		assertHardened(t, dep)
		kubectlDryRun(t, env, rendered)
	})

	t.Run("namespaced, mock allowed, own gateway image", func(t *testing.T) {
		teamA, teamB := env.Namespace(t), env.Namespace(t)
		rendered := run(t, env.Root, helm, "template", "ops", chart, "--namespace", ns,
			"--set", "watchNamespaces={"+teamA+","+teamB+"}",
			"--set", "allowMockFacilitator=true",
			"--set", "gatewayImage=example.com/gateway:v1",
			"--set", "gatewayImageAllow={ghcr.io/acme/,example.com/gw}",
			"--set", "egressAllow={https://*.okx.com,http://geth.chains.svc:8545}",
			"--set", "imagePullSecrets[0].name=regcred", "--set", "imagePullSecrets[1].name=mirror",
			"--set", "kubeAPI.qps=80", "--set", "concurrency.paymentRoutes=16",
			"--set", "resources.limits.memory=1Gi")
		objs := decode(t, rendered)
		dep := deployment(t, objs)
		c := dep.Spec.Template.Spec.Containers[0]
		for _, arg := range []string{"--kube-api-qps=80", "--kube-api-burst=200", "--authintegration-concurrency=4", "--paymentroute-concurrency=16"} {
			if !slices.Contains(c.Args, arg) {
				t.Errorf("args %v lack %s", c.Args, arg)
			}
		}
		if !slices.Contains(c.Args, "--allow-mock-facilitator") {
			t.Errorf("args %v lack --allow-mock-facilitator", c.Args)
		}
		if got := envValue(c, "WATCH_NAMESPACES"); got != teamA+","+teamB {
			t.Errorf("WATCH_NAMESPACES = %q", got)
		}
		if got := envValue(c, "GATEWAY_IMAGE"); got != "example.com/gateway:v1" {
			t.Errorf("GATEWAY_IMAGE = %q", got)
		}
		if got := envValue(c, "GATEWAY_IMAGE_ALLOW"); got != "ghcr.io/acme/,example.com/gw" {
			t.Errorf("GATEWAY_IMAGE_ALLOW = %q", got)
		}
		if got := envValue(c, "EGRESS_ALLOW"); got != "https://*.okx.com,http://geth.chains.svc:8545" {
			t.Errorf("EGRESS_ALLOW = %q", got)
		}
		if got := envValue(c, "GATEWAY_IMAGE_PULL_SECRETS"); got != "regcred,mirror" {
			t.Errorf("GATEWAY_IMAGE_PULL_SECRETS = %q (the chart's pull Secrets are the gateways' default)", got)
		}
		if got := c.Resources.Limits.Memory().String(); got != "1Gi" {
			t.Errorf("memory limit = %s", got)
		}
		var roleNamespaces []string
		for _, o := range objs {
			if o.GetKind() == "ClusterRole" && strings.HasSuffix(o.GetName(), "-manager") {
				t.Errorf("namespaced install renders the cluster-wide manager role %s", o.GetName())
			}
			if o.GetKind() == "Role" && strings.HasSuffix(o.GetName(), "-manager") {
				roleNamespaces = append(roleNamespaces, o.GetNamespace())
			}
		}
		slices.Sort(roleNamespaces)
		want := []string{teamA, teamB}
		slices.Sort(want)
		if !slices.Equal(roleNamespaces, want) {
			t.Errorf("manager Roles in %v, want %v", roleNamespaces, want)
		}
		for _, name := range clusterRolesGranting(t, objs, "", "secrets") {
			t.Errorf("namespaced install: ClusterRole %s grants Secrets", name)
		}
		kubectlDryRun(t, env, rendered)
	})
}

// TestChartCopiesAreCurrent keeps the chart's CRDs and RBAC rules, and the namespaced overlay's
// Role, equal to the generated ones (make manifests writes them).
func TestChartCopiesAreCurrent(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bases, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if len(bases) != 2 {
		t.Fatalf("want 2 CRDs in config/crd/bases, found %d", len(bases))
	}
	copies, _ := filepath.Glob(filepath.Join(root, "charts", "integrations-operator", "files", "crds", "*.yaml"))
	if len(copies) != len(bases) {
		t.Errorf("the chart has %d CRDs, config/crd/bases %d: run make manifests", len(copies), len(bases))
	}
	for _, b := range bases {
		copyPath := filepath.Join(root, "charts", "integrations-operator", "files", "crds", filepath.Base(b))
		if !bytes.Equal(read(t, b), read(t, copyPath)) {
			t.Errorf("%s differs from %s: run make manifests", copyPath, b)
		}
	}
	rolePath := filepath.Join(root, "config", "rbac", "role.yaml")
	role := string(read(t, rolePath))
	rules := string(read(t, filepath.Join(root, "charts", "integrations-operator", "files", "manager-rules.yaml")))
	if !strings.HasSuffix(role, rules[strings.Index(rules, "rules:"):]) {
		t.Error("charts/integrations-operator/files/manager-rules.yaml differs from config/rbac/role.yaml: run make manifests")
	}

	clusterRole := decode(t, read(t, rolePath))
	nsRole := decode(t, read(t, filepath.Join(root, "config", "namespaced", "watch", "manager_role.yaml")))
	if len(clusterRole) != 1 || len(nsRole) != 1 || nsRole[0].GetKind() != "Role" ||
		!reflect.DeepEqual(clusterRole[0].Object["rules"], nsRole[0].Object["rules"]) {
		t.Error("config/namespaced/watch/manager_role.yaml is not the Role of config/rbac/role.yaml's rules: run make manifests")
	}
}

func assertHardened(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	pod := dep.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("pod may run as root")
	}
	if pod.SecurityContext == nil || pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod has no RuntimeDefault seccomp profile")
	}
	sc := pod.Containers[0].SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("root filesystem is writable")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("privilege escalation allowed")
	}
}

// clusterRolesGranting returns the ClusterRoles among objs with a rule on resource in apiGroup
// (wildcards included).
func clusterRolesGranting(t *testing.T, objs []*unstructured.Unstructured, apiGroup, resource string) []string {
	t.Helper()
	var names []string
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" {
			continue
		}
		var role rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role); err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
			return (slices.Contains(r.APIGroups, apiGroup) || slices.Contains(r.APIGroups, "*")) &&
				(slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, "*"))
		}) || role.AggregationRule != nil {
			names = append(names, role.Name)
		}
	}
	return names
}

func tool(t *testing.T, root, rel, how string) string {
	t.Helper()
	path := filepath.Join(root, rel)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s not found: run `%s` first (make test does)", rel, how)
	}
	return path
}

func run(t *testing.T, dir, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func kubectlDryRun(t *testing.T, env *kubetest.Env, manifests []byte) {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl not found on PATH: install it to run the install-path tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", env.Kubeconfig(t), "apply", "--dry-run=server", "-f", "-")
	cmd.Stdin = bytes.NewReader(manifests)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "(server dry run)") {
		t.Fatalf("kubectl applied nothing:\n%s", out)
	}
}

func createNamespace(t *testing.T, env *kubetest.Env, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
}

func decode(t *testing.T, manifests []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decoding rendered manifests: %v", err)
		}
		if m != nil {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

func countKinds(objs []*unstructured.Unstructured) map[string]int {
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	return kinds
}

func deployment(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			var dep appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &dep); err != nil {
				t.Fatal(err)
			}
			return &dep
		}
	}
	t.Fatal("no Deployment rendered")
	return nil
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
