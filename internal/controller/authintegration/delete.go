package authintegration

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/pgpool"
	"github.com/insforge/integrations-operator/internal/rls"
)

// authFinalizer holds a Delete integration until its policies are dropped.
const authFinalizer = "integrations.insforge.dev/drop-policies"

// Event reasons of deletion.
const (
	reasonTornDown        = "TornDown"
	reasonTeardownSkipped = "TeardownSkipped"
)

// syncFinalizer adds the finalizer when the policy is Delete and removes it when it is Retain:
// Retain integrations never wait for the database on deletion.
func (r *Reconciler) syncFinalizer(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration) error {
	want := ai.Spec.DeletionPolicy == integrationsv1alpha1.DeletionDelete
	if want == controllerutil.ContainsFinalizer(ai, authFinalizer) {
		return nil
	}
	base := ai.DeepCopy()
	if want {
		controllerutil.AddFinalizer(ai, authFinalizer)
	} else {
		controllerutil.RemoveFinalizer(ai, authFinalizer)
	}
	if err := r.Client.Patch(ctx, ai, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("updating the finalizer: %w", err)
	}
	return nil
}

// finalize tears the integration down when its policy is Delete. It never blocks deletion
// forever: without the connection Secret, or once DeletionTimeout has passed since deletion was
// requested, it gives up with a Warning event and lets the object go.
func (r *Reconciler) finalize(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration) (ctrl.Result, error) {
	key := poolUser(objectKey(ai))
	if !controllerutil.ContainsFinalizer(ai, authFinalizer) {
		r.Pools.Release(key)
		return ctrl.Result{}, nil
	}
	// Redacted like the reconcile's database errors: it reaches events and status.
	err := pgpool.Redact(r.teardown(ctx, ai))
	st, stalled := kit.AsStalled(err)
	switch {
	case err == nil:
	case stalled:
		r.Events.Emit(ai, corev1.EventTypeWarning, reasonTeardownSkipped, "DropPolicies",
			"Policies left in the database: %s", st.Message)
	case r.Clock.Now().Sub(ai.DeletionTimestamp.Time) >= r.deletionTimeout():
		r.Events.Emit(ai, corev1.EventTypeWarning, reasonTeardownSkipped, "DropPolicies",
			"Gave up dropping the policies after %s; they are left in the database: %v", r.deletionTimeout(), err)
	default:
		r.metrics.outcomes.WithLabelValues(outcomeError).Inc()
		r.markDeleting(ctx, ai, err)
		return ctrl.Result{}, err
	}
	r.Pools.Release(key)
	base := ai.DeepCopy()
	controllerutil.RemoveFinalizer(ai, authFinalizer)
	if err := r.Client.Patch(ctx, ai, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, fmt.Errorf("removing the finalizer: %w", err)
	}
	r.metrics.outcomes.WithLabelValues(outcomeDeleted).Inc()
	return ctrl.Result{}, nil
}

// teardown drops this integration's policies (and the helper when nothing else uses it).
func (r *Reconciler) teardown(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration) error {
	if err := r.teardownProvider(ctx, ai); err != nil {
		if st, ok := kit.AsStalled(err); ok {
			r.Events.Emit(ai, corev1.EventTypeWarning, reasonTeardownSkipped, "DeleteProviderObject",
				"Left the provider's signing object in place: %s", st.Message)
		} else {
			return err
		}
	}
	dsn, err := r.connectionDSN(ctx, ai)
	if err != nil {
		return err
	}
	pool, err := r.Pools.Acquire(ctx, poolUser(objectKey(ai)), dsn)
	if err != nil {
		return fmt.Errorf("connecting to the database: %w", err)
	}
	res, err := rls.Teardown(ctx, pool, rlsSpec(ai))
	if err != nil {
		return fmt.Errorf("dropping the policies: %w", err)
	}
	helper := "kept public.requesting_user_id()"
	switch {
	case res.HelperDropped:
		helper = "dropped public.requesting_user_id()"
	case len(res.HelperUsers) > 0:
		helper += " (still used by " + strings.Join(res.HelperUsers, ", ") + ")"
	}
	r.Events.Emit(ai, corev1.EventTypeNormal, reasonTornDown, "DropPolicies",
		"Dropped %d policies; %s; row-level security stays enabled", len(res.DroppedPolicies), helper)
	return nil
}

// teardownProvider deletes the object the operator kept in the provider (Clerk's template,
// Auth0's API or Action), so that nothing outside the cluster keeps signing with the key.
func (r *Reconciler) teardownProvider(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration) error {
	kind := providerSyncKind(ai)
	last := ai.Status.Provider
	if kind == "" || last == nil || last.Kind != kind || last.ID == "" {
		return nil
	}
	if err := r.checkAllowed(ai); err != nil {
		return err
	}
	creds, err := r.providerCredentials(ctx, ai)
	if err != nil {
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, providerCallTimeout)
	defer cancel()
	if err := r.newSyncer(ai, creds).Delete(callCtx, *last); err != nil {
		return fmt.Errorf("deleting %s %s: %w", last.Kind, last.Name, err)
	}
	r.Events.Emit(ai, corev1.EventTypeNormal, reasonTornDown, "DeleteProviderObject", "Deleted %s %s", last.Kind, last.Name)
	return nil
}

// markDeleting reports a teardown that will be retried. A failure to write it is logged by the
// retry's error already, so it is ignored here.
func (r *Reconciler) markDeleting(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration, err error) {
	base := ai.DeepCopy()
	ai.Status.ObservedGeneration = ai.Generation
	integrationsv1alpha1.MarkReconciling(&ai.Status.Conditions, ai.Generation, integrationsv1alpha1.ReasonDeleting,
		kit.Clip(fmt.Sprintf("dropping the policies failed, retrying until %s: %v",
			ai.DeletionTimestamp.Add(r.deletionTimeout()).UTC().Format(time.RFC3339), err)))
	_ = r.writeStatus(ctx, base, ai, 0)
}

func (r *Reconciler) deletionTimeout() time.Duration {
	if r.DeletionTimeout > 0 {
		return r.DeletionTimeout
	}
	return defaultDeletionTimeout
}
