package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
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

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
	"github.com/insforge/integrations-operator/internal/rls"
)

// Names this controller stamps on what it creates.
const (
	managerName    = "integrations-operator"
	labelManagedBy = "app.kubernetes.io/managed-by"
	// authSecretIndex indexes AuthIntegrations by every Secret name they reference.
	authSecretIndex = ".spec.authSecretRefs"
	// defaultDeletionTimeout bounds how long a Delete teardown is retried before the finalizer is
	// removed anyway, so that an unreachable database never blocks deletion forever.
	defaultDeletionTimeout = 10 * time.Minute
	defaultConcurrency     = 4
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update

// AuthIntegrationReconciler keeps an InsForge database's row-level security and the JWT secret in
// line with an AuthIntegration.
type AuthIntegrationReconciler struct {
	Client   client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// Pools shares connection pools between integrations on the same database.
	Pools *rls.PoolCache
	// Clock drives rotation, drift-check and deletion times; tests replace it.
	Clock clock.PassiveClock
	// NewSecret generates JWT secrets; tests replace it.
	NewSecret func() (string, error)
	// DeletionTimeout bounds the retries of a Delete teardown.
	DeletionTimeout time.Duration
	// MaxConcurrentReconciles is the number of integrations reconciled at once (default 4): most
	// of a reconcile is waiting for the database.
	MaxConcurrentReconciles int

	metrics *authMetrics
}

// NewAuthIntegrationReconciler returns a reconciler that registers its metrics with reg
// (controller-runtime's metrics.Registry in the manager).
func NewAuthIntegrationReconciler(c client.Client, scheme *runtime.Scheme, rec events.EventRecorder, pools *rls.PoolCache, reg prometheus.Registerer) (*AuthIntegrationReconciler, error) {
	m, err := newAuthMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &AuthIntegrationReconciler{
		Client:                  c,
		Scheme:                  scheme,
		Recorder:                rec,
		Pools:                   pools,
		Clock:                   clock.RealClock{},
		NewSecret:               jwtsecret.NewSecret,
		DeletionTimeout:         defaultDeletionTimeout,
		MaxConcurrentReconciles: defaultConcurrency,
		metrics:                 m,
	}, nil
}

// SetupWithManager watches AuthIntegrations and the Secrets they reference.
func (r *AuthIntegrationReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, &integrationsv1alpha1.AuthIntegration{}, authSecretIndex, func(o client.Object) []string {
		return referencedSecrets(o.(*integrationsv1alpha1.AuthIntegration))
	})
	if err != nil {
		return fmt.Errorf("indexing AuthIntegrations by Secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		// Status writes do not change the generation, so they do not trigger a reconcile; the
		// requestedAt annotation does.
		For(&integrationsv1alpha1.AuthIntegration{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.integrationsForSecret)).
		Named("authintegration").
		WithOptions(controller.Options{
			MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1),
			// Database errors back off from 1s to 5m instead of controller-runtime's 5ms start.
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute),
		}).
		Complete(r)
}

// integrationsForSecret maps a Secret to the integrations that reference it.
func (r *AuthIntegrationReconciler) integrationsForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var list integrationsv1alpha1.AuthIntegrationList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{authSecretIndex: o.GetName()}); err != nil {
		logf.FromContext(ctx).Error(err, "Listing AuthIntegrations for a Secret", "secret", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, len(list.Items))
	for i, ai := range list.Items {
		reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ai)}
	}
	return reqs
}

// Reconcile brings one AuthIntegration's database and Secrets to its spec and reports in status.
func (r *AuthIntegrationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ai integrationsv1alpha1.AuthIntegration
	if err := r.Client.Get(ctx, req.NamespacedName, &ai); err != nil {
		if apierrors.IsNotFound(err) {
			// Gone without a finalizer (Retain): nothing to do in the database.
			r.Pools.Release(req.String())
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading the AuthIntegration: %w", err)
	}
	if !ai.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &ai)
	}
	if err := r.syncFinalizer(ctx, &ai); err != nil {
		return ctrl.Result{}, err
	}
	return r.reconcileLive(ctx, &ai)
}

func (r *AuthIntegrationReconciler) reconcileLive(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration) (ctrl.Result, error) {
	obs := observation{now: r.Clock.Now()}
	obs.jwt, obs.jwtErr = r.reconcileJWT(ctx, ai, obs.now)
	if obs.jwtErr == nil {
		_, obs.exportsErr = r.reconcileExports(ctx, ai, obs.jwt)
	}
	obs.db, obs.dbErr = r.reconcileDatabase(ctx, ai)
	// Kubernetes API failures (conflicts, timeouts) are retried without touching status.
	for _, err := range []error{obs.jwtErr, obs.exportsErr} {
		if err != nil && apiError(err) {
			r.metrics.outcomes.WithLabelValues(outcomeError).Inc()
			return ctrl.Result{}, err
		}
	}

	base := ai.DeepCopy()
	st, v := computeStatus(ai, obs)
	ai.Status = *st
	r.eventsFor(ai, &base.Status, obs, v)
	if v.driftFound {
		r.metrics.drift.Inc()
	}
	r.metrics.outcomes.WithLabelValues(v.outcome).Inc()
	if err := r.patchStatus(ctx, base, ai, driftInterval(ai)); err != nil {
		return ctrl.Result{}, err
	}
	if v.transient != nil {
		// Returning the error makes the rate limiter back off exponentially.
		return ctrl.Result{}, v.transient
	}
	after := driftInterval(ai)
	if d := obs.jwt.requeueAfter; d > 0 && d < after {
		after = d
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// patchStatus writes the status when it changed. lastDriftCheckTime alone is refreshed only after
// half a drift interval, so that event-triggered reconciles do not each write status.
func (r *AuthIntegrationReconciler) patchStatus(ctx context.Context, base, ai *integrationsv1alpha1.AuthIntegration, interval time.Duration) error {
	old, next := base.Status.DeepCopy(), ai.Status.DeepCopy()
	if old.LastDriftCheckTime != nil && next.LastDriftCheckTime != nil &&
		next.LastDriftCheckTime.Sub(old.LastDriftCheckTime.Time) < interval/2 {
		next.LastDriftCheckTime = old.LastDriftCheckTime
	}
	if equality.Semantic.DeepEqual(old, next) {
		return nil
	}
	ai.Status = *next
	if err := r.Client.Status().Patch(ctx, ai, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("patching the status: %w", err)
	}
	return nil
}

// event records a Kubernetes event; notes name objects and fingerprints, never values.
func (r *AuthIntegrationReconciler) event(ai *integrationsv1alpha1.AuthIntegration, typ, reason, action, format string, args ...any) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(ai, nil, typ, reason, action, "%s", clip(fmt.Sprintf(format, args...)))
}

// newSecret is the generator handed to jwtsecret.Decide.
func (r *AuthIntegrationReconciler) newSecret() (string, error) {
	if r.NewSecret == nil {
		return jwtsecret.NewSecret()
	}
	return r.NewSecret()
}

// apiError reports whether err came from the Kubernetes API (not a stall the user must fix).
func apiError(err error) bool {
	var st *stalledError
	if errors.As(err, &st) {
		return false
	}
	return apierrors.ReasonForError(err) != ""
}
