package authintegration

import (
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
)

const (
	// annotationJWTFingerprint on an InsForge workload's pod template names the key its pods run
	// with; changing it is what rolls them after a rotation.
	annotationJWTFingerprint = "integrations.insforge.dev/jwt-fingerprint"
	// defaultWorkloadEnv is the variable InsForge's backend reads the secret from.
	defaultWorkloadEnv = "JWT_SECRET"
	// annotationJWTIntegration on an InsForge workload names the integration whose key it runs:
	// one workload follows one integration, so a second one naming it cannot take it over (two
	// would also undo each other's rollouts).
	annotationJWTIntegration = "integrations.insforge.dev/jwt-integration"
	// encryptionKeyEnv is the variable that, when unset, makes InsForge encrypt stored secrets
	// with JWT_SECRET: rotating it then makes them unreadable.
	encryptionKeyEnv = "ENCRYPTION_KEY"
)

// workloadFacts is one InsForge workload as read: a *appsv1.Deployment or *appsv1.StatefulSet,
// nil when it does not exist.
type workloadFacts struct {
	ref integrationsv1alpha1.InsForgeWorkload
	obj client.Object
	// claimedBy is another integration that runs the workload, "" when none (or it is gone).
	claimedBy string
}

// readWorkloads reads the InsForge workloads. Deployments come from the cache (the manager
// watches them for its own workloads); StatefulSets are read from the API server, so that the
// cluster's StatefulSets are not all held in memory for a few named ones.
func (r *Reconciler) readWorkloads(ctx context.Context, ai *integrationsv1alpha1.AuthIntegration) ([]workloadFacts, error) {
	if ai.Spec.InsForge == nil {
		return nil, nil
	}
	out := make([]workloadFacts, 0, len(ai.Spec.InsForge.Workloads))
	for _, w := range ai.Spec.InsForge.Workloads {
		key := types.NamespacedName{Namespace: ai.Namespace, Name: w.Name}
		var obj client.Object
		var reader client.Reader = r.Client
		switch w.Kind {
		case integrationsv1alpha1.KindStatefulSet:
			obj, reader = &appsv1.StatefulSet{}, r.live()
		default:
			obj = &appsv1.Deployment{}
		}
		err := reader.Get(ctx, key, obj)
		switch {
		case apierrors.IsNotFound(err):
			obj = nil
		case err != nil:
			return nil, fmt.Errorf("reading %s %s: %w", w.Kind, w.Name, err)
		}
		f := workloadFacts{ref: w, obj: obj}
		if obj != nil {
			if other := obj.GetAnnotations()[annotationJWTIntegration]; other != "" && other != ai.Name {
				var owner integrationsv1alpha1.AuthIntegration
				err := r.Client.Get(ctx, types.NamespacedName{Namespace: ai.Namespace, Name: other}, &owner)
				switch {
				case err == nil:
					f.claimedBy = other
				case !apierrors.IsNotFound(err):
					return nil, fmt.Errorf("reading the AuthIntegration %s that runs %s %s: %w", other, w.Kind, w.Name, err)
				}
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// workloadPlan is what a reconcile does about one InsForge workload.
type workloadPlan struct {
	ref integrationsv1alpha1.InsForgeWorkload
	// patched is the workload with the env and the fingerprint set, nil when it already has them.
	patched, live client.Object
	state         integrationsv1alpha1.ConsumerState
	message       string
}

// secretSource is where the workloads read the JWT secret: the JWT Secret's key.
type secretSource struct{ name, key string }

func jwtSource(ai *integrationsv1alpha1.AuthIntegration) secretSource {
	if g := ai.Spec.JWT.Generate; g != nil {
		return secretSource{name: g.SecretName, key: jwtsecret.KeyCurrent}
	}
	ref := ai.Spec.JWT.ExistingSecretRef
	return secretSource{name: ref.Name, key: ref.KeyOrDefault(jwtsecret.KeyCurrent)}
}

// decideWorkloads plans each InsForge workload: point the named env vars at the JWT Secret and
// stamp the current key's fingerprint on the pod template (which rolls the pods), or, when that
// is done, report whether the rollout completed. A workload missing, not opted in, without the
// env vars, or for which a rotation would destroy InsForge's stored secrets stalls.
func decideWorkloads(ai *integrationsv1alpha1.AuthIntegration, facts []workloadFacts, fingerprint string) ([]workloadPlan, error) {
	src := jwtSource(ai)
	// The key a container reads as JWT_SECRET changes when the operator generates it (at the
	// first rollout, and at each rotation) or points the container at an adopted Secret it did
	// not read before; without ENCRYPTION_KEY that makes InsForge's stored secrets unreadable.
	generated := ai.Spec.JWT.Generate != nil
	plans := make([]workloadPlan, 0, len(facts))
	for i, f := range facts {
		what := fmt.Sprintf("%s %s (insforge.workloads[%d])", f.ref.Kind, f.ref.Name, i)
		if f.obj == nil {
			return nil, kit.Stall(integrationsv1alpha1.ReasonWorkloadNotFound, "%s not found in namespace %s", what, ai.Namespace)
		}
		if f.obj.GetLabels()[integrationsv1alpha1.LabelSecretAccess] != "true" {
			return nil, kit.Stall(integrationsv1alpha1.ReasonWorkloadNotOptedIn,
				"%s is not opted in: label it %s=true so that the operator may point it at the JWT secret and roll it",
				what, integrationsv1alpha1.LabelSecretAccess)
		}
		if f.claimedBy != "" {
			return nil, kit.Stall(integrationsv1alpha1.ReasonWorkloadClaimed,
				"%s runs the JWT secret of AuthIntegration %s (annotation %s); one workload follows one integration",
				what, f.claimedBy, annotationJWTIntegration)
		}
		envs := f.ref.Env
		if len(envs) == 0 {
			envs = []string{defaultWorkloadEnv}
		}
		patched := f.obj.DeepCopyObject().(client.Object)
		tmpl := podTemplate(patched)
		found, changed := false, false
		for ci := range tmpl.Spec.Containers {
			c := &tmpl.Spec.Containers[ci]
			for ei := range c.Env {
				e := &c.Env[ei]
				if !slices.Contains(envs, e.Name) {
					continue
				}
				found = true
				if e.Name == defaultWorkloadEnv && !hasEnv(c, encryptionKeyEnv) && (generated || !readsFrom(e.ValueFrom, src)) {
					return nil, kit.Stall(integrationsv1alpha1.ReasonEncryptionFallback,
						"%s: container %s reads %s but sets no %s, so InsForge encrypts its stored secrets with the JWT secret and changing its key would make them unreadable; set %s in the container's env first (or adopt InsForge's own secret with jwt.existingSecretRef)",
						what, c.Name, e.Name, encryptionKeyEnv, encryptionKeyEnv)
				}
				want := &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: src.name}, Key: src.key,
				}}
				if e.Value != "" || !readsFrom(e.ValueFrom, src) {
					e.Value, e.ValueFrom = "", want
					changed = true
				}
			}
		}
		if !found {
			return nil, kit.Stall(integrationsv1alpha1.ReasonInvalidSpec, "%s: no container defines %v", what, envs)
		}
		if patched.GetAnnotations()[annotationJWTIntegration] != ai.Name {
			ann := patched.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann[annotationJWTIntegration] = ai.Name
			patched.SetAnnotations(ann)
			changed = true
		}
		if tmpl.Annotations[annotationJWTFingerprint] != fingerprint {
			if tmpl.Annotations == nil {
				tmpl.Annotations = map[string]string{}
			}
			tmpl.Annotations[annotationJWTFingerprint] = fingerprint
			changed = true
		}
		p := workloadPlan{ref: f.ref, live: f.obj}
		if changed {
			p.patched, p.state = patched, integrationsv1alpha1.ConsumerPending
			p.message = "pointing it at the current key"
		} else {
			done, msg := rolledOut(f.obj)
			p.state, p.message = integrationsv1alpha1.ConsumerRolling, msg
			if done {
				p.state = integrationsv1alpha1.ConsumerCurrent
			}
		}
		plans = append(plans, p)
	}
	return plans, nil
}

func hasEnv(c *corev1.Container, name string) bool {
	return slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
}

func readsFrom(v *corev1.EnvVarSource, src secretSource) bool {
	return v != nil && v.SecretKeyRef != nil && v.SecretKeyRef.Name == src.name && v.SecretKeyRef.Key == src.key &&
		!ptr.Deref(v.SecretKeyRef.Optional, false)
}

func podTemplate(obj client.Object) *corev1.PodTemplateSpec {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template
	case *appsv1.StatefulSet:
		return &o.Spec.Template
	}
	panic(fmt.Sprintf("no pod template in %T", obj))
}

// rolledOut reports whether every pod of the workload runs its current template: nothing of an
// older revision is left to verify tokens with the old key.
func rolledOut(obj client.Object) (bool, string) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		ok, msg := kit.DeploymentAvailable(o)
		if ok && o.Status.Replicas > o.Status.UpdatedReplicas {
			return false, fmt.Sprintf("Deployment %s: %d pod(s) of the previous template still running", o.Name, o.Status.Replicas-o.Status.UpdatedReplicas)
		}
		return ok, msg
	case *appsv1.StatefulSet:
		want, s := ptr.Deref(o.Spec.Replicas, 1), o.Status
		switch {
		case s.ObservedGeneration < o.Generation:
			return false, fmt.Sprintf("StatefulSet %s: generation %d not observed yet", o.Name, o.Generation)
		case s.UpdateRevision != "" && s.CurrentRevision != s.UpdateRevision:
			return false, fmt.Sprintf("StatefulSet %s: %d of %d replicas updated", o.Name, s.UpdatedReplicas, want)
		case s.ReadyReplicas < want:
			return false, fmt.Sprintf("StatefulSet %s: %d of %d replicas ready", o.Name, s.ReadyReplicas, want)
		}
		return true, fmt.Sprintf("StatefulSet %s: %d of %d replicas ready", o.Name, s.ReadyReplicas, want)
	}
	return false, "unknown workload kind"
}

// patchWorkload writes a planned workload change as a strategic merge patch against what was
// read: only the env vars and the annotation the plan changed are sent.
func (r *Reconciler) patchWorkload(ctx context.Context, p workloadPlan) error {
	if err := r.Client.Patch(ctx, p.patched, client.StrategicMergeFrom(p.live)); err != nil {
		return fmt.Errorf("updating %s %s: %w", p.ref.Kind, p.ref.Name, err)
	}
	return nil
}

// allCurrent reports whether every workload runs the current key.
func allCurrent(plans []workloadPlan) bool {
	for _, p := range plans {
		if p.state != integrationsv1alpha1.ConsumerCurrent {
			return false
		}
	}
	return true
}
