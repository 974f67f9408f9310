package controller

import (
	"bytes"
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
)

// reasonExportNotOwned: an export names a Secret that exists and was not created by this
// integration; it is never overwritten.
const reasonExportNotOwned = "ExportSecretNotOwned"

// previousSuffix names the export key that carries the previous JWT secret during a rotation's
// grace period, e.g. INSFORGE_JWT_SECRET_PREVIOUS.
const previousSuffix = "_PREVIOUS"

// reconcileExports writes the JWT secret into each export Secret under the provider's env name
// (and the previous key during a grace period). It reports whether any Secret was written.
func (r *AuthIntegrationReconciler) reconcileExports(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration, jwt jwtOutcome) (bool, error) {
	wrote := false
	for _, e := range ai.Spec.Exports {
		w, err := r.reconcileExport(ctx, ai, e, jwt)
		if err != nil {
			return wrote, err
		}
		wrote = wrote || w
	}
	return wrote, nil
}

func (r *AuthIntegrationReconciler) reconcileExport(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration, e integrationsv1alpha1.SecretExport, jwt jwtOutcome) (bool, error) {
	key := exportKey(e)
	var sec corev1.Secret
	exists := true
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ai.Namespace, Name: e.SecretName}, &sec); err != nil {
		if !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("reading the export Secret %s: %w", e.SecretName, err)
		}
		exists = false
		sec = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ai.Namespace, Name: e.SecretName}}
		if err := controllerutil.SetControllerReference(ai, &sec, r.Scheme); err != nil {
			return false, fmt.Errorf("setting the owner of Secret %s: %w", e.SecretName, err)
		}
	}
	if exists && !metav1.IsControlledBy(&sec, ai) {
		return false, stalled(reasonExportNotOwned,
			"export Secret %s exists and was not created by this integration; it is never overwritten: delete it or choose another secretName", e.SecretName)
	}
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	changed := !exists
	changed = setKey(sec.Data, key, jwt.current) || changed
	changed = setKey(sec.Data, key+previousSuffix, jwt.previous) || changed
	if !changed {
		return false, nil
	}
	if err := r.writeSecret(ctx, &sec, exists); err != nil {
		return false, fmt.Errorf("writing the export Secret %s: %w", e.SecretName, err)
	}
	return true, nil
}

// setKey sets data[key] to value, or removes it when value is empty; it reports a change.
func setKey(data map[string][]byte, key, value string) bool {
	old, ok := data[key]
	if value == "" {
		delete(data, key)
		return ok
	}
	if ok && bytes.Equal(old, []byte(value)) {
		return false
	}
	data[key] = []byte(value)
	return true
}
