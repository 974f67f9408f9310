package paymentroute

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/pgpool"
)

// ledgerCallTimeout bounds each ledger call, so an unreachable database holds a worker for a
// bounded time instead of blocking every route behind it.
const ledgerCallTimeout = 20 * time.Second

// observation is the plan and what carrying it out found; status is computed from it.
type observation struct {
	plan

	ledgerReady   bool
	ledgerVersion int
	ledgerChanged bool

	deployment *appsv1.Deployment
	// rollout is "created" or "updated" when this reconcile changed the pod template.
	rollout string

	totals *ledger.Totals
	// gatewayAccessGranted is true when this reconcile gave the gateway role privileges it lacked.
	gatewayAccessGranted bool
}

// act carries out the plan: stop a refused gateway, or migrate the ledger, apply the gateway
// and read the totals, stopping at the first step that fails.
func (r *Reconciler) act(ctx context.Context, route *v1alpha1.PaymentRoute, p plan) observation {
	obs := observation{plan: p}
	fail := func(err error, reason string) observation {
		switch st, ok := kit.AsStalled(err); {
		case ok:
			obs.stall = st
		case kit.IsAPIError(err):
			obs.apiErr = err
		default:
			obs.transient, obs.transientReason = err, reason
		}
		return obs
	}
	if p.stopGateway {
		if err := r.stopGateway(ctx, route); err != nil {
			obs.stall = nil
			return fail(err, v1alpha1.ReasonProgressing)
		}
	}
	if !p.run {
		return obs
	}

	key := client.ObjectKeyFromObject(route)
	cfg := p.config
	opts := ledger.Options{Schema: cfg.Ledger.Schema, Table: cfg.Ledger.Table}
	pool, err := r.pools.Acquire(ctx, poolUser(key), p.dsn)
	if err != nil {
		if errors.Is(err, pgpool.ErrInvalidDSN) {
			ref := route.Spec.Database.ConnectionSecretRef
			return fail(kit.Stall(v1alpha1.ReasonInvalidSpec, "Secret %q key %q: %v",
				ref.Name, ref.KeyOrDefault(v1alpha1.DefaultConnectionSecretKey), err), "")
		}
		return fail(err, v1alpha1.ReasonDatabaseError)
	}
	r.notices.Watch(key, pool, opts.Table)
	l, err := ledger.New(pool, opts)
	if err != nil {
		return fail(err, v1alpha1.ReasonDatabaseError)
	}
	migCtx, cancel := context.WithTimeout(ctx, ledgerCallTimeout)
	mig, err := ledger.Migrate(migCtx, pool, opts)
	cancel()
	if err != nil {
		return fail(ledgerError(err), v1alpha1.ReasonDatabaseError)
	}
	obs.ledgerReady, obs.ledgerVersion, obs.ledgerChanged = true, mig.To, mig.Changed()
	if err := r.ensureGatewayAccess(ctx, key, pool, opts, p.gatewayRole, &obs); err != nil {
		return fail(err, v1alpha1.ReasonDatabaseError)
	}

	if err := r.apply(ctx, route, p.objects, &obs); err != nil {
		return fail(err, v1alpha1.ReasonDeploymentPending)
	}

	totCtx, cancel := context.WithTimeout(ctx, ledgerCallTimeout)
	t, err := l.Totals(totCtx, cfg.Route)
	cancel()
	if err != nil {
		return fail(ledgerError(err), v1alpha1.ReasonDatabaseError)
	}
	obs.totals = &t
	return obs
}

// ledgerError makes authentication failures terminal (the Secret holds a wrong password).
func ledgerError(err error) error {
	var pgErr *pgconn.PgError
	if pgpool.IsAuthFailure(err) && errors.As(err, &pgErr) {
		return kit.Stall(v1alpha1.ReasonAuthFailed, "the ledger database refused the credentials: %s", pgErr.Message)
	}
	return fmt.Errorf("ledger: %w", pgpool.Redact(err))
}

// apply applies the gateway objects unless they are exactly as last applied, and records the
// Deployment in the observation.
func (r *Reconciler) apply(ctx context.Context, route *v1alpha1.PaymentRoute, objs *gatewayObjects, obs *observation) error {
	digest, err := objs.Digest()
	if err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(route)
	prev := &appsv1.Deployment{}
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(objs.Deployment), prev)
	switch {
	case apierrors.IsNotFound(err):
		prev, obs.rollout = nil, "created"
	case err != nil:
		return fmt.Errorf("reading the gateway Deployment: %w", err)
	case prev.Spec.Template.Annotations[annotationGatewayHash] != objs.Hash:
		obs.rollout = "updated"
	}
	if prev != nil && r.applied.Unchanged(ctx, r.Client, key, digest, objs.Objects()) {
		obs.deployment = prev
		return nil
	}
	for _, obj := range objs.Objects() {
		if err := kit.Apply(ctx, r.Client, obj); err != nil {
			return err
		}
	}
	r.metrics.applies.Inc()
	r.applied.Record(key, digest, objs.Objects())
	obs.deployment = objs.Deployment
	return nil
}

// stopGateway deletes the route's gateway Deployment if this route controls it.
func (r *Reconciler) stopGateway(ctx context.Context, route *v1alpha1.PaymentRoute) error {
	var dep appsv1.Deployment
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: route.Namespace, Name: gatewayName(route.Name)}, &dep)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the gateway Deployment: %w", err)
	}
	if !metav1.IsControlledBy(&dep, route) {
		return nil
	}
	if err := r.Client.Delete(ctx, &dep); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the gateway Deployment of a refused mock route: %w", err)
	}
	return nil
}

// reasonGatewayRoleMissing: database.gatewayConnectionSecretRef names a role the ledger's
// database does not have.
const reasonGatewayRoleMissing = "GatewayRoleMissing"

// reasonGatewayRoleRefused: the gateway connection's role must not get the ledger's privileges
// (ledger.ErrRoleRefused), e.g. InsForge's authenticated role, which every API client acts as.
const reasonGatewayRoleRefused = "GatewayRoleRefused"

// gatewayAccessCheck is when a route's gateway role was last found to hold its privileges.
type gatewayAccessCheck struct {
	role    string
	version int
	at      time.Time
}

// ensureGatewayAccess keeps the gateway role's ledger privileges (ledger.EnsureGatewayAccess),
// checking them again after a Resync interval, when the role or the schema version changed, and
// never for the operator's own role.
func (r *Reconciler) ensureGatewayAccess(ctx context.Context, key client.ObjectKey, pool *pgxpool.Pool, opts ledger.Options,
	role string, obs *observation) error {
	if role == "" || role == pool.Config().ConnConfig.User {
		return nil
	}
	now := r.Clock.Now()
	r.mu.Lock()
	last, ok := r.gatewayAccess[key]
	r.mu.Unlock()
	if ok && last.role == role && last.version == obs.ledgerVersion && now.Sub(last.at) < r.Resync {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, ledgerCallTimeout)
	defer cancel()
	changed, err := ledger.EnsureGatewayAccess(actx, pool, opts, role)
	if errors.Is(err, ledger.ErrNoSuchRole) {
		return kit.Stall(reasonGatewayRoleMissing,
			"the gateway connection's role %q does not exist in the ledger database: create it (docs/security.md)", role)
	}
	if errors.Is(err, ledger.ErrRoleRefused) {
		return kit.Stall(reasonGatewayRoleRefused, "the gateway connection's role %q: %v", role, err)
	}
	if err != nil {
		return ledgerError(err)
	}
	obs.gatewayAccessGranted = changed
	r.mu.Lock()
	r.gatewayAccess[key] = gatewayAccessCheck{role: role, version: obs.ledgerVersion, at: now}
	r.mu.Unlock()
	return nil
}
