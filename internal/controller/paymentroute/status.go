package paymentroute

import (
	"context"
	"fmt"
	"math/big"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	gwconfig "github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/x402/amount"
)

// computeStatus derives the route's new status from the old one and the observation. Conditions
// a failed step did not reach keep their last value. It is pure apart from condition transition
// times.
func computeStatus(route *integrationsv1alpha1.PaymentRoute, obs observation) integrationsv1alpha1.PaymentRouteStatus {
	st := route.Status.DeepCopy()
	gen := route.Generation
	st.ObservedGeneration = gen
	if v, ok := kit.RequestedAt(route); ok {
		st.LastHandledReconcileAt = v
	}
	if obs.mockAllowed {
		integrationsv1alpha1.SetCondition(&st.Conditions, gen, integrationsv1alpha1.ConditionMockFacilitator, metav1.ConditionTrue,
			integrationsv1alpha1.ReasonMockAllowed, "the mock facilitator moves no funds: its payments are counted in status.mockSettled, never in status.settled")
	} else {
		meta.RemoveStatusCondition(&st.Conditions, integrationsv1alpha1.ConditionMockFacilitator)
	}
	if obs.ledgerReady {
		integrationsv1alpha1.SetCondition(&st.Conditions, gen, integrationsv1alpha1.ConditionLedgerReady, metav1.ConditionTrue,
			integrationsv1alpha1.ReasonSchemaApplied, fmt.Sprintf("ledger schema version %d applied", obs.ledgerVersion))
	}
	if obs.deployment != nil {
		st.Gateway = integrationsv1alpha1.GatewayStatus{
			ServiceURL:    serviceURL(route),
			Replicas:      kit.Replicas(obs.deployment),
			ReadyReplicas: obs.deployment.Status.ReadyReplicas,
		}
	}
	if obs.totals != nil {
		setTotals(st, obs.config, *obs.totals)
		setResolved(&st.Conditions, gen, *obs.totals)
	}

	switch {
	case obs.stall != nil:
		if obs.stall.Reason == integrationsv1alpha1.ReasonAuthFailed {
			integrationsv1alpha1.SetCondition(&st.Conditions, gen, integrationsv1alpha1.ConditionLedgerReady, metav1.ConditionFalse,
				obs.stall.Reason, kit.Clip(obs.stall.Message))
		}
		integrationsv1alpha1.MarkStalled(&st.Conditions, gen, obs.stall.Reason, kit.Clip(obs.stall.Message))
	case obs.transient != nil:
		if obs.transientReason == integrationsv1alpha1.ReasonDatabaseError {
			integrationsv1alpha1.SetCondition(&st.Conditions, gen, integrationsv1alpha1.ConditionLedgerReady, metav1.ConditionFalse,
				obs.transientReason, kit.Clip(obs.transient.Error()))
		}
		integrationsv1alpha1.MarkReconciling(&st.Conditions, gen, obs.transientReason, kit.Clip(obs.transient.Error()))
	default:
		ok, msg := kit.DeploymentAvailable(obs.deployment)
		if !ok {
			integrationsv1alpha1.SetCondition(&st.Conditions, gen, integrationsv1alpha1.ConditionGatewayAvailable, metav1.ConditionFalse,
				integrationsv1alpha1.ReasonDeploymentPending, msg)
			integrationsv1alpha1.MarkReconciling(&st.Conditions, gen, integrationsv1alpha1.ReasonDeploymentPending, "gateway: "+msg)
			return *st
		}
		integrationsv1alpha1.SetCondition(&st.Conditions, gen, integrationsv1alpha1.ConditionGatewayAvailable, metav1.ConditionTrue,
			integrationsv1alpha1.ReasonAvailable, msg)
		ready := "gateway available at " + serviceURL(route)
		if obs.domainChecked {
			ready += "; token EIP-712 domain verified on chain"
		}
		if obs.domainWarning != "" {
			ready += "; warning: " + obs.domainWarning
		}
		integrationsv1alpha1.MarkReady(&st.Conditions, gen, integrationsv1alpha1.ReasonReconciled, kit.Clip(ready))
	}
	return *st
}

// setTotals reports real and mock tallies separately; mock payments never reach settled.
func setTotals(st *integrationsv1alpha1.PaymentRouteStatus, cfg gwconfig.Config, t ledger.Totals) {
	dec := uint8(cfg.Asset.Decimals)
	st.Settled = tallyStatus(t.Real, dec)
	if t.Mock.SettledCount > 0 || cfg.Facilitator.Kind == gwconfig.KindMock {
		m := tallyStatus(t.Mock, dec)
		st.MockSettled = &m
	} else {
		st.MockSettled = nil
	}
	st.Pending = integrationsv1alpha1.PendingPayments{Count: t.Real.PendingCount + t.Mock.PendingCount}
}

// setResolved reports payments whose outcome the gateway's resolver has not found for an hour:
// money may or may not have moved, and someone has to look. It does not touch Ready: the gateway
// works, one settlement is in doubt.
func setResolved(conds *[]metav1.Condition, gen int64, t ledger.Totals) {
	if n := t.Real.StuckCount + t.Mock.StuckCount; n > 0 {
		integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionSettlementsResolved, metav1.ConditionFalse,
			integrationsv1alpha1.ReasonUnresolved,
			fmt.Sprintf("%d payments have had an unknown settlement outcome for more than 1h; see docs/gateway.md#unresolved-payments", n))
		return
	}
	integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionSettlementsResolved, metav1.ConditionTrue,
		integrationsv1alpha1.ReasonAllResolved, "no payment has had an unknown settlement outcome for more than 1h")
}

func tallyStatus(t ledger.Tally, decimals uint8) integrationsv1alpha1.SettledTotals {
	sum := t.SettledAmount
	if sum == nil {
		sum = new(big.Int)
	}
	out := integrationsv1alpha1.SettledTotals{
		Count:      t.SettledCount,
		Amount:     amount.FormatAtomic(sum),
		Total:      amount.FormatDecimal(sum, decimals),
		LastTxHash: t.LastTxHash,
	}
	if !t.LastSettledAt.IsZero() {
		// The API stores seconds; rounding here keeps an unchanged total from looking changed.
		lt := metav1.NewTime(t.LastSettledAt).Rfc3339Copy()
		out.LastSettledTime = &lt
	}
	return out
}

// writeStatus patches the status when it changed. A change of totals alone waits until
// TotalsWriteInterval has passed since the route's last write and returns the wait, so a burst
// of payments makes a handful of writes; any other change is written at once.
func (r *Reconciler) writeStatus(ctx context.Context, base, route *integrationsv1alpha1.PaymentRoute) (time.Duration, error) {
	if equality.Semantic.DeepEqual(base.Status, route.Status) {
		return 0, nil
	}
	key := client.ObjectKeyFromObject(route)
	now := r.Clock.Now()
	if totalsOnly(&base.Status, &route.Status) {
		r.mu.Lock()
		last, ok := r.lastTotalsWrite[key]
		r.mu.Unlock()
		if wait := r.TotalsWriteInterval - now.Sub(last); ok && wait > 0 {
			r.metrics.deferredWrites.Inc()
			return wait, nil
		}
	}
	if err := kit.PatchStatus(ctx, r.Client, base, route); err != nil {
		return 0, err
	}
	r.metrics.statusWrites.Inc()
	r.mu.Lock()
	r.lastTotalsWrite[key] = now
	r.mu.Unlock()
	return 0, nil
}

// totalsOnly reports whether next differs from old only in the totals.
func totalsOnly(old, next *integrationsv1alpha1.PaymentRouteStatus) bool {
	probe := next.DeepCopy()
	probe.Settled, probe.MockSettled, probe.Pending = old.Settled, old.MockSettled, old.Pending
	return equality.Semantic.DeepEqual(old, probe)
}

// emitEvents records state changes as Events: what changed, never a secret value.
func (r *Reconciler) emitEvents(route *integrationsv1alpha1.PaymentRoute, old *integrationsv1alpha1.PaymentRouteStatus, obs observation) {
	emit := func(typ, reason, action, msg string) {
		r.Events.Emit(route, typ, reason, action, "%s", msg)
	}
	was := func(typ string) *metav1.Condition { return meta.FindStatusCondition(old.Conditions, typ) }
	if obs.stall != nil {
		if c := was(integrationsv1alpha1.ConditionStalled); c == nil || c.Reason != obs.stall.Reason || c.Message != kit.Clip(obs.stall.Message) {
			emit(corev1.EventTypeWarning, obs.stall.Reason, "Reconcile", obs.stall.Message)
		}
	}
	if obs.transient != nil && obs.transientReason == integrationsv1alpha1.ReasonDatabaseError {
		if c := was(integrationsv1alpha1.ConditionLedgerReady); c == nil || c.Status != metav1.ConditionFalse {
			emit(corev1.EventTypeWarning, "LedgerError", "Migrate", obs.transient.Error())
		}
	}
	if obs.mockAllowed {
		if c := was(integrationsv1alpha1.ConditionMockFacilitator); c == nil || c.Status != metav1.ConditionTrue {
			emit(corev1.EventTypeWarning, integrationsv1alpha1.ReasonMockAllowed, "Reconcile",
				"this route uses the mock facilitator: payments are accepted without moving funds")
		}
	}
	if obs.gatewayAccessGranted {
		emit(corev1.EventTypeNormal, "GatewayAccessGranted", "Grant",
			fmt.Sprintf("gave the gateway role %q the ledger's privileges", obs.gatewayRole))
	}
	if obs.ledgerChanged {
		emit(corev1.EventTypeNormal, integrationsv1alpha1.ReasonSchemaApplied, "Migrate",
			fmt.Sprintf("ledger schema brought to version %d", obs.ledgerVersion))
	}
	switch obs.rollout {
	case "created":
		emit(corev1.EventTypeNormal, "GatewayCreated", "Apply", "created gateway Deployment "+gatewayName(route.Name))
	case "updated":
		emit(corev1.EventTypeNormal, "RolloutStarted", "Apply", "gateway configuration or credentials changed: rolling Deployment "+gatewayName(route.Name))
	}
	if c := meta.FindStatusCondition(route.Status.Conditions, integrationsv1alpha1.ConditionSettlementsResolved); c != nil && c.Status == metav1.ConditionFalse {
		if before := was(integrationsv1alpha1.ConditionSettlementsResolved); before == nil || before.Status != metav1.ConditionFalse {
			emit(corev1.EventTypeWarning, integrationsv1alpha1.ReasonUnresolved, "Resolve", c.Message)
		}
	}
	now := meta.FindStatusCondition(route.Status.Conditions, integrationsv1alpha1.ConditionReady)
	if before := was(integrationsv1alpha1.ConditionReady); now != nil && now.Status == metav1.ConditionTrue &&
		(before == nil || before.Status != metav1.ConditionTrue) {
		emit(corev1.EventTypeNormal, integrationsv1alpha1.ReasonAvailable, "Reconcile", now.Message)
	}
}
