package paymentroute

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	gwconfig "github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/pgpool"
)

// secretRefs makes a change of a referenced Secret reconcile the route.
var secretRefs = kit.Refs[*v1alpha1.PaymentRoute]{
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
	// gatewayRole is the user of database.gatewayConnectionSecretRef's URL ("" when unset).
	gatewayRole string
	// versions maps each Secret's name to its resourceVersion, for the rollout hash.
	versions map[string]string
}

// readSecrets reads every referenced Secret. A missing Secret or key, or a Secret that is not
// opted in, is a kit.StalledError that names the Secret and the keys, never a value. Secrets the
// gateway gets but the operator does not read are checked the same way: mounting one is using it.
func readSecrets(ctx context.Context, c kit.SecretReader, route *v1alpha1.PaymentRoute) (routeSecrets, error) {
	out := routeSecrets{versions: map[string]string{}}
	var missing []string
	for i, need := range secretNeeds(route) {
		sec, err := c.Get(ctx, types.NamespacedName{Namespace: route.Namespace, Name: need.name}, kit.UseReference)
		if apierrors.IsNotFound(err) {
			return out, kit.Stall(v1alpha1.ReasonSecretNotFound, "Secret %q not found in namespace %q", need.name, route.Namespace)
		}
		if errors.Is(err, kit.ErrSecretNotOptedIn) {
			return out, kit.Stall(v1alpha1.ReasonSecretNotOptedIn, "%s", kit.NotOptedInMessage(fmt.Sprintf("Secret %q", need.name)))
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
		// The gateway's own connection is the need that mounts the database URL when a
		// gateway connection is set (see secretNeeds); the operator keeps only its role.
		if gw := route.Spec.Database.GatewayConnectionSecretRef; gw != nil && i > 0 && len(need.keys) == 1 && need.keys[0].env == gwconfig.EnvDatabaseURL &&
			len(sec.Data[need.keys[0].key]) > 0 {
			cfg, err := pgconn.ParseConfig(strings.TrimSpace(string(sec.Data[need.keys[0].key])))
			if err != nil { // pgx's message may quote the value: say nothing of it
				return out, kit.Stall(v1alpha1.ReasonInvalidSpec, "Secret %q key %q (database.gatewayConnectionSecretRef): %v",
					gw.Name, need.keys[0].key, pgpool.ErrInvalidDSN)
			}
			out.gatewayRole = cfg.User
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return out, kit.Stall(v1alpha1.ReasonSecretKeyMissing, "%s", strings.Join(missing, "; "))
	}
	return out, nil
}
