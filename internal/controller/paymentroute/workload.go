package paymentroute

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	gwconfig "github.com/insforge/integrations-operator/internal/gateway/config"
)

// Names and labels of the gateway objects of a PaymentRoute.
const (
	// annotationGatewayHash on the pod template rolls the pods when the config or a referenced
	// Secret changes (Secrets reach the pods as env vars, which never refresh in place).
	annotationGatewayHash = "integrations.insforge.dev/gateway-hash"
	labelName             = "app.kubernetes.io/name"
	labelInstance         = "app.kubernetes.io/instance"
	labelComponent        = "app.kubernetes.io/component"
	gatewayAppName        = "x402-gateway"
	gatewayContainer      = "gateway"
	gatewayBinary         = "/gateway"
	portNameHTTP          = "http"
	portNameAdmin         = "admin"
	portNameMetrics       = "metrics" // the Service port in front of the admin port (/metrics)
	volumeConfig          = "config"
	volumeSpool           = "spool"
	// gatewayUID is the distroless "nonroot" user; the image runs as it too.
	gatewayUID = 65532
)

// gatewayRender is everything the gateway objects are rendered from: the route, the image and
// the versions of the Secrets it references (for the rollout hash).
type gatewayRender struct {
	Route *integrationsv1alpha1.PaymentRoute
	// Image is the manager's default gateway image; spec.gateway.image overrides it.
	Image string
	// SecretVersions maps each referenced Secret's name to its resourceVersion.
	SecretVersions map[string]string
	// PullSecrets are the manager's image pull Secrets, used unless the route names its own.
	PullSecrets []string
}

// gatewayObjects are the rendered children of a route.
type gatewayObjects struct {
	kit.Workload
	// Hash is the pod-template annotation value.
	Hash string
}

// gatewayName is the name of every child object: DNS-1035 and at most 63 characters (a Service
// name), shortened with a hash suffix when the route's name is too long.
func gatewayName(route string) string { return kit.ChildName(route, "-gateway") }

// gatewaySelector selects the pods of one route's gateway; it is immutable on a Deployment, so
// it holds only labels that never change.
func gatewaySelector(route *integrationsv1alpha1.PaymentRoute) map[string]string {
	return map[string]string{labelName: gatewayAppName, labelInstance: selectorValue(route.Name)}
}

// selectorValue fits a route name into a 63-character label value.
func selectorValue(name string) string {
	if len(name) <= 63 {
		return name
	}
	return gatewayName(name)
}

// GatewayMetricsPort names the gateway container's port that serves /metrics (and the probes).
const GatewayMetricsPort = portNameAdmin

// GatewayPodSelector selects the pods of every gateway the operator runs, whatever the route:
// what a PodMonitor for all gateways selects (the chart's does, checked by test/install).
func GatewayPodSelector() map[string]string {
	return map[string]string{labelName: gatewayAppName, kit.LabelManagedBy: kit.ManagerName}
}

func gatewayLabels(route *integrationsv1alpha1.PaymentRoute) map[string]string {
	l := gatewaySelector(route)
	l[labelComponent] = "payment-gateway"
	l[kit.LabelManagedBy] = kit.ManagerName
	return l
}

// renderGateway renders the ConfigMap, Deployment, Service and PodDisruptionBudget of a route,
// whatever the replica count. It is pure: the same input gives byte-identical objects, so an
// unchanged route applies as a no-op.
func renderGateway(in gatewayRender) (*gatewayObjects, error) {
	route := in.Route
	cfg, err := gatewayConfig(route)
	if err != nil {
		return nil, err
	}
	file, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	listenPort, err := portOf(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("gateway listen address: %w", err)
	}
	adminPort, err := portOf(cfg.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("gateway admin address: %w", err)
	}
	hash := gatewayHash(file, in.SecretVersions)
	name := gatewayName(route.Name)
	owner := ownerRef(route)
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name: name, Namespace: route.Namespace, Labels: gatewayLabels(route),
			OwnerReferences: []metav1.OwnerReference{owner},
		}
	}
	out := &gatewayObjects{Hash: hash}
	out.ConfigMap = &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(),
		Data:       map[string]string{gwconfig.ConfigMapKey: string(file)},
	}
	out.Deployment = &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(),
		Spec: appsv1.DeploymentSpec{
			// Unset, it is left out of the apply, so the count belongs to whoever scales the
			// Deployment and a reconcile never takes it back.
			Replicas: route.Spec.Gateway.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: gatewaySelector(route)},
			// Keep full capacity during a rollout: a missing replica is lost revenue.
			Strategy: kit.NoLossRollout(),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					// The route's own labels and annotations first: the operator's win.
					Labels:      kit.Merged(route.Spec.Gateway.PodLabels, gatewayLabels(route)),
					Annotations: kit.Merged(route.Spec.Gateway.PodAnnotations, map[string]string{annotationGatewayHash: hash}),
				},
				Spec: gatewayPodSpec(in, name, cfg, listenPort, adminPort),
			},
		},
	}
	out.Service = &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(),
		Spec: corev1.ServiceSpec{
			Type:     serviceType(route),
			Selector: gatewaySelector(route),
			Ports:    servicePorts(route, adminPort),
		},
	}
	// One pod down at a time for voluntary disruptions (drains, autoscaler scale-downs): the
	// rest keep answering payments, and a single replica can still be evicted, so a drain
	// never blocks. It fits any replica count, so it does not follow the count.
	out.PDB = kit.OnePodAtATime(meta(), gatewaySelector(route))
	return out, nil
}

func gatewayPodSpec(in gatewayRender, configMap string, cfg gwconfig.Config, listenPort, adminPort int32) corev1.PodSpec {
	route := in.Route
	env, envFrom := secretEnv(route)
	image := route.Spec.Gateway.Image
	if image == "" {
		image = in.Image
	}
	resources := kit.Resources(route.Spec.Gateway.ManagedPods, corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("50m"),
			corev1.ResourceMemory: resource.MustParse("64Mi"),
		},
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	})
	probe := func(p string, period int32) *corev1.Probe { return kit.HTTPProbe(p, portNameAdmin, period) }
	// The pod may stop only after the gateway drained in-flight settlements.
	grace := int64(cfg.Gateway.ShutdownTimeout.Seconds()) + 15
	spec := corev1.PodSpec{
		// The gateway never talks to the Kubernetes API.
		AutomountServiceAccountToken:  ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To(grace),
		SecurityContext:               kit.PodSecurity(gatewayUID),
		Containers: []corev1.Container{{
			Name:    gatewayContainer,
			Image:   image,
			Command: []string{gatewayBinary},
			Args:    []string{"--config", gwconfig.DefaultConfigPath},
			Ports: []corev1.ContainerPort{
				{Name: portNameHTTP, ContainerPort: listenPort, Protocol: corev1.ProtocolTCP},
				{Name: portNameAdmin, ContainerPort: adminPort, Protocol: corev1.ProtocolTCP},
			},
			Env:             env,
			EnvFrom:         envFrom,
			Resources:       resources,
			LivenessProbe:   probe(gwconfig.PathHealthz, 10),
			ReadinessProbe:  probe(gwconfig.PathReadyz, 5),
			SecurityContext: kit.ContainerSecurity(),
			VolumeMounts: []corev1.VolumeMount{
				{Name: volumeConfig, MountPath: path.Dir(gwconfig.DefaultConfigPath), ReadOnly: true},
				{Name: volumeSpool, MountPath: cfg.Gateway.SpoolDir},
			},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		}},
		Volumes: []corev1.Volume{
			{Name: volumeConfig, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: configMap},
				Items:                []corev1.KeyToPath{{Key: gwconfig.ConfigMapKey, Path: path.Base(gwconfig.DefaultConfigPath)}},
			}}},
			// Settle outcomes the database could not take wait here; it survives container
			// restarts, and the ledger resolver covers a lost pod.
			{Name: volumeSpool, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				SizeLimit: ptr.To(resource.MustParse("64Mi")),
			}}},
		},
	}
	kit.Place(&spec, route.Spec.Gateway.ManagedPods, in.PullSecrets)
	return spec
}

// gatewayHash digests the config file and the referenced Secrets' versions (never their data).
func gatewayHash(file []byte, secretVersions map[string]string) string {
	h := sha256.New()
	h.Write(file)
	names := make([]string, 0, len(secretVersions))
	for n := range secretVersions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "\x00secret/%s=%s", n, secretVersions[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func ownerRef(route *integrationsv1alpha1.PaymentRoute) metav1.OwnerReference {
	return *metav1.NewControllerRef(route, integrationsv1alpha1.GroupVersion.WithKind("PaymentRoute"))
}

func serviceType(route *integrationsv1alpha1.PaymentRoute) corev1.ServiceType {
	if t := route.Spec.Gateway.Service.Type; t != "" {
		return t
	}
	return corev1.ServiceTypeClusterIP
}

func servicePort(route *integrationsv1alpha1.PaymentRoute) int32 {
	if p := route.Spec.Gateway.Service.Port; p != 0 {
		return p
	}
	return integrationsv1alpha1.DefaultGatewayPort
}

// servicePorts are the gateway Service's ports: http, and metrics (the admin port: /metrics and
// the probes) on a ClusterIP Service. A NodePort or LoadBalancer Service would publish every
// port it has beyond the cluster, so there the metrics stay on the pods (scrape them with a
// PodMonitor); so they do when the route's own port is the admin port's number.
func servicePorts(route *integrationsv1alpha1.PaymentRoute, adminPort int32) []corev1.ServicePort {
	ports := []corev1.ServicePort{{
		Name: portNameHTTP, Protocol: corev1.ProtocolTCP,
		Port: servicePort(route), TargetPort: intstr.FromString(portNameHTTP),
	}}
	if serviceType(route) == corev1.ServiceTypeClusterIP && servicePort(route) != adminPort {
		ports = append(ports, corev1.ServicePort{
			Name: portNameMetrics, Protocol: corev1.ProtocolTCP,
			Port: adminPort, TargetPort: intstr.FromString(portNameAdmin),
		})
	}
	return ports
}

// serviceURL is the in-cluster URL of the route's gateway.
func serviceURL(route *integrationsv1alpha1.PaymentRoute) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", gatewayName(route.Name), route.Namespace, servicePort(route))
}

// portOf parses the port of a ":8080"-style listen address.
func portOf(addr string) (int32, error) {
	i := strings.LastIndexByte(addr, ':')
	p, err := strconv.ParseInt(addr[i+1:], 10, 32)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("no port in %q", addr)
	}
	return int32(p), nil
}
