package install

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

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

// runFails runs bin, wants it to fail, and returns what it printed.
func runFails(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("%s %s succeeded, want a failure", filepath.Base(bin), strings.Join(args, " "))
	}
	return string(out)
}

// TestHelmChartSchemaRefusesBadValues: values.schema.json refuses a value of the wrong type, out
// of its enum or bounds, and a key the chart does not know, on template and lint, naming the
// value; the chart's own defaults pass.
func TestHelmChartSchemaRefusesBadValues(t *testing.T) {
	root, helm, chart := chartPath(t)
	run(t, root, helm, "lint", chart)
	run(t, root, helm, "template", "ops", chart)

	for set, want := range map[string]string{
		"replicaCount=two":                       "at '/replicaCount': got string, want integer",
		"replicaCount=9":                         "at '/replicaCount': maximum: got 9, want 5",
		"watchNamespace={team-a}":                "additional properties 'watchNamespace' not allowed",
		"serviceMonitor.enable=true":             "at '/serviceMonitor': additional properties 'enable' not allowed",
		"logLevel=verbose":                       "at '/logLevel': value must be one of 'debug', 'info', 'error', 'panic'",
		"logLevel=0":                             "at '/logLevel': minimum: got 0, want 1",
		"image.pullPolicy=Sometimes":             "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
		"podDisruptionBudget.maxUnavailable=0":   "at '/podDisruptionBudget/maxUnavailable': minimum: got 0, want 1",
		"metrics.port=80":                        "at '/metrics/port': minimum: got 80",
		"watchNamespaces={Team_A}":               "at '/watchNamespaces/0': 'Team_A' does not match pattern",
		"egressAllow={https://okx.com/api}":      "at '/egressAllow/0': 'https://okx.com/api' does not match pattern",
		"gatewayImageAllow={a b}":                "at '/gatewayImageAllow/0': 'a b' does not match pattern",
		"imagePullSecrets[0].nam=regcred":        "at '/imagePullSecrets/0'",
		"prometheusRule.settleFailureRatio=2":    "at '/prometheusRule/settleFailureRatio': maximum: got 2, want 1",
		"serviceMonitor.interval=30":             "at '/serviceMonitor/interval': got number, want string",
		"prometheusRule.pendingFor=15 minutes":   "at '/prometheusRule/pendingFor': '15 minutes' does not match pattern",
		"resources.limits.memory=lots":           "at '/resources/limits/memory'",
		"metrics.tls.certManager.duration=90d":   "at '/metrics/tls/certManager/duration': '90d' does not match pattern",
		"grafanaDashboard.sidecarLabelValue=a b": "at '/grafanaDashboard/sidecarLabelValue': 'a b' does not match pattern",
		"crds.install=yes":                       "at '/crds/install': got string, want boolean",
	} {
		for _, cmd := range []string{"template", "lint"} {
			args := []string{cmd, chart, "--set", set}
			if cmd == "template" {
				args = []string{cmd, "ops", chart, "--set", set}
			}
			if out := runFails(t, root, helm, args...); !strings.Contains(out, want) {
				t.Errorf("helm %s --set %s: want %q in\n%s", cmd, set, want, out)
			}
		}
	}

	// Values that are fine: an integer log verbosity, a percentage budget, wildcard origins.
	run(t, root, helm, "template", "ops", chart, "--set", "logLevel=2", "--set", "podDisruptionBudget.maxUnavailable=50%",
		"--set", "egressAllow={https://*.okx.com,http://[::1]:8545}", "--set", "replicaCount=3",
		"--set", "tolerations[0].operator=Exists", "--set", "podLabels.team=payments",
		"--set", "prometheusRule.settleFailureRatio=0.25", "--set", "prometheusRule.settleP99Seconds=2.5")
}

// TestHelmChartRefusesContradictoryValues: combinations the schema cannot express fail the render
// with a message saying what to set.
func TestHelmChartRefusesContradictoryValues(t *testing.T) {
	root, helm, chart := chartPath(t)
	for want, sets := range map[string][]string{
		"replicaCount above 1 needs leaderElection":                     {"replicaCount=2", "leaderElection=false"},
		"metrics.port must not be 8081":                                 {"metrics.port=8081"},
		"set metrics.tls.existingSecret or metrics.tls.certManager":     {"metrics.tls.existingSecret=tls", "metrics.tls.certManager.enabled=true"},
		"serviceMonitor.enabled needs metrics.enabled":                  {"serviceMonitor.enabled=true", "metrics.enabled=false", "metrics.tls.existingSecret=tls"},
		"serviceMonitor.enabled needs a metrics certificate Prometheus": {"serviceMonitor.enabled=true"},
	} {
		args := []string{"template", "ops", chart}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		if out := runFails(t, root, helm, args...); !strings.Contains(out, want) {
			t.Errorf("%v: want %q in\n%s", sets, want, out)
		}
	}
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

// metricsTLS is what a render says about the metrics certificate: the Secret the Deployment mounts
// and names in --metrics-cert-path, and the ServiceMonitor's tlsConfig.
type metricsTLS struct {
	volumeSecret string
	certPathArg  bool
	mountPath    string
	tlsConfig    map[string]any
	service      string
}

func readMetricsTLS(t *testing.T, objs []*unstructured.Unstructured) metricsTLS {
	t.Helper()
	var m metricsTLS
	dep := deployment(t, objs)
	c := dep.Spec.Template.Spec.Containers[0]
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "metrics-certs" && v.Secret != nil {
			m.volumeSecret = v.Secret.SecretName
		}
	}
	for _, vm := range c.VolumeMounts {
		if vm.Name == "metrics-certs" {
			m.mountPath = vm.MountPath
			if !vm.ReadOnly {
				t.Error("the certificate is mounted writable")
			}
		}
	}
	m.certPathArg = slices.Contains(c.Args, "--metrics-cert-path="+m.mountPath)
	for _, o := range objs {
		switch {
		case o.GetKind() == "ServiceMonitor":
			eps, _, _ := unstructured.NestedSlice(o.Object, "spec", "endpoints")
			if len(eps) != 1 {
				t.Fatalf("ServiceMonitor endpoints %v", eps)
			}
			m.tlsConfig, _, _ = unstructured.NestedMap(eps[0].(map[string]any), "tlsConfig")
		case o.GetKind() == "Service" && strings.HasSuffix(o.GetName(), "-metrics"):
			m.service = o.GetName() + "." + o.GetNamespace() + ".svc"
		}
	}
	return m
}

// TestHelmChartServiceMonitorVerifiesTheManager: with a certificate from an existing Secret or
// from cert-manager, the manager serves it and the ServiceMonitor verifies it against the
// Secret's ca.crt and the metrics Service's DNS name; nothing ever skips verification, and the
// default install needs no certificate.
func TestHelmChartServiceMonitorVerifiesTheManager(t *testing.T) {
	root, helm, chart := chartPath(t)

	// Without monitoring the manager makes its own certificate, as before.
	defaults := renderChart(t)
	m := readMetricsTLS(t, defaults)
	if m.volumeSecret != "" || m.mountPath != "" || slices.ContainsFunc(deployment(t, defaults).Spec.Template.Spec.Containers[0].Args,
		func(a string) bool { return strings.HasPrefix(a, "--metrics-cert-path") }) {
		t.Errorf("the default install mounts a certificate: %+v", m)
	}

	check := func(t *testing.T, m metricsTLS, secret string) {
		t.Helper()
		if m.volumeSecret != secret || m.mountPath == "" || !m.certPathArg {
			t.Errorf("the manager serves %+v, want the Secret %s mounted and named in --metrics-cert-path", m, secret)
		}
		want := map[string]any{
			"serverName": m.service,
			"ca":         map[string]any{"secret": map[string]any{"name": secret, "key": "ca.crt"}},
		}
		if m.service == "" || !reflect.DeepEqual(m.tlsConfig, want) {
			t.Errorf("ServiceMonitor tlsConfig %v, want %v", m.tlsConfig, want)
		}
	}

	t.Run("existing Secret", func(t *testing.T) {
		sets := []string{"serviceMonitor.enabled=true", "metrics.tls.existingSecret=metrics-tls"}
		objs := renderChart(t, sets...)
		check(t, readMetricsTLS(t, objs), "metrics-tls")
		for _, o := range objs {
			if strings.HasPrefix(o.GetAPIVersion(), "cert-manager.io/") {
				t.Errorf("renders %s %s without cert-manager", o.GetKind(), o.GetName())
			}
		}
	})

	t.Run("cert-manager, the release's own CA", func(t *testing.T) {
		objs := renderChart(t, "serviceMonitor.enabled=true", "metrics.tls.certManager.enabled=true")
		m := readMetricsTLS(t, objs)
		certs, issuers := map[string]map[string]any{}, map[string]map[string]any{}
		for _, o := range objs {
			switch o.GetKind() {
			case "Certificate":
				certs[o.GetName()] = o.Object["spec"].(map[string]any)
			case "Issuer":
				issuers[o.GetName()] = o.Object["spec"].(map[string]any)
			}
		}
		if len(certs) != 2 || len(issuers) != 2 {
			t.Fatalf("Certificates %v, Issuers %v: want the CA and the serving certificate, a self-signed and a CA Issuer", certs, issuers)
		}
		var serving, ca map[string]any
		for _, c := range certs {
			if c["isCA"] == true {
				ca = c
			} else {
				serving = c
			}
		}
		if serving == nil || ca == nil {
			t.Fatalf("Certificates %v", certs)
		}
		check(t, m, serving["secretName"].(string))
		if dns, _ := serving["dnsNames"].([]any); len(dns) == 0 || dns[0] != m.service {
			t.Errorf("the certificate is for %v, the ServiceMonitor verifies %s", serving["dnsNames"], m.service)
		}
		// serving <- CA Issuer (holding the CA Certificate's Secret) <- self-signed Issuer.
		caIssuer := issuers[serving["issuerRef"].(map[string]any)["name"].(string)]
		if caIssuer == nil || caIssuer["ca"].(map[string]any)["secretName"] != ca["secretName"] {
			t.Errorf("the serving certificate's issuer %v does not sign with the CA %v", caIssuer, ca["secretName"])
		}
		if root := issuers[ca["issuerRef"].(map[string]any)["name"].(string)]; root == nil || root["selfSigned"] == nil {
			t.Errorf("the CA's issuer %v is not self-signed", root)
		}
	})

	t.Run("cert-manager, a ClusterIssuer", func(t *testing.T) {
		objs := renderChart(t, "serviceMonitor.enabled=true", "metrics.tls.certManager.enabled=true",
			"metrics.tls.certManager.issuerRef.name=corp-ca", "metrics.tls.certManager.issuerRef.kind=ClusterIssuer")
		var certs []*unstructured.Unstructured
		for _, o := range objs {
			switch o.GetKind() {
			case "Issuer":
				t.Errorf("renders Issuer %s with an issuer given", o.GetName())
			case "Certificate":
				certs = append(certs, o)
			}
		}
		if len(certs) != 1 {
			t.Fatalf("%d Certificates", len(certs))
		}
		ref, _, _ := unstructured.NestedStringMap(certs[0].Object, "spec", "issuerRef")
		if ref["name"] != "corp-ca" || ref["kind"] != "ClusterIssuer" || ref["group"] != "cert-manager.io" {
			t.Errorf("issuerRef %v", ref)
		}
		secret, _, _ := unstructured.NestedString(certs[0].Object, "spec", "secretName")
		check(t, readMetricsTLS(t, objs), secret)
	})

	// No combination of values turns verification off.
	for _, sets := range [][]string{
		{"serviceMonitor.enabled=true", "metrics.tls.existingSecret=metrics-tls"},
		{"serviceMonitor.enabled=true", "metrics.tls.certManager.enabled=true"},
	} {
		args := []string{"template", "ops", chart}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		if out := run(t, root, helm, args...); bytes.Contains(out, []byte("insecureSkipVerify")) {
			t.Errorf("%v renders insecureSkipVerify", sets)
		}
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
