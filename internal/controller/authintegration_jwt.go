package controller

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
)

// jwtOutcome is what the JWT step found. current and previous are key material: they go into
// export Secrets and nowhere else.
type jwtOutcome struct {
	status            *integrationsv1alpha1.JWTSecretStatus
	current, previous string
	secretName        string
	message           string
	requeueAfter      time.Duration
}

// reconcileJWT makes sure the JWT secret exists (generating and rotating it when the operator owns
// it) and returns its values. A problem the user must fix is a stalledError.
func (r *AuthIntegrationReconciler) reconcileJWT(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration, now time.Time) (jwtOutcome, error) {
	switch {
	case ai.Spec.JWT.Generate != nil:
		return r.generatedJWT(ctx, ai, now)
	case ai.Spec.JWT.ExistingSecretRef != nil:
		return r.adoptedJWT(ctx, ai)
	}
	return jwtOutcome{}, stalled(integrationsv1alpha1.ReasonInvalidSpec, "jwt must set generate or existingSecretRef")
}

// adoptedJWT reads a user's Secret, read-only.
func (r *AuthIntegrationReconciler) adoptedJWT(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration) (jwtOutcome, error) {
	ref := *ai.Spec.JWT.ExistingSecretRef
	key := ref.KeyOrDefault(jwtsecret.KeyCurrent)
	var sec corev1.Secret
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ai.Namespace, Name: ref.Name}, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			return jwtOutcome{}, stalled(integrationsv1alpha1.ReasonSecretNotFound,
				"Secret %s (jwt.existingSecretRef) not found in namespace %s", ref.Name, ai.Namespace)
		}
		return jwtOutcome{}, fmt.Errorf("reading the JWT Secret %s: %w", ref.Name, err)
	}
	current := string(sec.Data[key])
	switch {
	case current == "":
		return jwtOutcome{}, stalled(integrationsv1alpha1.ReasonSecretKeyMissing,
			"Secret %s (jwt.existingSecretRef) has no key %s", ref.Name, key)
	case len(current) < jwtsecret.MinLength:
		return jwtOutcome{}, stalled(integrationsv1alpha1.ReasonInvalidSpec,
			"key %s of Secret %s is shorter than %d characters, which PostgREST rejects", key, ref.Name, jwtsecret.MinLength)
	}
	previous := string(sec.Data[key+"_PREVIOUS"])
	return jwtOutcome{
		current:    current,
		previous:   previous,
		secretName: ref.Name,
		message:    fmt.Sprintf("adopted key %s of Secret %s read-only", key, ref.Name),
		status: &integrationsv1alpha1.JWTSecretStatus{
			SecretName:          ref.Name,
			Fingerprint:         jwtsecret.Fingerprint(current),
			PreviousFingerprint: jwtsecret.Fingerprint(previous),
		},
	}, nil
}

// generatedJWT creates, rotates and retires keys of the operator's Secret through
// jwtsecret.Decide, which never writes a Secret the operator did not generate.
func (r *AuthIntegrationReconciler) generatedJWT(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration, now time.Time) (jwtOutcome, error) {
	g := ai.Spec.JWT.Generate
	policy := rotationPolicy(g)
	if err := policy.Validate(); err != nil {
		return jwtOutcome{}, stalled(integrationsv1alpha1.ReasonInvalidSpec, "jwt.generate.rotation: %v", err)
	}
	var sec corev1.Secret
	key := types.NamespacedName{Namespace: ai.Namespace, Name: g.SecretName}
	exists := true
	if err := r.Client.Get(ctx, key, &sec); err != nil {
		if !apierrors.IsNotFound(err) {
			return jwtOutcome{}, fmt.Errorf("reading the JWT Secret %s: %w", g.SecretName, err)
		}
		exists = false
		sec = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ai.Namespace, Name: g.SecretName}}
	}
	d, err := jwtsecret.Decide(jwtsecret.Secret{Exists: exists, Data: sec.Data, Annotations: sec.Annotations}, policy, now, r.newSecret)
	if err != nil {
		return jwtOutcome{}, fmt.Errorf("deciding on the JWT Secret %s: %w", g.SecretName, err)
	}
	if !d.Ready {
		return jwtOutcome{}, stalled(integrationsv1alpha1.ReasonSecretKeyMissing, "Secret %s: %s", g.SecretName, d.Reason)
	}

	ours := d.Write != nil || sec.Annotations[jwtsecret.AnnotationGenerated] == "true"
	changed := d.Write != nil
	if d.Write != nil {
		applyWrite(&sec, d.Write)
	}
	if ours {
		owned, err := r.syncOwnership(ai, &sec, g.Ownership != integrationsv1alpha1.SecretOrphan)
		if err != nil {
			return jwtOutcome{}, err
		}
		changed = changed || owned
	}
	if changed {
		if err := r.writeSecret(ctx, &sec, exists); err != nil {
			return jwtOutcome{}, fmt.Errorf("writing the JWT Secret %s: %w", g.SecretName, err)
		}
	}
	r.recordJWTEvent(ai, d)

	st := &integrationsv1alpha1.JWTSecretStatus{
		SecretName:          g.SecretName,
		Fingerprint:         d.Status.Fingerprint,
		PreviousFingerprint: d.Status.PreviousFingerprint,
		LastRotationTime:    optTime(d.Status.RotatedAt),
		NextRotationTime:    optTime(d.Status.NextRotationAt),
		PreviousExpiryTime:  optTime(d.Status.PreviousExpiresAt),
		LastHandledTrigger:  sec.Annotations[jwtsecret.AnnotationTrigger],
	}
	return jwtOutcome{
		current:      string(sec.Data[jwtsecret.KeyCurrent]),
		previous:     string(sec.Data[jwtsecret.KeyPrevious]),
		secretName:   g.SecretName,
		message:      d.Reason,
		requeueAfter: d.RequeueAfter,
		status:       st,
	}, nil
}

// applyWrite applies a decision's Write to the Secret in memory.
func applyWrite(sec *corev1.Secret, w *jwtsecret.Write) {
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	maps.Copy(sec.Data, w.Data)
	for _, k := range w.RemoveKeys {
		delete(sec.Data, k)
	}
	maps.Copy(sec.Annotations, w.Annotations)
	for _, k := range w.RemoveAnnotations {
		delete(sec.Annotations, k)
	}
}

// syncOwnership gives the operator's Secret a controller reference to the integration when owned,
// and removes it when orphaned; it reports whether it changed anything.
func (r *AuthIntegrationReconciler) syncOwnership(ai *integrationsv1alpha1.AuthIntegration, sec *corev1.Secret, owned bool) (bool, error) {
	has := metav1.IsControlledBy(sec, ai)
	switch {
	case owned && !has:
		if err := controllerutil.SetControllerReference(ai, sec, r.Scheme); err != nil {
			return false, fmt.Errorf("setting the owner of Secret %s: %w", sec.Name, err)
		}
		return true, nil
	case !owned && has:
		if err := controllerutil.RemoveControllerReference(ai, sec, r.Scheme); err != nil {
			return false, fmt.Errorf("removing the owner of Secret %s: %w", sec.Name, err)
		}
		return true, nil
	}
	return false, nil
}

// writeSecret creates or updates a Secret. Updates carry the resourceVersion that was read, so a
// concurrent writer makes this fail (and the reconcile retry) instead of being overwritten.
func (r *AuthIntegrationReconciler) writeSecret(ctx context.Context, sec *corev1.Secret, exists bool) error {
	if sec.Labels == nil {
		sec.Labels = map[string]string{}
	}
	sec.Labels[labelManagedBy] = managerName
	if exists {
		return r.Client.Update(ctx, sec)
	}
	sec.Type = corev1.SecretTypeOpaque
	return r.Client.Create(ctx, sec)
}

func (r *AuthIntegrationReconciler) recordJWTEvent(ai *integrationsv1alpha1.AuthIntegration, d jwtsecret.Decision) {
	switch d.Action {
	case jwtsecret.ActionCreate:
		r.event(ai, corev1.EventTypeNormal, integrationsv1alpha1.ReasonSecretGenerated, "GenerateSecret",
			"Generated the JWT secret (%s): %s", d.Status.Fingerprint, d.Reason)
	case jwtsecret.ActionRegenerate:
		r.event(ai, corev1.EventTypeWarning, integrationsv1alpha1.ReasonSecretGenerated, "GenerateSecret",
			"Regenerated the JWT secret (%s): %s", d.Status.Fingerprint, d.Reason)
	case jwtsecret.ActionRotate:
		r.metrics.rotations.Inc()
		r.event(ai, corev1.EventTypeNormal, integrationsv1alpha1.ReasonSecretRotated, "RotateSecret",
			"Rotated the JWT secret from %s to %s: %s", d.Status.PreviousFingerprint, d.Status.Fingerprint, d.Reason)
	case jwtsecret.ActionExpirePrevious:
		r.event(ai, corev1.EventTypeNormal, reasonPreviousKeyRemoved, "RotateSecret", "%s", d.Reason)
	}
}

func optTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}
