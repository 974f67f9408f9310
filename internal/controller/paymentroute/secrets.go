package paymentroute

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
)

// secretRefs makes a change of a referenced Secret reconcile the route.
var secretRefs = kit.SecretRefs[*v1alpha1.PaymentRoute]{
	Index: ".spec.paymentRouteSecretRefs",
	List:  func() client.ObjectList { return &v1alpha1.PaymentRouteList{} },
	Refs:  secretNames,
}

// secretNames are the names the Secret watch maps back to the route.
func secretNames(route *v1alpha1.PaymentRoute) []string {
	seen := map[string]bool{}
	var names []string
	for _, n := range secretNeeds(route) {
		if !seen[n.name] {
			seen[n.name] = true
			names = append(names, n.name)
		}
	}
	return names
}

// routeSecrets is what the reconciler learned from the referenced Secrets.
type routeSecrets struct {
	// dsn is the ledger database URL. It is a secret: never log, event or report it.
	dsn string
	// versions maps each Secret's name to its resourceVersion, for the rollout hash.
	versions map[string]string
}

// readSecrets reads every referenced Secret. A missing Secret or key is a kit.StalledError that
// names the Secret and the keys, never a value.
func readSecrets(ctx context.Context, c client.Reader, route *v1alpha1.PaymentRoute) (routeSecrets, error) {
	out := routeSecrets{versions: map[string]string{}}
	var missing []string
	for i, need := range secretNeeds(route) {
		var sec corev1.Secret
		err := c.Get(ctx, types.NamespacedName{Namespace: route.Namespace, Name: need.name}, &sec)
		if apierrors.IsNotFound(err) {
			return out, kit.Stall(v1alpha1.ReasonSecretNotFound, "Secret %q not found in namespace %q", need.name, route.Namespace)
		}
		if err != nil {
			return out, fmt.Errorf("reading Secret %q: %w", need.name, err)
		}
		out.versions[need.name] = sec.ResourceVersion
		for _, k := range need.keys {
			if len(sec.Data[k.key]) == 0 {
				missing = append(missing, fmt.Sprintf("Secret %q has no key %q", need.name, k.key))
			}
		}
		if i == 0 { // the database connection comes first
			out.dsn = strings.TrimSpace(string(sec.Data[need.keys[0].key]))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return out, kit.Stall(v1alpha1.ReasonSecretKeyMissing, "%s", strings.Join(missing, "; "))
	}
	return out, nil
}
