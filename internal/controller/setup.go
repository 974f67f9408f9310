package controller

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/insforge/integrations-operator/internal/rls"
)

// Options configure the reconcilers; cmd/manager fills them from flags.
type Options struct {
	// GatewayImage is the image the PaymentRoute reconciler runs gateways with, unless a route
	// overrides it.
	GatewayImage string
	// AllowMockFacilitator lets routes use the mock facilitator (demos and tests only).
	AllowMockFacilitator bool
}

// Setup registers every reconciler of this operator with the manager. Each kind's reconciler
// is added here when it exists; none is registered before it really works.
func Setup(mgr ctrl.Manager, opts Options) error {
	if _, err := SetupAuthIntegration(mgr); err != nil {
		return err
	}
	if _, err := SetupPaymentRoute(mgr, opts, nil); err != nil {
		return err
	}
	// +kubebuilder:scaffold:builder
	return nil
}

// SetupAuthIntegration registers the AuthIntegration reconciler and returns it (tests adjust its
// clock). Its connection pools are closed when the manager stops.
func SetupAuthIntegration(mgr ctrl.Manager) (*AuthIntegrationReconciler, error) {
	pools := rls.NewPoolCache(nil)
	r, err := NewAuthIntegrationReconciler(mgr.GetClient(), mgr.GetScheme(),
		mgr.GetEventRecorder("authintegration-controller"), pools, metrics.Registry)
	if err != nil {
		return nil, err
	}
	if err := r.SetupWithManager(context.Background(), mgr); err != nil {
		return nil, fmt.Errorf("setting up the AuthIntegration controller: %w", err)
	}
	closePools := manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		pools.Close()
		return nil
	})
	if err := mgr.Add(closePools); err != nil {
		return nil, fmt.Errorf("adding the pool closer: %w", err)
	}
	return r, nil
}

// SetupPaymentRoute registers the PaymentRoute reconciler with its ledger listeners and returns
// it. dial reaches chain nodes for the EIP-712 domain check; nil means JSON-RPC (tests pass the
// simulated chain).
func SetupPaymentRoute(mgr ctrl.Manager, opts Options, dial ChainDialer) (*PaymentRouteReconciler, error) {
	r, err := NewPaymentRouteReconciler(mgr.GetClient(), mgr.GetEventRecorder("paymentroute-controller"), opts, dial, metrics.Registry)
	if err != nil {
		return nil, err
	}
	if err := r.SetupWithManager(context.Background(), mgr); err != nil {
		return nil, fmt.Errorf("setting up the PaymentRoute controller: %w", err)
	}
	return r, nil
}

// The permissions every reconciler of this operator shares; each reconciler declares its own
// beside its code.
// +kubebuilder:rbac:groups=integrations.insforge.dev,resources=authintegrations;paymentroutes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=integrations.insforge.dev,resources=authintegrations/status;paymentroutes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=integrations.insforge.dev,resources=authintegrations/finalizers;paymentroutes/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
