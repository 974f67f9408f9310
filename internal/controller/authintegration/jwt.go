package authintegration

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
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

// stallInvalidJWT is the stall of a spec that sets neither way of getting a JWT secret.
func stallInvalidJWT() error {
	return kit.Stall(integrationsv1alpha1.ReasonInvalidSpec, "jwt must set generate or existingSecretRef")
}

// decideAdoptedJWT reads a user's Secret, read-only.
func decideAdoptedJWT(ai *integrationsv1alpha1.AuthIntegration, s readSecret) (jwtOutcome, error) {
	ref := *ai.Spec.JWT.ExistingSecretRef
	key := ref.KeyOrDefault(jwtsecret.KeyCurrent)
	if !s.exists {
		return jwtOutcome{}, kit.Stall(integrationsv1alpha1.ReasonSecretNotFound,
			"Secret %s (jwt.existingSecretRef) not found in namespace %s", ref.Name, ai.Namespace)
	}
	current := string(s.secret.Data[key])
	switch {
	case current == "":
		return jwtOutcome{}, kit.Stall(integrationsv1alpha1.ReasonSecretKeyMissing,
			"Secret %s (jwt.existingSecretRef) has no key %s", ref.Name, key)
	case len(current) < jwtsecret.MinLength:
		return jwtOutcome{}, kit.Stall(integrationsv1alpha1.ReasonInvalidSpec,
			"key %s of Secret %s is shorter than %d characters, which PostgREST rejects", key, ref.Name, jwtsecret.MinLength)
	}
	previous := string(s.secret.Data[key+"_PREVIOUS"])
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

// decideGeneratedJWT creates, rotates and retires keys of the operator's Secret through
// jwtsecret.Decide, which never touches a Secret the operator did not generate. It returns the
// Secret to write, if any; the outcome's keys are those the Secret holds once written.
func decideGeneratedJWT(ai *integrationsv1alpha1.AuthIntegration, s readSecret, now time.Time,
	newSecret func() (string, error), scheme *runtime.Scheme) (jwtOutcome, *secretWrite, *jwtsecret.Decision, error) {
	g := ai.Spec.JWT.Generate
	policy := rotationPolicy(g)
	if err := policy.Validate(); err != nil {
		return jwtOutcome{}, nil, nil, kit.Stall(integrationsv1alpha1.ReasonInvalidSpec, "jwt.generate.rotation: %v", err)
	}
	sec := s.secret.DeepCopy()
	d, err := jwtsecret.Decide(jwtsecret.Secret{Exists: s.exists, Data: sec.Data, Annotations: sec.Annotations}, policy, now, newSecret)
	if err != nil {
		return jwtOutcome{}, nil, nil, fmt.Errorf("deciding on the JWT Secret %s: %w", g.SecretName, err)
	}
	if !d.Ready {
		return jwtOutcome{}, nil, nil, kit.Stall(integrationsv1alpha1.ReasonSecretKeyMissing, "Secret %s: %s", g.SecretName, d.Reason)
	}

	ours := d.Write != nil || sec.Annotations[jwtsecret.AnnotationGenerated] == "true"
	changed := d.Write != nil
	if d.Write != nil {
		applyWrite(sec, d.Write)
	}
	if ours {
		owned, err := syncOwnership(ai, sec, g.Ownership != integrationsv1alpha1.SecretOrphan, scheme)
		if err != nil {
			return jwtOutcome{}, nil, nil, err
		}
		changed = changed || owned
	}
	var w *secretWrite
	if changed {
		w = &secretWrite{secret: sec, exists: s.exists, what: "the JWT Secret"}
	}
	st := &integrationsv1alpha1.JWTSecretStatus{
		SecretName:          g.SecretName,
		Fingerprint:         d.Status.Fingerprint,
		PreviousFingerprint: d.Status.PreviousFingerprint,
		LastRotationTime:    kit.OptTime(d.Status.RotatedAt),
		NextRotationTime:    kit.OptTime(d.Status.NextRotationAt),
		PreviousExpiryTime:  kit.OptTime(d.Status.PreviousExpiresAt),
		LastHandledTrigger:  sec.Annotations[jwtsecret.AnnotationTrigger],
	}
	return jwtOutcome{
		current:      string(sec.Data[jwtsecret.KeyCurrent]),
		previous:     string(sec.Data[jwtsecret.KeyPrevious]),
		secretName:   g.SecretName,
		message:      d.Reason,
		requeueAfter: d.RequeueAfter,
		status:       st,
	}, w, &d, nil
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
func syncOwnership(ai *integrationsv1alpha1.AuthIntegration, sec *corev1.Secret, owned bool, scheme *runtime.Scheme) (bool, error) {
	has := metav1.IsControlledBy(sec, ai)
	switch {
	case owned && !has:
		if err := controllerutil.SetControllerReference(ai, sec, scheme); err != nil {
			return false, fmt.Errorf("setting the owner of Secret %s: %w", sec.Name, err)
		}
		return true, nil
	case !owned && has:
		if err := controllerutil.RemoveControllerReference(ai, sec, scheme); err != nil {
			return false, fmt.Errorf("removing the owner of Secret %s: %w", sec.Name, err)
		}
		return true, nil
	}
	return false, nil
}

// writeSecret creates or updates a Secret. Updates carry the resourceVersion that was read, so a
// concurrent writer makes this fail (and the reconcile retry) instead of being overwritten.
func (r *Reconciler) writeSecret(ctx context.Context, sec *corev1.Secret, exists bool) error {
	kit.MarkSecretAccess(sec)
	if exists {
		return r.Client.Update(ctx, sec)
	}
	sec.Type = corev1.SecretTypeOpaque
	return r.Client.Create(ctx, sec)
}

func (r *Reconciler) recordJWTEvent(ai *integrationsv1alpha1.AuthIntegration, d jwtsecret.Decision) {
	switch d.Action {
	case jwtsecret.ActionCreate:
		r.Events.Emit(ai, corev1.EventTypeNormal, integrationsv1alpha1.ReasonSecretGenerated, "GenerateSecret",
			"Generated the JWT secret (%s): %s", d.Status.Fingerprint, d.Reason)
	case jwtsecret.ActionRegenerate:
		r.Events.Emit(ai, corev1.EventTypeWarning, integrationsv1alpha1.ReasonSecretGenerated, "GenerateSecret",
			"Regenerated the JWT secret (%s): %s", d.Status.Fingerprint, d.Reason)
	case jwtsecret.ActionRotate:
		r.metrics.rotations.Inc()
		r.Events.Emit(ai, corev1.EventTypeNormal, integrationsv1alpha1.ReasonSecretRotated, "RotateSecret",
			"Rotated the JWT secret from %s to %s: %s", d.Status.PreviousFingerprint, d.Status.Fingerprint, d.Reason)
	case jwtsecret.ActionExpirePrevious:
		r.Events.Emit(ai, corev1.EventTypeNormal, reasonPreviousKeyRemoved, "RotateSecret", "%s", d.Reason)
	}
}
