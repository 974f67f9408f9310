package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/rls"
)

// dbOutcome is what the database step found.
type dbOutcome struct {
	spec         rls.Spec
	hash         string
	result       *rls.Result
	verification *rls.Verification
}

// connectionDSN reads the connection URL from the referenced Secret. A missing Secret or key is a
// stalledError naming them; the value never leaves this function except to the pool cache.
func (r *AuthIntegrationReconciler) connectionDSN(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration) (string, error) {
	ref := ai.Spec.Database.ConnectionSecretRef
	key := ref.KeyOrDefault(integrationsv1alpha1.DefaultConnectionSecretKey)
	var sec corev1.Secret
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ai.Namespace, Name: ref.Name}, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			return "", stalled(integrationsv1alpha1.ReasonSecretNotFound,
				"Secret %s (database.connectionSecretRef) not found in namespace %s", ref.Name, ai.Namespace)
		}
		return "", fmt.Errorf("reading the connection Secret %s: %w", ref.Name, err)
	}
	dsn := string(sec.Data[key])
	if dsn == "" {
		return "", stalled(integrationsv1alpha1.ReasonSecretKeyMissing,
			"Secret %s (database.connectionSecretRef) has no key %s", ref.Name, key)
	}
	return dsn, nil
}

// reconcileDatabase brings the database to the spec (or, in observe mode, only compares) and then
// verifies isolation as a synthetic user.
func (r *AuthIntegrationReconciler) reconcileDatabase(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration) (*dbOutcome, error) {
	spec := rlsSpec(ai)
	hash, err := specHash(spec)
	if err != nil {
		return nil, err
	}
	dsn, err := r.connectionDSN(ctx, ai)
	if err != nil {
		return nil, err
	}
	pool, err := r.Pools.Acquire(ctx, ownerKey(ai), dsn)
	if err != nil {
		return nil, fmt.Errorf("connecting to the database: %w", err)
	}
	res, err := rls.Reconcile(ctx, pool, spec, rls.Options{Mode: rlsMode(ai)})
	if err != nil {
		return nil, fmt.Errorf("reconciling row-level security: %w", err)
	}
	r.metrics.statements.Add(float64(res.StatementCount()))
	out := &dbOutcome{spec: spec, hash: hash, result: res}
	if rlsMode(ai) == rls.ModeObserve && res.Drifted() {
		// Verification would only restate the differences (or fail on a missing column).
		return out, nil
	}
	v, err := rls.Verify(ctx, pool, spec)
	if err != nil {
		return out, fmt.Errorf("verifying row-level security: %w", err)
	}
	out.verification = v
	return out, nil
}
