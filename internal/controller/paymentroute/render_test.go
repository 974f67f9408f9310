package paymentroute

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	gwconfig "github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

const testGatewayImage = "registry.example/insforge/integrations-operator:v1.2.3"

// loadRouteSample reads config/samples/integrations_v1alpha1_paymentroute_<name>.yaml.
func loadRouteSample(t *testing.T, name string) *integrationsv1alpha1.PaymentRoute {
	t.Helper()
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "samples", "integrations_v1alpha1_paymentroute_"+name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pr integrationsv1alpha1.PaymentRoute
	if err := yaml.UnmarshalStrict(raw, &pr); err != nil {
		t.Fatalf("decoding the %s sample: %v", name, err)
	}
	return &pr
}

func renderSample(t *testing.T, name string, versions map[string]string) (*integrationsv1alpha1.PaymentRoute, *gatewayObjects) {
	t.Helper()
	pr := loadRouteSample(t, name)
	pr.Namespace, pr.UID = "shop", types.UID("uid-"+name)
	objs, err := renderGateway(gatewayRender{Route: pr, Image: testGatewayImage, SecretVersions: versions})
	if err != nil {
		t.Fatal(err)
	}
	return pr, objs
}

func TestPaymentRouteRenderOKXSample(t *testing.T) {
	pr, objs := renderSample(t, "okx", map[string]string{"insforge-db": "10", "okx-x402-credentials": "11"})
	name := "weather-okx-gateway"

	for _, o := range []interface {
		GetName() string
		GetNamespace() string
		GetLabels() map[string]string
	}{objs.ConfigMap, objs.Deployment, objs.Service, objs.PDB} {
		if o.GetName() != name || o.GetNamespace() != "shop" || o.GetLabels()[kit.LabelManagedBy] != kit.ManagerName {
			t.Errorf("object %s/%s labels %v", o.GetNamespace(), o.GetName(), o.GetLabels())
		}
	}
	for _, refs := range [][]metav1.OwnerReference{objs.ConfigMap.OwnerReferences, objs.Deployment.OwnerReferences,
		objs.Service.OwnerReferences, objs.PDB.OwnerReferences} {
		if len(refs) != 1 {
			t.Fatalf("owner references %+v", refs)
		}
		r := refs[0]
		if r.APIVersion != "integrations.insforge.dev/v1alpha1" || r.Kind != "PaymentRoute" || r.Name != pr.Name || r.UID != pr.UID ||
			!ptr.Deref(r.Controller, false) || !ptr.Deref(r.BlockOwnerDeletion, false) {
			t.Errorf("owner reference %+v", r)
		}
	}

	// The ConfigMap holds exactly what the gateway loads.
	var cfg gwconfig.Config
	if err := json.Unmarshal([]byte(objs.ConfigMap.Data[gwconfig.ConfigMapKey]), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Route != "shop/weather-okx" || cfg.Upstream != "http://weather-api.shop.svc:8080" || cfg.Facilitator.Kind != gwconfig.KindOKX ||
		len(cfg.Routes) != 2 || cfg.Asset.EIP712Name != "Global Dollar" {
		t.Errorf("config: %+v", cfg)
	}

	d := objs.Deployment
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %d", *d.Spec.Replicas)
	}
	if want := map[string]string{labelName: gatewayAppName, labelInstance: "weather-okx"}; !reflect.DeepEqual(d.Spec.Selector.MatchLabels, want) {
		t.Errorf("selector %v", d.Spec.Selector.MatchLabels)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("containers: %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != testGatewayImage || !reflect.DeepEqual(c.Command, []string{"/gateway"}) ||
		!reflect.DeepEqual(c.Args, []string{"--config", gwconfig.DefaultConfigPath}) {
		t.Errorf("image/command/args: %s %v %v", c.Image, c.Command, c.Args)
	}
	if !reflect.DeepEqual(c.Ports, []corev1.ContainerPort{
		{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
		{Name: "admin", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
	}) {
		t.Errorf("ports %+v", c.Ports)
	}
	for _, p := range []struct {
		probe *corev1.Probe
		path  string
	}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.StrVal != "admin" {
			t.Errorf("probe for %s: %+v", p.path, p.probe)
		}
	}
	sc := c.SecurityContext
	if !*sc.RunAsNonRoot || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || *sc.Privileged ||
		!reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext %+v", sc)
	}
	psc := pod.SecurityContext
	if !*psc.RunAsNonRoot || *psc.RunAsUser == 0 || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v", psc)
	}
	if *pod.AutomountServiceAccountToken {
		t.Error("the gateway pod mounts a service account token")
	}
	wantEnv := map[string][2]string{
		gwconfig.EnvDatabaseURL:   {"insforge-db", "uri"},
		gwconfig.EnvOKXAPIKey:     {"okx-x402-credentials", "apiKey"},
		gwconfig.EnvOKXSecretKey:  {"okx-x402-credentials", "secretKey"},
		gwconfig.EnvOKXPassphrase: {"okx-x402-credentials", "passphrase"},
	}
	if len(c.Env) != len(wantEnv) {
		t.Errorf("env: %+v", c.Env)
	}
	for _, e := range c.Env {
		w, ok := wantEnv[e.Name]
		if !ok || e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Name != w[0] || e.ValueFrom.SecretKeyRef.Key != w[1] {
			t.Errorf("env %s: %+v", e.Name, e)
		}
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["config"] != "/etc/x402-gateway" || mounts["spool"] != gwconfig.DefaultSpoolDir {
		t.Errorf("mounts %v", mounts)
	}
	vols := map[string]corev1.VolumeSource{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v.VolumeSource
	}
	if vols["config"].ConfigMap == nil || vols["config"].ConfigMap.Name != name || vols["spool"].EmptyDir == nil {
		t.Errorf("volumes %+v", pod.Volumes)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("default resources missing: %+v", c.Resources)
	}
	if h := d.Spec.Template.Annotations[annotationGatewayHash]; h != objs.Hash || len(h) != 32 {
		t.Errorf("hash annotation %q, objs.Hash %q", h, objs.Hash)
	}

	s := objs.Service
	if s.Spec.Type != corev1.ServiceTypeClusterIP || !reflect.DeepEqual(s.Spec.Selector, d.Spec.Selector.MatchLabels) {
		t.Errorf("service %+v", s.Spec)
	}
	if !reflect.DeepEqual(s.Spec.Ports, []corev1.ServicePort{
		{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080, TargetPort: intstr.FromString("http")},
		{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: 9090, TargetPort: intstr.FromString("admin")},
	}) {
		t.Errorf("service ports %+v", s.Spec.Ports)
	}
	wantOneUnavailable(t, objs, d)
	if got := serviceURL(pr); got != "http://weather-okx-gateway.shop.svc:8080" {
		t.Errorf("service URL %s", got)
	}
}

func TestPaymentRouteRenderOnchainSample(t *testing.T) {
	pr, objs := renderSample(t, "onchain", map[string]string{"insforge-db": "1", "x402-relayer": "2"})
	// Unset replicas stay out of the apply: the count belongs to whoever scales the Deployment.
	if r := objs.Deployment.Spec.Replicas; r != nil {
		t.Errorf("replicas %d rendered for a route that sets none", *r)
	}
	wantOneUnavailable(t, objs, objs.Deployment)
	env := objs.Deployment.Spec.Template.Spec.Containers[0].Env
	if len(env) != 2 || env[1].Name != gwconfig.EnvRelayerKey || env[1].ValueFrom.SecretKeyRef.Name != "x402-relayer" ||
		env[1].ValueFrom.SecretKeyRef.Key != "privateKey" {
		t.Errorf("env %+v", env)
	}
	if pr.Spec.Gateway.Image != "" {
		t.Fatal("sample sets an image")
	}

	// spec.gateway.image and resources override the defaults.
	pr.Spec.Gateway.Image = "example/custom:1"
	pr.Spec.Gateway.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}
	objs2, err := renderGateway(gatewayRender{Route: pr, Image: testGatewayImage, SecretVersions: map[string]string{"insforge-db": "1", "x402-relayer": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	c := objs2.Deployment.Spec.Template.Spec.Containers[0]
	if c.Image != "example/custom:1" || c.Resources.Requests.Cpu().String() != "1" || !c.Resources.Limits.Memory().IsZero() {
		t.Errorf("override: %s %+v", c.Image, c.Resources)
	}
	if objs2.Hash != objs.Hash {
		t.Error("image and resources are not part of the config, yet the hash changed")
	}
}

func TestPaymentRouteRenderHashFollowsConfigAndSecretVersions(t *testing.T) {
	base := map[string]string{"insforge-db": "1", "okx-x402-credentials": "2"}
	pr, a := renderSample(t, "okx", base)
	_, again := renderSample(t, "okx", map[string]string{"insforge-db": "1", "okx-x402-credentials": "2"})
	if a.Hash != again.Hash || !reflect.DeepEqual(a.Deployment, again.Deployment) {
		t.Fatal("rendering is not deterministic")
	}
	_, rotated := renderSample(t, "okx", map[string]string{"insforge-db": "1", "okx-x402-credentials": "3"})
	if rotated.Hash == a.Hash {
		t.Error("a Secret's new resourceVersion did not change the hash")
	}
	pr.Spec.Routes[0].Price = "0.02"
	repriced, err := renderGateway(gatewayRender{Route: pr, Image: testGatewayImage, SecretVersions: base})
	if err != nil {
		t.Fatal(err)
	}
	if repriced.Hash == a.Hash || repriced.Deployment.Spec.Template.Annotations[annotationGatewayHash] == a.Hash {
		t.Error("a price change did not change the hash")
	}
	if !strings.Contains(repriced.ConfigMap.Data[gwconfig.ConfigMapKey], `"0.02"`) {
		t.Error("the ConfigMap lacks the new price")
	}
}

// TestPaymentRouteRenderMetricsPortStaysInTheCluster: the metrics port is on ClusterIP Services
// only, since a NodePort or LoadBalancer Service publishes all its ports, and never collides with
// the route's own port.
func TestPaymentRouteRenderMetricsPortStaysInTheCluster(t *testing.T) {
	for _, tc := range []struct {
		name        string
		typ         corev1.ServiceType
		port        int32
		wantMetrics bool
	}{
		{"cluster ip", corev1.ServiceTypeClusterIP, 80, true},
		{"node port", corev1.ServiceTypeNodePort, 8080, false},
		{"load balancer", corev1.ServiceTypeLoadBalancer, 443, false},
		{"route port is the admin port", corev1.ServiceTypeClusterIP, 9090, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := loadRouteSample(t, "okx")
			pr.Namespace = "shop"
			pr.Spec.Gateway.Service = integrationsv1alpha1.GatewayService{Type: tc.typ, Port: tc.port}
			objs, err := renderGateway(gatewayRender{Route: pr, Image: testGatewayImage})
			if err != nil {
				t.Fatal(err)
			}
			ports := objs.Service.Spec.Ports
			if objs.Service.Spec.Type != tc.typ || len(ports) == 0 || ports[0].Name != "http" || ports[0].Port != tc.port {
				t.Fatalf("service %+v", objs.Service.Spec)
			}
			var metrics *corev1.ServicePort
			for i := range ports {
				if ports[i].Name == "metrics" {
					metrics = &ports[i]
				}
			}
			switch {
			case tc.wantMetrics && (metrics == nil || metrics.Port != 9090 || metrics.TargetPort.StrVal != "admin"):
				t.Errorf("want the metrics port 9090 -> admin, ports %+v", ports)
			case !tc.wantMetrics && metrics != nil:
				t.Errorf("metrics port published on a %s Service on port %d: %+v", tc.typ, tc.port, ports)
			}
		})
	}
}

// TestPaymentRouteRenderPodsMatchTheMonitorSelector: GatewayPodSelector and GatewayMetricsPort,
// what a PodMonitor for every gateway uses, hold for a rendered gateway.
func TestPaymentRouteRenderPodsMatchTheMonitorSelector(t *testing.T) {
	_, objs := renderSample(t, "okx", nil)
	tmpl := objs.Deployment.Spec.Template
	for k, v := range GatewayPodSelector() {
		if tmpl.Labels[k] != v {
			t.Errorf("pod label %s = %q, the selector wants %q", k, tmpl.Labels[k], v)
		}
	}
	var port *corev1.ContainerPort
	for i, p := range tmpl.Spec.Containers[0].Ports {
		if p.Name == GatewayMetricsPort {
			port = &tmpl.Spec.Containers[0].Ports[i]
		}
	}
	if port == nil || port.ContainerPort != 9090 {
		t.Errorf("no container port %q on 9090 (the admin listener with /metrics): %+v", GatewayMetricsPort, tmpl.Spec.Containers[0].Ports)
	}
}

func TestPaymentRouteRenderLongNamesFitAService(t *testing.T) {
	long := strings.Repeat("a", 70)
	n := gatewayName(long)
	if len(n) > 63 || !strings.HasSuffix(n, "-gateway") || n == gatewayName(long+"b") {
		t.Errorf("gatewayName(%d chars) = %q", len(long), n)
	}
	if v := selectorValue(long); len(v) > 63 {
		t.Errorf("selector value %q", v)
	}
	if gatewayName("weather") != "weather-gateway" {
		t.Error("short names must stay readable")
	}
}

// wantOneUnavailable checks the PodDisruptionBudget: one gateway pod down at a time, at any count.
func wantOneUnavailable(t *testing.T, objs *gatewayObjects, d *appsv1.Deployment) {
	t.Helper()
	if objs.PDB == nil || objs.PDB.Spec.MinAvailable != nil || objs.PDB.Spec.MaxUnavailable.IntValue() != 1 ||
		!reflect.DeepEqual(objs.PDB.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("pdb %+v", objs.PDB)
	}
}

// spec.gateway's scheduling fields reach the pods; the route's labels and annotations never
// override the operator's; the manager's pull Secrets apply when the route names none.
func TestPaymentRouteRenderPodPlacement(t *testing.T) {
	pr := loadRouteSample(t, "okx")
	pr.Namespace = "shop"
	g := &pr.Spec.Gateway
	g.NodeSelector = map[string]string{"pool": "payments"}
	g.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "payments", Effect: corev1.TaintEffectNoSchedule}}
	g.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
		Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname",
			LabelSelector: &metav1.LabelSelector{MatchLabels: gatewaySelector(pr)}},
	}}}}
	g.PriorityClassName = "payments-critical"
	g.PodLabels = map[string]string{"team": "pay", labelComponent: "mine"}
	g.PodAnnotations = map[string]string{"prometheus.io/scrape": "true", annotationGatewayHash: "forged"}

	render := func(pull []string) corev1.PodTemplateSpec {
		objs, err := renderGateway(gatewayRender{Route: pr, Image: testGatewayImage, PullSecrets: pull})
		if err != nil {
			t.Fatal(err)
		}
		return objs.Deployment.Spec.Template
	}
	tpl := render([]string{"regcred"})
	pod := tpl.Spec
	if !reflect.DeepEqual(pod.NodeSelector, g.NodeSelector) || !reflect.DeepEqual(pod.Tolerations, g.Tolerations) ||
		!reflect.DeepEqual(pod.Affinity, g.Affinity) || pod.PriorityClassName != "payments-critical" {
		t.Errorf("placement not rendered: %+v", pod)
	}
	if !reflect.DeepEqual(pod.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "regcred"}}) {
		t.Errorf("pull secrets %v, want the manager's", pod.ImagePullSecrets)
	}
	if tpl.Labels["team"] != "pay" || tpl.Labels[labelComponent] != "payment-gateway" || tpl.Labels[labelName] != gatewayAppName {
		t.Errorf("labels %v: the route's are added, the operator's kept", tpl.Labels)
	}
	if tpl.Annotations["prometheus.io/scrape"] != "true" || tpl.Annotations[annotationGatewayHash] == "forged" {
		t.Errorf("annotations %v: the route's are added, the rollout hash kept", tpl.Annotations)
	}
	g.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "team-registry"}}
	if got := render([]string{"regcred"}).Spec.ImagePullSecrets; !reflect.DeepEqual(got, g.ImagePullSecrets) {
		t.Errorf("pull secrets %v, want the route's own", got)
	}
}
