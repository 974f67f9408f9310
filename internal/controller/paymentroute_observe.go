package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	gwconfig "github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
)

// rpcRetry is how soon an unreachable chain node is asked again.
const rpcRetry = 30 * time.Second

// ledgerCallTimeout bounds each ledger call, so an unreachable database holds a worker for a
// bounded time instead of blocking every route behind it.
const ledgerCallTimeout = 20 * time.Second

// routeObservation is everything one reconcile of a route learned; status is computed from it.
type routeObservation struct {
	// stall is a problem only the user can fix; nothing after it was attempted.
	stall *stalledError
	// transient is an error retried with backoff; transientReason names it in status.
	transient       error
	transientReason string
	// apiErr is a Kubernetes API failure: retried without a status write.
	apiErr error
	// retryAfter asks for an earlier requeue than the resync.
	retryAfter time.Duration

	mockAllowed bool
	// domainChecked is true when the domain was compared on chain and matched.
	domainChecked bool
	// domainWarning is set when an okx route's optional check could not reach the node.
	domainWarning string

	ledgerReady   bool
	ledgerVersion int
	ledgerChanged bool

	deployment *appsv1.Deployment
	// rollout is "created" or "updated" when this reconcile changed the pod template.
	rollout string

	totals *ledger.Totals
}

// observe runs the route's checks in order and stops at the first that fails, so a gateway is
// never (re)deployed with a refused facilitator, missing credentials, a wrong token domain or
// a ledger without its schema.
func (r *PaymentRouteReconciler) observe(ctx context.Context, route *integrationsv1alpha1.PaymentRoute) routeObservation {
	var obs routeObservation
	fail := func(err error, reason string) routeObservation {
		var st *stalledError
		switch {
		case errors.As(err, &st):
			obs.stall = st
		case isAPIError(err):
			obs.apiErr = err
		default:
			if reason == "" {
				reason = integrationsv1alpha1.ReasonProgressing
			}
			obs.transient, obs.transientReason = err, reason
		}
		return obs
	}

	if route.Spec.Facilitator.Mock != nil {
		if !r.AllowMockFacilitator {
			// A gateway rendered while mock was allowed would keep handing out content for
			// payments that move no funds: take it down.
			if err := r.stopGateway(ctx, route); err != nil {
				return fail(err, "")
			}
			return fail(stalled(integrationsv1alpha1.ReasonMockRefused,
				"the mock facilitator moves no funds and is refused: use okx, http or onchain, or start the manager with --allow-mock-facilitator (demos and tests only)"), "")
		}
		obs.mockAllowed = true
	}
	if _, err := gwconfig.FromPaymentRoute(route); err != nil {
		return fail(stalled(integrationsv1alpha1.ReasonInvalidSpec, "%v", err), "")
	}
	secrets, err := readRouteSecrets(ctx, r.Client, route)
	if err != nil {
		return fail(err, "")
	}

	if rpc := domainRPC(route); rpc != "" {
		res := r.domains.Check(ctx, rpc, route)
		switch {
		case res.mismatch != "":
			return fail(stalled(integrationsv1alpha1.ReasonDomainMismatch, "%s", res.mismatch), "")
		case res.err != nil && route.Spec.Facilitator.Onchain != nil:
			// The on-chain facilitator settles over this node: without it the gateway cannot work.
			obs.retryAfter = rpcRetry
			return fail(fmt.Errorf("checking the token's EIP-712 domain: %w", res.err), integrationsv1alpha1.ReasonRPCUnavailable)
		case res.err != nil:
			// For okx, OKX settles: the gateway needs the node only to resolve lost outcomes, so warn, do not block it.
			obs.retryAfter = rpcRetry
			obs.domainWarning = fmt.Sprintf("the token's EIP-712 domain could not be checked: %v", res.err)
		default:
			obs.domainChecked = true
		}
	}

	key := client.ObjectKeyFromObject(route)
	db := route.Spec.Database
	opts := ledger.Options{Schema: or(db.Schema, ledger.DefaultSchema), Table: or(db.Table, ledger.DefaultTable)}
	l, pool, err := r.ledgers.Acquire(key, secrets.dsn, opts)
	if err != nil {
		if errors.Is(err, errInvalidDSN) {
			ref := db.ConnectionSecretRef
			return fail(stalled(integrationsv1alpha1.ReasonInvalidSpec, "Secret %q key %q: %v",
				ref.Name, ref.KeyOrDefault(integrationsv1alpha1.DefaultConnectionSecretKey), err), "")
		}
		return fail(err, integrationsv1alpha1.ReasonDatabaseError)
	}
	migCtx, cancel := context.WithTimeout(ctx, ledgerCallTimeout)
	mig, err := ledger.Migrate(migCtx, pool, opts)
	cancel()
	if err != nil {
		return fail(ledgerError(err), integrationsv1alpha1.ReasonDatabaseError)
	}
	obs.ledgerReady, obs.ledgerVersion, obs.ledgerChanged = true, mig.To, mig.Changed()

	if err := r.applyRoute(ctx, route, secrets, &obs); err != nil {
		return fail(err, integrationsv1alpha1.ReasonDeploymentPending)
	}

	totCtx, cancel := context.WithTimeout(ctx, ledgerCallTimeout)
	t, err := l.Totals(totCtx, routeKey(route))
	cancel()
	if err != nil {
		return fail(ledgerError(err), integrationsv1alpha1.ReasonDatabaseError)
	}
	obs.totals = &t
	return obs
}

// ledgerError makes authentication failures terminal (the Secret holds a wrong password).
func ledgerError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 && pgErr.Code[:2] == "28" {
		return stalled(integrationsv1alpha1.ReasonAuthFailed, "the ledger database refused the credentials: %s", pgErr.Message)
	}
	return fmt.Errorf("ledger: %w", err)
}

// applyRoute renders and applies the gateway objects and records the Deployment as applied.
func (r *PaymentRouteReconciler) applyRoute(ctx context.Context, route *integrationsv1alpha1.PaymentRoute, secrets routeSecrets, obs *routeObservation) error {
	objs, err := renderGateway(gatewayRender{Route: route, Image: r.GatewayImage, SecretVersions: secrets.versions})
	if err != nil {
		return stalled(integrationsv1alpha1.ReasonInvalidSpec, "%v", err)
	}
	if objs.Deployment.Spec.Template.Spec.Containers[0].Image == "" {
		return stalled(integrationsv1alpha1.ReasonInvalidSpec, "no gateway image: set spec.gateway.image or start the manager with --gateway-image")
	}
	digest, err := renderedDigest(objs)
	if err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(route)
	prev := &appsv1.Deployment{}
	err = r.Client.Get(ctx, types.NamespacedName{Namespace: route.Namespace, Name: objs.Deployment.Name}, prev)
	switch {
	case apierrors.IsNotFound(err):
		prev, obs.rollout = nil, "created"
	case err != nil:
		return fmt.Errorf("reading the gateway Deployment: %w", err)
	case prev.Spec.Template.Annotations[annotationGatewayHash] != objs.Hash:
		obs.rollout = "updated"
	}
	if r.unchangedSinceApply(ctx, key, digest, prev) {
		obs.deployment = prev
		return nil
	}
	if err := applyGateway(ctx, r.Client, objs); err != nil {
		return err
	}
	r.metrics.applies.Inc()
	r.recordApplied(key, digest, objs)
	obs.deployment = objs.Deployment
	return nil
}

// stopGateway deletes the route's gateway Deployment if this route controls it.
func (r *PaymentRouteReconciler) stopGateway(ctx context.Context, route *integrationsv1alpha1.PaymentRoute) error {
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
