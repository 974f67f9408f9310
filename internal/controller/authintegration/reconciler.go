// Package authintegration reconciles AuthIntegrations: an InsForge database's row-level security
// (the requesting_user_id() helper, TEXT user id columns, policies, grants) and the JWT secret
// (generated and rotated, or adopted) with its exports.
//
// One reconcile reads as: gather (the Secrets it reads and writes, gather.go) → decide (pure:
// the JWT secret's next state and the exports' contents, decide.go) → act (write the Secrets,
// bring the database to the spec and verify isolation, act.go) → status (pure, status.go) and
// events, written when they changed. Deletion is delete.go.
package authintegration

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/allowlist"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
	"github.com/insforge/integrations-operator/internal/pgpool"
)

const (
	// defaultDeletionTimeout bounds how long a Delete teardown is retried before the finalizer
	// is removed anyway, so that an unreachable database never blocks deletion forever.
	defaultDeletionTimeout = 10 * time.Minute
	defaultConcurrency     = 4
	// lastDriftCheckRefresh is how stale status.lastDriftCheckTime may get before a drift check
	// that changes nothing else writes it: a write per check would be a status write per
	// integration per interval (1,000 integrations: 3 a second at the default 5 minutes).
	lastDriftCheckRefresh = 24 * time.Hour
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps;services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;patch

// Reconciler keeps an InsForge database's row-level security and the JWT secret in line with an
// AuthIntegration.
type Reconciler struct {
	Client client.Client
	// Live reads the API server directly; Secrets reads through it only after the cache missed
	// (see kit.SecretReader). Nil means Client.
	Live   client.Reader
	Scheme *runtime.Scheme
	Events kit.Events
	// Clock drives rotation, drift-check and deletion times; tests replace it.
	Clock clock.PassiveClock
	// NewSecret generates JWT secrets; tests replace it.
	NewSecret func() (string, error)
	// DeletionTimeout bounds the retries of a Delete teardown.
	DeletionTimeout time.Duration
	// MaxConcurrentReconciles is the number of integrations reconciled at once (default 4):
	// most of a reconcile is waiting for the database.
	MaxConcurrentReconciles int
	// Pools shares connection pools between the resources on one database.
	Pools *pgpool.Cache
	// Exchange is how token exchanges are run.
	Exchange ExchangeOptions
	// Egress are the origins the provider and key set URLs may have (any when empty).
	Egress allowlist.Origins
	// HTTP calls the providers' APIs (Clerk, Auth0); nil means a client with a 30 s timeout
	// that follows no redirect (credentials stay with the origin they were meant for).
	HTTP *http.Client

	metrics *metrics
	// applied remembers the exchange objects last applied per integration.
	applied kit.AppliedRecords
	// auth0 keeps Auth0 Management API clients (and their tokens) between reconciles.
	auth0 auth0Clients
}

// New returns a reconciler that takes database pools from pools and registers its metrics with
// reg (controller-runtime's metrics.Registry in the manager).
func New(c client.Client, scheme *runtime.Scheme, rec events.EventRecorder, pools *pgpool.Cache, reg prometheus.Registerer) (*Reconciler, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Reconciler{
		Client:                  c,
		Scheme:                  scheme,
		Events:                  kit.Events{Recorder: rec},
		Pools:                   pools,
		Clock:                   clock.RealClock{},
		NewSecret:               jwtsecret.NewSecret,
		DeletionTimeout:         defaultDeletionTimeout,
		MaxConcurrentReconciles: defaultConcurrency,
		metrics:                 m,
	}, nil
}

// Options configure the reconciler from the manager's flags.
type Options struct {
	// Concurrency > 0 overrides the default number of integrations reconciled at once.
	Concurrency int
	Exchange    ExchangeOptions
	Egress      allowlist.Origins
}

// Setup creates the reconciler and registers it with the manager.
func Setup(mgr ctrl.Manager, pools *pgpool.Cache, opts Options) (*Reconciler, error) {
	r, err := New(mgr.GetClient(), mgr.GetScheme(), mgr.GetEventRecorder("authintegration-controller"), pools, crmetrics.Registry)
	if err != nil {
		return nil, err
	}
	if opts.Concurrency > 0 {
		r.MaxConcurrentReconciles = opts.Concurrency
	}
	r.Exchange, r.Egress = opts.Exchange, opts.Egress
	r.Live = mgr.GetAPIReader()
	if err := r.SetupWithManager(context.Background(), mgr); err != nil {
		return nil, fmt.Errorf("setting up the AuthIntegration controller: %w", err)
	}
	return r, nil
}

// SetupWithManager watches AuthIntegrations and the Secrets they reference.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := secretRefs.Setup(ctx, mgr, &v1alpha1.AuthIntegration{}); err != nil {
		return err
	}
	if err := workloadRefs.Setup(ctx, mgr, &v1alpha1.AuthIntegration{}); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).For(&v1alpha1.AuthIntegration{}, kit.SpecChanges()).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&policyv1.PodDisruptionBudget{})
	b = workloadRefs.Watch(b, r.Client)
	return secretRefs.Watch(b, r.Client).
		Named("authintegration").
		WithOptions(kit.Options(r.MaxConcurrentReconciles)).
		Complete(r)
}

// ExchangeOptions say how token exchanges run.
type ExchangeOptions struct {
	// Image is the manager's own image (it holds /exchange).
	Image string
	// Images are the images spec.exchange.image may name besides Image.
	Images allowlist.Images
	// PullSecrets are the exchange pods' image pull Secrets unless the spec names its own.
	PullSecrets []string
}

// live reads the API server directly (nil Live: the client).
func (r *Reconciler) live() client.Reader {
	if r.Live == nil {
		return r.Client
	}
	return r.Live
}

// secrets reads Secrets under the opt-in rule.
func (r *Reconciler) secrets() kit.SecretReader {
	return kit.SecretReader{Client: r.Client, Live: r.Live}
}

// Reconcile brings one AuthIntegration's database and Secrets to its spec and reports in status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ai v1alpha1.AuthIntegration
	if err := r.Client.Get(ctx, req.NamespacedName, &ai); err != nil {
		if apierrors.IsNotFound(err) {
			// Gone without a finalizer (Retain): nothing to do in the database.
			r.metrics.integrations.Observe(req.NamespacedName, nil)
			r.Pools.Release(poolUser(req.NamespacedName))
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading the AuthIntegration: %w", err)
	}
	if !ai.DeletionTimestamp.IsZero() {
		r.metrics.integrations.Observe(req.NamespacedName, nil)
		return r.finalize(ctx, &ai)
	}
	if err := r.syncFinalizer(ctx, &ai); err != nil {
		return ctrl.Result{}, err
	}

	now := r.Clock.Now()
	f := r.gather(ctx, &ai)
	p := decide(&ai, f, now, r.newSecret, r.Scheme, sideEnv{exchange: r.Exchange, newSyncer: r.newSyncer})
	obs := r.act(ctx, &ai, p)
	// Kubernetes API failures (conflicts, timeouts) are retried without touching status.
	for _, err := range []error{obs.jwtErr, obs.exportsErr} {
		if kit.IsAPIError(err) {
			r.metrics.outcomes.WithLabelValues(outcomeError).Inc()
			return ctrl.Result{}, err
		}
	}

	base := ai.DeepCopy()
	st, v := computeStatus(&ai, obs)
	ai.Status = *st
	r.emitEvents(&ai, &base.Status, obs, v)
	if v.driftFound {
		r.metrics.drift.Inc()
	}
	r.metrics.outcomes.WithLabelValues(v.outcome).Inc()
	r.metrics.integrations.Observe(req.NamespacedName, ai.Status.Conditions)
	if err := r.writeStatus(ctx, base, &ai, driftInterval(&ai)); err != nil {
		return ctrl.Result{}, err
	}
	if v.transient != nil {
		// Returning the error makes the rate limiter back off exponentially.
		return ctrl.Result{}, v.transient
	}
	// Each integration's drift check has its own slot in the interval (see kit.UntilSlot).
	after := kit.UntilSlot(r.Clock.Now(), driftInterval(&ai), ai.UID)
	for _, d := range []time.Duration{obs.jwt.requeueAfter, v.requeue} {
		if d > 0 && d < after {
			after = d
		}
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// writeStatus writes the status when it changed. lastDriftCheckTime alone is refreshed only after
// half a drift interval and at least a day (lastDriftCheckRefresh), so that neither
// event-triggered reconciles nor the periodic drift checks of a steady fleet write status.
func (r *Reconciler) writeStatus(ctx context.Context, base, ai *v1alpha1.AuthIntegration, interval time.Duration) error {
	old, next := base.Status.DeepCopy(), ai.Status.DeepCopy()
	if old.LastDriftCheckTime != nil && next.LastDriftCheckTime != nil &&
		next.LastDriftCheckTime.Sub(old.LastDriftCheckTime.Time) < max(interval/2, lastDriftCheckRefresh) {
		next.LastDriftCheckTime = old.LastDriftCheckTime
	}
	if equality.Semantic.DeepEqual(old, next) {
		return nil
	}
	ai.Status = *next
	return kit.PatchStatus(ctx, r.Client, base, ai)
}

// newSecret is the generator handed to jwtsecret.Decide.
func (r *Reconciler) newSecret() (string, error) {
	if r.NewSecret == nil {
		return jwtsecret.NewSecret()
	}
	return r.NewSecret()
}

// poolUser names an integration in the shared pool cache.
func poolUser(key types.NamespacedName) string { return "authintegration/" + key.String() }
