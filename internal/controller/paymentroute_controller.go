package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
)

// Timing defaults of the PaymentRoute reconciler.
const (
	// defaultRouteResync re-reads totals and the gateway even when no notification arrived: the
	// safety net for lost notifications and realtime "off".
	defaultRouteResync = time.Minute
	// defaultTotalsWriteInterval is the minimum time between two status writes that only move
	// totals, so a burst of payments costs about one write per interval per route.
	defaultTotalsWriteInterval = time.Second
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps;services,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch

// PaymentRouteReconciler runs an x402 gateway per PaymentRoute, keeps its ledger schema applied,
// checks the token's EIP-712 domain and reports settled totals in status.
type PaymentRouteReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// GatewayImage runs the gateway unless a route sets spec.gateway.image.
	GatewayImage string
	// AllowMockFacilitator lets routes use the mock facilitator, with a warning.
	AllowMockFacilitator bool
	// Clock drives the status write interval and the domain cache; tests replace it.
	Clock clock.PassiveClock
	// Resync is the periodic requeue; TotalsWriteInterval spaces totals-only status writes.
	Resync, TotalsWriteInterval time.Duration

	ledgers *ledgerHub
	domains *domainChecker
	metrics *routeMetrics

	mu sync.Mutex
	// lastTotalsWrite is when each route's status was last written (for coalescing).
	lastTotalsWrite map[types.NamespacedName]time.Time
	// applied is what was last applied per route (to skip no-op applies).
	applied map[types.NamespacedName]appliedRecord
}

// NewPaymentRouteReconciler returns a reconciler that registers its metrics with reg; dial
// reaches chain nodes (nil: JSON-RPC).
func NewPaymentRouteReconciler(c client.Client, rec events.EventRecorder, opts Options, dial ChainDialer, reg prometheus.Registerer) (*PaymentRouteReconciler, error) {
	m, err := newRouteMetrics(reg)
	if err != nil {
		return nil, err
	}
	clk := clock.RealClock{}
	return &PaymentRouteReconciler{
		Client:               c,
		Recorder:             rec,
		GatewayImage:         opts.GatewayImage,
		AllowMockFacilitator: opts.AllowMockFacilitator,
		Clock:                clk,
		Resync:               defaultRouteResync,
		TotalsWriteInterval:  defaultTotalsWriteInterval,
		ledgers:              newLedgerHub(),
		domains:              newDomainChecker(dial, clk),
		metrics:              m,
		lastTotalsWrite:      map[types.NamespacedName]time.Time{},
		applied:              map[types.NamespacedName]appliedRecord{},
	}, nil
}

// SetupWithManager watches routes, their children and Secrets, adds the ledger hub (listeners)
// to the manager and feeds its notifications into the workqueue.
func (r *PaymentRouteReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, &integrationsv1alpha1.PaymentRoute{}, routeSecretIndex, func(o client.Object) []string {
		return routeSecretNames(o.(*integrationsv1alpha1.PaymentRoute))
	})
	if err != nil {
		return fmt.Errorf("indexing PaymentRoutes by Secret: %w", err)
	}
	if err := mgr.Add(r.ledgers); err != nil {
		return fmt.Errorf("adding the ledger listeners: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		// Status writes do not change the generation, so they do not trigger a reconcile.
		For(&integrationsv1alpha1.PaymentRoute{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.routesForSecret)).
		WatchesRawSource(source.Channel(r.ledgers.events, &handler.EnqueueRequestForObject{})).
		Named("paymentroute").
		WithOptions(controller.Options{
			// A slow database or chain node holds one worker, not every route.
			MaxConcurrentReconciles: 4,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute),
		}).
		Complete(r)
}

// routesForSecret maps a Secret to the routes that reference it.
func (r *PaymentRouteReconciler) routesForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var list integrationsv1alpha1.PaymentRouteList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{routeSecretIndex: o.GetName()}); err != nil {
		logf.FromContext(ctx).Error(err, "Listing PaymentRoutes for a Secret", "secret", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return reqs
}

// Reconcile brings one route's gateway to its spec and reports in status.
func (r *PaymentRouteReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var route integrationsv1alpha1.PaymentRoute
	if err := r.Client.Get(ctx, req.NamespacedName, &route); err != nil {
		if apierrors.IsNotFound(err) {
			// The children go with their owner references; only in-memory state remains.
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading the PaymentRoute: %w", err)
	}
	if !route.DeletionTimestamp.IsZero() {
		r.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	obs := r.observe(ctx, &route)
	// Kubernetes API failures (conflicts, timeouts) are retried without touching status.
	if obs.apiErr != nil {
		return ctrl.Result{}, obs.apiErr
	}
	base := route.DeepCopy()
	computeRouteStatus(&route, obs)
	r.routeEvents(&route, &base.Status, obs)
	r.metrics.observe(req.NamespacedName, route.Status.Conditions)
	wait, err := r.writeStatus(ctx, base, &route)
	if err != nil {
		return ctrl.Result{}, err
	}
	if obs.transient != nil {
		return ctrl.Result{}, obs.transient
	}
	after := r.Resync
	if wait > 0 && wait < after {
		after = wait
	}
	if obs.retryAfter > 0 && obs.retryAfter < after {
		after = obs.retryAfter
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

func (r *PaymentRouteReconciler) forget(key types.NamespacedName) {
	r.ledgers.Release(key)
	r.metrics.observe(key, nil)
	r.mu.Lock()
	delete(r.lastTotalsWrite, key)
	delete(r.applied, key)
	r.mu.Unlock()
}

// isAPIError reports whether err came from the Kubernetes API (retry, do not report).
func isAPIError(err error) bool {
	var st *stalledError
	return err != nil && !errors.As(err, &st) && apierrors.ReasonForError(err) != ""
}
