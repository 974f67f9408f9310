package kit

import (
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names the operator stamps on what it creates and reads from what users annotate.
const (
	// ManagerName is the field manager of server-side applies and the managed-by label value.
	ManagerName    = "integrations-operator"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// AnnotationRequestedAt asks for an immediate reconcile (`flux reconcile` and friends); its
	// value is echoed into status.lastHandledReconcileAt once handled.
	AnnotationRequestedAt = "reconcile.fluxcd.io/requestedAt"
)

// ObjectKey is the "namespace/name" that names a resource outside Kubernetes: in the ledger's
// route column, in policy comments, in advisory locks and in the gateway's config. It is
// persisted, so its form never changes.
func ObjectKey(obj client.Object) string {
	return types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}.String()
}

// ParseObjectKey reads an ObjectKey back; ok is false for anything else.
func ParseObjectKey(s string) (key types.NamespacedName, ok bool) {
	ns, name, found := strings.Cut(s, "/")
	if !found || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: ns, Name: name}, true
}

// RequestedAt returns the value of the requestedAt annotation, if the object has one.
func RequestedAt(obj client.Object) (string, bool) {
	v, ok := obj.GetAnnotations()[AnnotationRequestedAt]
	return v, ok
}
