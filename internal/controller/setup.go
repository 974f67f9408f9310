package controller

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

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
}

// Setup registers every reconciler of this operator with the manager. They share one cache of
// database connection pools, closed when the manager stops.
func Setup(mgr ctrl.Manager, opts Options) error {
	pools := pgpool.NewCache(nil)
	if err := mgr.Add(manager.RunnableFunc(pools.Run)); err != nil {
		return fmt.Errorf("adding the pool closer: %w", err)
	}
	if _, err := authintegration.Setup(mgr, pools); err != nil {
		return err
	}
	route := paymentroute.Options{GatewayImage: opts.GatewayImage, AllowMockFacilitator: opts.AllowMockFacilitator}
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
