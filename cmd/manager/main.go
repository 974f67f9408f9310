/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command manager runs the integrations operator: the AuthIntegration and PaymentRoute
// controllers, their metrics and health endpoints, and leader election.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	// Client auth plugins (OIDC, cloud providers) for running against real clusters.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/allowlist"
	"github.com/insforge/integrations-operator/internal/controller"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	// +kubebuilder:scaffold:imports
)

// flags are the manager's command-line settings.
type flags struct {
	metricsAddr     string
	metricsSecure   bool
	metricsCertPath string
	metricsCertName string
	metricsCertKey  string
	probeAddr       string
	leaderElect     bool
	leaderElectNS   string
	enableHTTP2     bool
	watchNamespaces string
	kubeAPIQPS      float64
	kubeAPIBurst    int
	controller      controller.Options
	zap             zap.Options
}

func parseFlags(args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", "0",
		"Address of the metrics endpoint: :8443 for HTTPS, :8080 for HTTP, 0 to disable it.")
	fs.BoolVar(&f.metricsSecure, "metrics-secure", true,
		"Serve metrics over HTTPS with authentication and authorization; false serves plain HTTP.")
	fs.StringVar(&f.metricsCertPath, "metrics-cert-path", "",
		"Directory with the metrics server certificate; empty generates a self-signed one.")
	fs.StringVar(&f.metricsCertName, "metrics-cert-name", "tls.crt", "Metrics server certificate file name.")
	fs.StringVar(&f.metricsCertKey, "metrics-cert-key", "tls.key", "Metrics server key file name.")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&f.leaderElect, "leader-elect", false,
		"Elect a leader so that only one manager replica reconciles at a time.")
	fs.StringVar(&f.leaderElectNS, "leader-election-namespace", "",
		"Namespace of the leader-election Lease; empty uses the pod's namespace (required out of cluster).")
	fs.BoolVar(&f.enableHTTP2, "enable-http2", false,
		"Serve metrics over HTTP/2 (off by default: HTTP/2 stream-cancellation and rapid-reset CVEs).")
	fs.StringVar(&f.watchNamespaces, "watch-namespaces", os.Getenv("WATCH_NAMESPACES"),
		"Comma-separated namespaces to watch; empty watches all. Defaults to $WATCH_NAMESPACES.")
	fs.StringVar(&f.controller.GatewayImage, "gateway-image", os.Getenv("GATEWAY_IMAGE"),
		"Image of the x402 gateway pods (the manager's own image holds /gateway). Defaults to $GATEWAY_IMAGE.")
	fs.BoolVar(&f.controller.AllowMockFacilitator, "allow-mock-facilitator", false,
		"Let PaymentRoutes use the mock facilitator, which moves no funds. For demos and tests only.")
	fs.Float64Var(&f.kubeAPIQPS, "kube-api-qps", kit.DefaultKubeAPIQPS,
		"Sustained requests per second the manager may send the Kubernetes API (client-side limit).")
	fs.IntVar(&f.kubeAPIBurst, "kube-api-burst", kit.DefaultKubeAPIBurst, "Requests the manager may send the Kubernetes API in a burst above --kube-api-qps.")
	fs.IntVar(&f.controller.AuthIntegrationConcurrency, "authintegration-concurrency", 4,
		"AuthIntegrations reconciled at once (most of a reconcile waits on a database).")
	fs.IntVar(&f.controller.PaymentRouteConcurrency, "paymentroute-concurrency", 4,
		"PaymentRoutes reconciled at once (most of a reconcile waits on a database or a chain node).")
	var images, egress, pullSecrets string
	fs.StringVar(&pullSecrets, "gateway-image-pull-secrets", os.Getenv("GATEWAY_IMAGE_PULL_SECRETS"),
		"Comma-separated image pull Secrets of gateway pods whose PaymentRoute names none (in the route's namespace). Defaults to $GATEWAY_IMAGE_PULL_SECRETS.")
	fs.StringVar(&images, "gateway-image-allow", os.Getenv("GATEWAY_IMAGE_ALLOW"),
		"Comma-separated images PaymentRoutes may set in spec.gateway.image: a repository (any tag or digest) or a path ending in / (every image under it). Empty refuses every override. Defaults to $GATEWAY_IMAGE_ALLOW.")
	fs.StringVar(&egress, "egress-allow", os.Getenv("EGRESS_ALLOW"),
		"Comma-separated origins (scheme://host[:port], host may start with *.) that PaymentRoutes' facilitator, OKX base and chain node URLs must have. Empty allows any. Defaults to $EGRESS_ALLOW.")
	// controller-runtime registers --kubeconfig on the global flag set; share its value.
	if kc := flag.CommandLine.Lookup("kubeconfig"); kc != nil {
		fs.Var(kc.Value, kc.Name, kc.Usage)
	}
	f.zap = zap.Options{Development: false}
	f.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return flags{}, err
	}
	if f.kubeAPIQPS <= 0 || f.kubeAPIBurst <= 0 || f.controller.AuthIntegrationConcurrency < 1 || f.controller.PaymentRouteConcurrency < 1 {
		return flags{}, errors.New("--kube-api-qps, --kube-api-burst and the concurrency flags must be positive")
	}
	f.controller.GatewayImages = allowlist.Images(splitList(images))
	f.controller.GatewayImagePullSecrets = splitList(pullSecrets)
	var err error
	if f.controller.Egress, err = allowlist.ParseOrigins(strings.Split(egress, ",")); err != nil {
		return flags{}, fmt.Errorf("--egress-allow: %w", err)
	}
	return f, nil
}

func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("adding client-go types to the scheme: %w", err)
	}
	if err := integrationsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("adding integrations.insforge.dev types to the scheme: %w", err)
	}
	// +kubebuilder:scaffold:scheme
	return scheme, nil
}

func main() {
	f, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))
	if err := run(f); err != nil {
		ctrl.Log.WithName("setup").Error(err, "Manager failed")
		os.Exit(1)
	}
}

func run(f flags) error {
	log := ctrl.Log.WithName("setup")
	scheme, err := newScheme()
	if err != nil {
		return err
	}

	var tlsOpts []func(*tls.Config)
	if !f.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   f.metricsAddr,
		SecureServing: f.metricsSecure,
		TLSOpts:       tlsOpts,
		CertDir:       f.metricsCertPath,
		CertName:      f.metricsCertName,
		KeyName:       f.metricsCertKey,
	}
	if f.metricsSecure {
		// Only callers allowed by RBAC (config/rbac/metrics_reader_role.yaml) may scrape.
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	ns := splitList(f.watchNamespaces)
	if len(ns) > 0 {
		log.Info("Watching namespaces", "namespaces", ns)
	}
	cacheOpts := controller.CacheOptions(ns)

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(f.kubeAPIQPS), f.kubeAPIBurst
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         cacheOpts,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        f.probeAddr,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              "integrations-operator.insforge.dev",
		LeaderElectionNamespace:       f.leaderElectNS,
		LeaderElectionReleaseOnCancel: true, // the process exits right after the manager stops
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}

	if err := controller.Setup(mgr, f.controller); err != nil {
		return fmt.Errorf("setting up the controllers: %w", err)
	}
	// +kubebuilder:scaffold:builder

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}

	log.Info("Starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}
