package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// appliedRecord is what the reconciler last applied for a route: a digest of the rendered objects
// and the resourceVersions the API server answered with. While the digest is the same and the
// cached children still carry those versions, nothing changed on either side and the apply is
// skipped: a burst of ledger notifications triggers many reconciles, and each would otherwise send
// four no-op apply requests. Any edit of a child changes its resourceVersion, so drift is still
// taken back on the reconcile its watch event triggers.
type appliedRecord struct {
	digest   string
	versions map[string]string // by kind
}

// renderedDigest digests every rendered object, so any change to what would be applied shows.
func renderedDigest(objs *gatewayObjects) (string, error) {
	raw, err := json.Marshal([]any{objs.ConfigMap, objs.Deployment, objs.Service, objs.PDB})
	if err != nil {
		return "", fmt.Errorf("digesting the gateway objects: %w", err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// recordApplied remembers the versions the API server returned for the applied objects.
func (r *PaymentRouteReconciler) recordApplied(key types.NamespacedName, digest string, objs *gatewayObjects) {
	rec := appliedRecord{digest: digest, versions: map[string]string{
		"ConfigMap":           objs.ConfigMap.ResourceVersion,
		"Deployment":          objs.Deployment.ResourceVersion,
		"Service":             objs.Service.ResourceVersion,
		"PodDisruptionBudget": objs.PDB.ResourceVersion,
	}}
	r.mu.Lock()
	r.applied[key] = rec
	r.mu.Unlock()
}

// unchangedSinceApply reports whether the route's children are exactly as last applied. prev is
// the current Deployment (nil when absent). Errors count as "changed": the apply then decides.
func (r *PaymentRouteReconciler) unchangedSinceApply(ctx context.Context, key types.NamespacedName, digest string, prev *appsv1.Deployment) bool {
	r.mu.Lock()
	rec, ok := r.applied[key]
	r.mu.Unlock()
	if !ok || rec.digest != digest || prev == nil || prev.ResourceVersion != rec.versions["Deployment"] {
		return false
	}
	name := types.NamespacedName{Namespace: key.Namespace, Name: gatewayName(key.Name)}
	for kind, obj := range map[string]client.Object{
		"ConfigMap": &corev1.ConfigMap{}, "Service": &corev1.Service{}, "PodDisruptionBudget": &policyv1.PodDisruptionBudget{},
	} {
		if err := r.Client.Get(ctx, name, obj); err != nil || obj.GetResourceVersion() != rec.versions[kind] {
			return false
		}
	}
	return true
}
