// Package paymentroute reconciles PaymentRoutes: each route runs an x402 gateway (ConfigMap,
// Deployment, Service, PodDisruptionBudget), its ledger schema is kept applied, its token's
// EIP-712 domain is checked on chain, and its settled totals are reported in status.
//
// One reconcile reads as: gather (the route's config, Secrets and token domain, gather.go) →
// decide (pure: stop, stall or run, decide.go) → act (migrate the ledger, apply the workload,
// read the totals, act.go) → status (pure, status.go) and events, written when they changed.
package paymentroute

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/allowlist"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/ledgerwatch"
	"github.com/insforge/integrations-operator/internal/pgpool"
	"github.com/insforge/integrations-operator/internal/tokendomain"
)

// Timing defaults.
const (
	// defaultResync re-reads totals and the gateway even when no notification arrived: the
	// safety net for lost notifications and realtime "off".
	defaultResync = time.Minute
	// defaultTotalsWriteInterval is the minimum time between two status writes that only move
	// totals, so a burst of payments costs about one write per interval per route.
	defaultTotalsWriteInterval = time.Second
	// concurrency: a slow database or chain node holds one worker, not every route.
	concurrency = 4
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps;services,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch

// Options configure the reconciler; cmd/manager fills them from flags.
type Options struct {
	// GatewayImage runs the gateway unless a route sets spec.gateway.image.
	GatewayImage string
	// AllowMockFacilitator lets routes use the mock facilitator (demos and tests only).
	AllowMockFacilitator bool
	// Concurrency is the number of routes reconciled at once (0: the default, 4).
	Concurrency int
	// GatewayImagePullSecrets are the image pull Secrets of gateway pods whose route names none.
	GatewayImagePullSecrets []string
	// GatewayImages are the images a route may set in spec.gateway.image besides GatewayImage;
	// empty refuses every override.
	GatewayImages allowlist.Images
	// Egress are the origins the URLs of a route (facilitator, chain node) may have; empty
	// allows any.
	Egress allowlist.Origins
	// Dial reaches chain nodes for the EIP-712 domain check; nil means JSON-RPC (tests pass the
	// simulated chain).
	Dial tokendomain.Dialer
}

// Reconciler runs an x402 gateway per PaymentRoute and reports its totals.
type Reconciler struct {
	Client client.Client
	// Live reads the API server directly; Secrets reads through it only after the cache missed
	// (see kit.SecretReader). Nil means Client.
	Live   client.Reader
	Events kit.Events
	Options
	// Clock drives the status write interval and the domain cache; tests replace it.
	Clock clock.PassiveClock
	// Resync is the periodic requeue; TotalsWriteInterval spaces totals-only status writes.
	Resync, TotalsWriteInterval time.Duration

	pools   *pgpool.Cache
	notices *ledgerwatch.Hub
	domains *tokendomain.Checker
	applied kit.AppliedRecords
	metrics *metrics

	mu sync.Mutex
	// lastTotalsWrite is when each route's status was last written (for coalescing).
	lastTotalsWrite map[types.NamespacedName]time.Time
	// gatewayAccess is the last check of each route's gateway role privileges.
	gatewayAccess map[types.NamespacedName]gatewayAccessCheck
}

// New returns a reconciler that takes ledger pools from pools and registers its metrics with
// reg (controller-runtime's metrics.Registry in the manager).
func New(c client.Client, rec events.EventRecorder, opts Options, pools *pgpool.Cache, reg prometheus.Registerer) (*Reconciler, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	clk := clock.RealClock{}
	return &Reconciler{
		Client:              c,
		Events:              kit.Events{Recorder: rec},
		Options:             opts,
		Clock:               clk,
		Resync:              defaultResync,
		TotalsWriteInterval: defaultTotalsWriteInterval,
		pools:               pools,
		notices:             ledgerwatch.New(kit.ParseObjectKey, emptyRoute),
		domains:             tokendomain.NewChecker(opts.Dial, clk),
		metrics:             m,
		lastTotalsWrite:     map[types.NamespacedName]time.Time{},
		gatewayAccess:       map[types.NamespacedName]gatewayAccessCheck{},
	}, nil
}

// Setup creates the reconciler and registers it with the manager.
func Setup(mgr ctrl.Manager, opts Options, pools *pgpool.Cache) (*Reconciler, error) {
	r, err := New(mgr.GetClient(), mgr.GetEventRecorder("paymentroute-controller"), opts, pools, crmetrics.Registry)
	if err != nil {
		return nil, err
	}
	r.Live = mgr.GetAPIReader()
	if err := r.SetupWithManager(context.Background(), mgr); err != nil {
		return nil, fmt.Errorf("setting up the PaymentRoute controller: %w", err)
	}
	return r, nil
}

// emptyRoute is the object a ledger notification's reconcile request carries.
func emptyRoute(key types.NamespacedName) client.Object {
	return &v1alpha1.PaymentRoute{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
}

// SetupWithManager watches routes, their children and Secrets, adds the ledger listeners to the
// manager and feeds their notifications into the workqueue.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := secretRefs.Setup(ctx, mgr, &v1alpha1.PaymentRoute{}); err != nil {
		return err
	}
	if err := mgr.Add(r.notices); err != nil {
		return fmt.Errorf("adding the ledger listeners: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.PaymentRoute{}, kit.SpecChanges()).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&policyv1.PodDisruptionBudget{})
	return secretRefs.Watch(b, r.Client).
		WatchesRawSource(source.Channel(r.notices.Events(), &handler.EnqueueRequestForObject{})).
		Named("paymentroute").
		WithOptions(kit.Options(cmp.Or(r.Concurrency, concurrency))).
		Complete(r)
}

// Reconcile brings one route's gateway to its spec and reports in status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var route v1alpha1.PaymentRoute
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

	facts := r.gather(ctx, &route)
	p := decide(&route, facts, r.Options)
	obs := r.act(ctx, &route, p)
	// Kubernetes API failures (conflicts, timeouts) are retried without touching status.
	if obs.apiErr != nil {
		return ctrl.Result{}, obs.apiErr
	}

	base := route.DeepCopy()
	route.Status = computeStatus(&route, obs)
	r.emitEvents(&route, &base.Status, obs)
	r.metrics.routes.Observe(req.NamespacedName, route.Status.Conditions)
	wait, err := r.writeStatus(ctx, base, &route)
	if err != nil {
		return ctrl.Result{}, err
	}
	if obs.transient != nil {
		return ctrl.Result{}, obs.transient
	}
	// Each route has its own slot in the resync interval (see kit.UntilSlot): routes created or
	// restarted together do not resync together every interval.
	after := kit.UntilSlot(r.Clock.Now(), r.Resync, route.UID)
	if wait > 0 && wait < after {
		after = wait
	}
	if obs.retryAfter > 0 && obs.retryAfter < after {
		after = obs.retryAfter
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// poolUser names a route in the shared pool cache.
func poolUser(key types.NamespacedName) string { return "paymentroute/" + key.String() }

func (r *Reconciler) forget(key types.NamespacedName) {
	r.notices.Forget(key) // before the pool goes: the listener holds one of its connections
	r.pools.Release(poolUser(key))
	r.applied.Forget(key)
	r.metrics.routes.Observe(key, nil)
	r.mu.Lock()
	delete(r.lastTotalsWrite, key)
	delete(r.gatewayAccess, key)
	r.mu.Unlock()
}
