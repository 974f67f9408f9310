package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
)

// routeSecretIndex indexes PaymentRoutes by every Secret name they reference.
const routeSecretIndex = ".spec.paymentRouteSecretRefs"

// secretNeed is one Secret a route reads and the keys it must hold.
type secretNeed struct {
	name string
	keys []string
}

// routeSecretNeeds lists the Secrets a route references with their required keys, in spec order.
// An http facilitator's headers Secret may hold any keys, so none is required.
func routeSecretNeeds(route *integrationsv1alpha1.PaymentRoute) []secretNeed {
	s := route.Spec
	db := s.Database.ConnectionSecretRef
	needs := []secretNeed{{name: db.Name, keys: []string{db.KeyOrDefault(integrationsv1alpha1.DefaultConnectionSecretKey)}}}
	switch f := s.Facilitator; {
	case f.OKX != nil:
		needs = append(needs, secretNeed{name: f.OKX.CredentialsSecretRef.Name, keys: []string{
			integrationsv1alpha1.OKXAPIKeyKey, integrationsv1alpha1.OKXSecretKeyKey, integrationsv1alpha1.OKXPassphraseKey,
		}})
	case f.Onchain != nil:
		k := f.Onchain.RelayerKeySecretRef
		needs = append(needs, secretNeed{name: k.Name, keys: []string{k.KeyOrDefault(integrationsv1alpha1.DefaultRelayerKeySecretKey)}})
	case f.HTTP != nil && f.HTTP.HeadersSecretRef != nil:
		needs = append(needs, secretNeed{name: f.HTTP.HeadersSecretRef.Name})
	}
	return needs
}

// routeSecretNames are the names the Secret watch maps back to the route.
func routeSecretNames(route *integrationsv1alpha1.PaymentRoute) []string {
	seen := map[string]bool{}
	var names []string
	for _, n := range routeSecretNeeds(route) {
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

// readRouteSecrets reads every referenced Secret. A missing Secret or key is a stalledError that
// names the Secret and the keys, never a value.
func readRouteSecrets(ctx context.Context, c client.Reader, route *integrationsv1alpha1.PaymentRoute) (routeSecrets, error) {
	out := routeSecrets{versions: map[string]string{}}
	var missing []string
	for i, need := range routeSecretNeeds(route) {
		var sec corev1.Secret
		err := c.Get(ctx, types.NamespacedName{Namespace: route.Namespace, Name: need.name}, &sec)
		if apierrors.IsNotFound(err) {
			return out, stalled(integrationsv1alpha1.ReasonSecretNotFound, "Secret %q not found in namespace %q", need.name, route.Namespace)
		}
		if err != nil {
			return out, fmt.Errorf("reading Secret %q: %w", need.name, err)
		}
		out.versions[need.name] = sec.ResourceVersion
		for _, k := range need.keys {
			if len(sec.Data[k]) == 0 {
				missing = append(missing, fmt.Sprintf("Secret %q has no key %q", need.name, k))
			}
		}
		if i == 0 { // the database connection comes first
			out.dsn = strings.TrimSpace(string(sec.Data[need.keys[0]]))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return out, stalled(integrationsv1alpha1.ReasonSecretKeyMissing, "%s", strings.Join(missing, "; "))
	}
	return out, nil
}
