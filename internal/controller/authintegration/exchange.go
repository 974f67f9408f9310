package authintegration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	excfg "github.com/insforge/integrations-operator/internal/tokenexchange/config"
	"github.com/insforge/integrations-operator/internal/tokenexchange/preset"
)

// Names and labels of the token exchange objects of an AuthIntegration.
const (
	// annotationExchangeHash on the pod template rolls the pods when the config changes.
	annotationExchangeHash = "integrations.insforge.dev/exchange-hash"
	// annotationSigningKey on the pod template names the signing key's fingerprint. The exchange
	// rereads its mounted key file, but the kubelet refreshes a Secret volume only at its sync
	// period (about a minute); a new key also rolls the pods, which start with it in seconds.
	annotationSigningKey = "integrations.insforge.dev/signing-key"
	labelName            = "app.kubernetes.io/name"
	labelInstance        = "app.kubernetes.io/instance"
	labelComponent       = "app.kubernetes.io/component"
	exchangeAppName      = "insforge-token-exchange"
	exchangeContainer    = "exchange"
	exchangeBinary       = "/exchange"
	portNameHTTP         = "http"
	portNameAdmin        = "admin"
	portNameMetrics      = "metrics"
	volumeConfig         = "config"
	volumeSigning        = "signing"
	// exchangeUID is the distroless "nonroot" user; the image runs as it too.
	exchangeUID = 65532
	// defaultServicePort is the exchange Service's port unless the spec sets one.
	defaultServicePort = 8080
)

// exchangeName names the exchange's Deployment, Service, ConfigMap and PDB.
func exchangeName(ai string) string { return kit.ChildName(ai, "-exchange") }

// signingSecretName names the Secret holding the key the exchange and the provider sign with.
func signingSecretName(ai string) string { return kit.ChildName(ai, "-signing") }

// ExchangePodSelector selects the pods of every token exchange the operator runs (what a
// PodMonitor for all of them selects).
func ExchangePodSelector() map[string]string {
	return map[string]string{labelName: exchangeAppName, kit.LabelManagedBy: kit.ManagerName}
}

func exchangeSelector(ai *integrationsv1alpha1.AuthIntegration) map[string]string {
	v := ai.Name
	if len(v) > 63 {
		v = exchangeName(ai.Name)
	}
	return map[string]string{labelName: exchangeAppName, labelInstance: v}
}

func exchangeLabels(ai *integrationsv1alpha1.AuthIntegration) map[string]string {
	l := exchangeSelector(ai)
	l[labelComponent] = "token-exchange"
	l[kit.LabelManagedBy] = kit.ManagerName
	return l
}

// presetFields maps the provider section to the exchange's preset fields.
func presetFields(ai *integrationsv1alpha1.AuthIntegration) preset.Fields {
	var f preset.Fields
	s := ai.Spec
	if s.Clerk != nil {
		f.ClerkFrontendAPI = s.Clerk.FrontendAPI
	}
	if s.Auth0 != nil {
		f.Auth0Domain, f.Auth0Audience = s.Auth0.Domain, s.Auth0.Audience
	}
	if s.WorkOS != nil {
		f.WorkOSClientID = s.WorkOS.ClientID
	}
	if s.Kinde != nil {
		f.KindeDomain = s.Kinde.Domain
	}
	if s.Stytch != nil {
		f.StytchProjectID, f.StytchEnvironment, f.StytchB2B = s.Stytch.ProjectID, string(s.Stytch.Environment), s.Stytch.B2B
		if f.StytchEnvironment == "" {
			f.StytchEnvironment = "live"
		}
	}
	if s.BetterAuth != nil {
		f.BetterAuthBaseURL, f.BetterAuthBasePath = s.BetterAuth.BaseURL, s.BetterAuth.BasePath
	}
	return f
}

// exchangeIssuer is the issuer the exchange accepts: the provider's preset, overridden field by
// field by exchange.verification.
func exchangeIssuer(ai *integrationsv1alpha1.AuthIntegration) (excfg.Issuer, error) {
	v := ai.Spec.Exchange.Verification
	if v == nil {
		v = &integrationsv1alpha1.TokenVerification{}
	}
	iss, err := preset.For(string(ai.Spec.Provider), presetFields(ai))
	if err != nil {
		// Without a preset the overrides must say everything (CEL requires issuers and jwksURL).
		if len(v.Issuers) == 0 || v.JWKSURL == "" {
			return excfg.Issuer{}, kit.Stall(integrationsv1alpha1.ReasonInvalidSpec, "exchange: %v", err)
		}
		iss = excfg.Issuer{Provider: string(ai.Spec.Provider), Algorithms: []string{"RS256"}}
	}
	// Kinde tokens carry an audience only when the app requests one for a registered API.
	if k := ai.Spec.Kinde; k != nil && k.Audience != "" {
		iss.Audiences = []string{k.Audience}
	}
	if len(v.Issuers) > 0 {
		iss.Issuers = v.Issuers
	}
	if v.JWKSURL != "" {
		iss.JWKSURL = v.JWKSURL
	}
	if len(v.Audiences) > 0 {
		iss.Audiences = v.Audiences
	}
	// Clerk's session tokens name the app's origin in azp, and Clerk advises checking it: the
	// browser origins the exchange serves are those origins.
	if ai.Spec.Provider == integrationsv1alpha1.ProviderClerk {
		for _, o := range ai.Spec.Exchange.AllowedOrigins {
			if o != "*" {
				iss.AuthorizedParties = append(iss.AuthorizedParties, o)
			}
		}
	}
	if len(v.AuthorizedParties) > 0 {
		iss.AuthorizedParties = v.AuthorizedParties
	}
	if len(v.Algorithms) > 0 {
		iss.Algorithms = v.Algorithms
	}
	if v.EmailClaim != "" {
		iss.EmailClaim = v.EmailClaim
	}
	return iss, nil
}

// exchangeConfig renders the exchange's configuration file.
func exchangeConfig(ai *integrationsv1alpha1.AuthIntegration) (excfg.Config, error) {
	iss, err := exchangeIssuer(ai)
	if err != nil {
		return excfg.Config{}, err
	}
	x := ai.Spec.Exchange
	lifetime := excfg.DefaultLifetime
	if x.TokenLifetime != nil {
		lifetime = x.TokenLifetime.Duration
	}
	cfg := excfg.Config{
		Listen:         excfg.DefaultListen,
		AdminListen:    excfg.DefaultAdminListen,
		SigningKeyFile: excfg.DefaultSigningKeyFile,
		Issuers:        []excfg.Issuer{iss},
		Token:          excfg.Token{Lifetime: excfg.D(lifetime), Audience: excfg.DefaultAudience},
		CORS:           excfg.CORS{AllowedOrigins: x.AllowedOrigins},
	}
	// The exchange refuses a config it cannot run with (an http key set URL outside the cluster,
	// say): refuse it here, as a stall, instead of deploying pods that exit.
	check := cfg.WithDefaults()
	if err := check.Validate(); err != nil {
		return excfg.Config{}, kit.Stall(integrationsv1alpha1.ReasonInvalidSpec, "exchange: %v", err)
	}
	return cfg, nil
}

// exchangeRender is what the exchange objects are rendered from.
type exchangeRender struct {
	AI *integrationsv1alpha1.AuthIntegration
	// Image is the manager's default image; spec.exchange.image overrides it.
	Image string
	// PullSecrets are the manager's image pull Secrets, used unless the spec names its own.
	PullSecrets []string
	// SigningFingerprint is the fingerprint of the key the exchange signs with.
	SigningFingerprint string
}

// exchangeObjects are the rendered exchange children and the config they carry.
type exchangeObjects struct {
	kit.Workload
	Config excfg.Config
}

// renderExchange renders the ConfigMap, Deployment, Service and PodDisruptionBudget of the
// exchange. It is pure: the same input gives byte-identical objects.
func renderExchange(in exchangeRender) (*exchangeObjects, error) {
	ai := in.AI
	cfg, err := exchangeConfig(ai)
	if err != nil {
		return nil, err
	}
	file, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(file)
	hash := hex.EncodeToString(sum[:])[:32]
	name := exchangeName(ai.Name)
	owner := *metav1.NewControllerRef(ai, integrationsv1alpha1.GroupVersion.WithKind("AuthIntegration"))
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ai.Namespace, Labels: exchangeLabels(ai),
			OwnerReferences: []metav1.OwnerReference{owner}}
	}
	x := ai.Spec.Exchange
	out := &exchangeObjects{Config: cfg}
	out.ConfigMap = &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(),
		Data:       map[string]string{excfg.ConfigMapKey: string(file)},
	}
	out.Deployment = &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(),
		Spec: appsv1.DeploymentSpec{
			// Unset, the count belongs to whoever scales the Deployment.
			Replicas: x.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: exchangeSelector(ai)},
			// Keep full capacity during a rollout: a missing replica is a failed sign-in.
			Strategy: kit.NoLossRollout(),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      kit.Merged(x.PodLabels, exchangeLabels(ai)),
					Annotations: kit.Merged(x.PodAnnotations, map[string]string{annotationExchangeHash: hash, annotationSigningKey: in.SigningFingerprint}),
				},
				Spec: exchangePodSpec(in, name),
			},
		},
	}
	out.Service = &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(),
		Spec: corev1.ServiceSpec{
			Type:     exchangeServiceType(ai),
			Selector: exchangeSelector(ai),
			Ports:    exchangeServicePorts(ai),
		},
	}
	out.PDB = kit.OnePodAtATime(meta(), exchangeSelector(ai))
	return out, nil
}

func exchangePodSpec(in exchangeRender, name string) corev1.PodSpec {
	x := in.AI.Spec.Exchange
	image := x.Image
	if image == "" {
		image = in.Image
	}
	probe := func(p string, period int32) *corev1.Probe { return kit.HTTPProbe(p, portNameAdmin, period) }
	grace := int64(excfg.DefaultShutdown.Seconds()) + 10
	spec := corev1.PodSpec{
		// The exchange never talks to the Kubernetes API.
		AutomountServiceAccountToken:  ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To(grace),
		SecurityContext:               kit.PodSecurity(exchangeUID),
		Containers: []corev1.Container{{
			Name:    exchangeContainer,
			Image:   image,
			Command: []string{exchangeBinary},
			Args:    []string{"--config", excfg.DefaultConfigPath},
			Ports: []corev1.ContainerPort{
				{Name: portNameHTTP, ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
				{Name: portNameAdmin, ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
			},
			Resources: kit.Resources(x.ManagedPods, corev1.ResourceRequirements{
				Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("25m"),
					corev1.ResourceMemory: resource.MustParse("32Mi"),
				},
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			}),
			LivenessProbe:   probe(excfg.PathHealthz, 10),
			ReadinessProbe:  probe(excfg.PathReadyz, 5),
			SecurityContext: kit.ContainerSecurity(),
			VolumeMounts: []corev1.VolumeMount{
				{Name: volumeConfig, MountPath: path.Dir(excfg.DefaultConfigPath), ReadOnly: true},
				{Name: volumeSigning, MountPath: path.Dir(excfg.DefaultSigningKeyFile), ReadOnly: true},
			},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		}},
		Volumes: []corev1.Volume{
			{Name: volumeConfig, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: name},
				Items:                []corev1.KeyToPath{{Key: excfg.ConfigMapKey, Path: path.Base(excfg.DefaultConfigPath)}},
			}}},
			// A volume, not an env var: the kubelet updates it in place, so a new signing key
			// reaches running pods without a rollout.
			{Name: volumeSigning, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  signingSecretName(in.AI.Name),
				Items:       []corev1.KeyToPath{{Key: excfg.SigningKeyName, Path: path.Base(excfg.DefaultSigningKeyFile)}},
				DefaultMode: ptr.To(int32(0o440)),
			}}},
		},
	}
	kit.Place(&spec, x.ManagedPods, in.PullSecrets)
	return spec
}

func exchangeServiceType(ai *integrationsv1alpha1.AuthIntegration) corev1.ServiceType {
	if t := ai.Spec.Exchange.Service.Type; t != "" {
		return t
	}
	return corev1.ServiceTypeClusterIP
}

func exchangeServicePort(ai *integrationsv1alpha1.AuthIntegration) int32 {
	if p := ai.Spec.Exchange.Service.Port; p != 0 {
		return p
	}
	return defaultServicePort
}

// exchangeServicePorts: http, and metrics on a ClusterIP Service (a NodePort or LoadBalancer
// Service would publish them beyond the cluster).
func exchangeServicePorts(ai *integrationsv1alpha1.AuthIntegration) []corev1.ServicePort {
	ports := []corev1.ServicePort{{
		Name: portNameHTTP, Protocol: corev1.ProtocolTCP,
		Port: exchangeServicePort(ai), TargetPort: intstr.FromString(portNameHTTP),
	}}
	if exchangeServiceType(ai) == corev1.ServiceTypeClusterIP && exchangeServicePort(ai) != 9090 {
		ports = append(ports, corev1.ServicePort{
			Name: portNameMetrics, Protocol: corev1.ProtocolTCP,
			Port: 9090, TargetPort: intstr.FromString(portNameAdmin),
		})
	}
	return ports
}

// exchangeURL is the in-cluster URL of the exchange.
func exchangeURL(ai *integrationsv1alpha1.AuthIntegration) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", exchangeName(ai.Name), ai.Namespace, exchangeServicePort(ai))
}
