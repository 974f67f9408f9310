package controller

import (
	ctrl "sigs.k8s.io/controller-runtime"
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
	_ = mgr
	_ = opts
	// +kubebuilder:scaffold:builder
	return nil
}

// The permissions every reconciler of this operator shares; each reconciler declares its own
// beside its code.
// +kubebuilder:rbac:groups=integrations.insforge.dev,resources=authintegrations;paymentroutes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=integrations.insforge.dev,resources=authintegrations/status;paymentroutes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=integrations.insforge.dev,resources=authintegrations/finalizers;paymentroutes/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
