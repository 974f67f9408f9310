package controller

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/insforge/integrations-operator/internal/allowlist"
	"github.com/insforge/integrations-operator/internal/controller/kit"

	"github.com/insforge/integrations-operator/internal/controller/authintegration"
	"github.com/insforge/integrations-operator/internal/controller/paymentroute"
	"github.com/insforge/integrations-operator/internal/pgpool"
)

// Options configure the reconcilers; cmd/manager fills them from flags.
type Options struct {
	// GatewayImage is the image the PaymentRoute reconciler runs gateways with, unless a route
	// overrides it.
	GatewayImage string
	// AllowMockFacilitator lets routes use the mock facilitator (demos and tests only).
	AllowMockFacilitator bool
	// AuthIntegrationConcurrency and PaymentRouteConcurrency are how many resources of each kind
	// are reconciled at once (0: the kind's default, 4).
	AuthIntegrationConcurrency, PaymentRouteConcurrency int
	// GatewayImagePullSecrets are the gateway pods' image pull Secrets unless a route names its own.
	GatewayImagePullSecrets []string
	// GatewayImages are the images routes may override GatewayImage with (none by default).
	GatewayImages allowlist.Images
	// Egress are the origins routes' URLs may have (any by default).
	Egress allowlist.Origins
}

// CacheOptions is the manager's cache: every namespace, or only those given, and of Secrets only
// the opted-in ones (kit.SecretCache), so that the cluster's other Secrets are neither watched
// nor held in memory.
func CacheOptions(namespaces []string) cache.Options {
	opts := cache.Options{ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: kit.SecretCache()}}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = make(map[string]cache.Config, len(namespaces))
		for _, n := range namespaces {
			opts.DefaultNamespaces[n] = cache.Config{}
		}
	}
	return opts
}

// Setup registers every reconciler of this operator with the manager. They share one cache of
// database connection pools, closed when the manager stops.
func Setup(mgr ctrl.Manager, opts Options) error {
	pools := pgpool.NewCache(nil)
	if err := mgr.Add(manager.RunnableFunc(pools.Run)); err != nil {
		return fmt.Errorf("adding the pool closer: %w", err)
	}
	auth := authintegration.Options{Concurrency: opts.AuthIntegrationConcurrency, Egress: opts.Egress,
		Exchange: authintegration.ExchangeOptions{Image: opts.GatewayImage, Images: opts.GatewayImages, PullSecrets: opts.GatewayImagePullSecrets}}
	if _, err := authintegration.Setup(mgr, pools, auth); err != nil {
		return err
	}
	route := paymentroute.Options{GatewayImage: opts.GatewayImage, AllowMockFacilitator: opts.AllowMockFacilitator,
		GatewayImages: opts.GatewayImages, Egress: opts.Egress, GatewayImagePullSecrets: opts.GatewayImagePullSecrets,
		Concurrency: opts.PaymentRouteConcurrency}
	if _, err := paymentroute.Setup(mgr, route, pools); err != nil {
		return err
	}
	// +kubebuilder:scaffold:builder
	return nil
}

// The permissions every reconciler of this operator shares; each reconciler declares its own
// beside its code.
// +kubebuilder:rbac:groups=integrations.insforge.dev,resources=authintegrations;paymentroutes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=integrations.insforge.dev,resources=authintegrations/status;paymentroutes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=integrations.insforge.dev,resources=authintegrations/finalizers;paymentroutes/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
