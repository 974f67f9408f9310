package authintegration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
	"github.com/insforge/integrations-operator/internal/rls"
)

// Defaults applied by the controller when the API server did not (objects created before a
// default existed, or clients that skip defaulting).
const (
	defaultDriftCheckInterval = 5 * time.Minute
	defaultGracePeriod        = 24 * time.Hour
)

// objectKey is the integration's key in the cluster.
func objectKey(ai *integrationsv1alpha1.AuthIntegration) types.NamespacedName {
	return types.NamespacedName{Namespace: ai.Namespace, Name: ai.Name}
}

// rlsSpec maps the resource into the database engine's desired state.
func rlsSpec(ai *integrationsv1alpha1.AuthIntegration) rls.Spec {
	s := rls.Spec{
		Name:     ai.Name,
		Owner:    kit.ObjectKey(ai), // persisted in policy comments and advisory locks
		Provider: rls.Provider(ai.Spec.Provider),
		Role:     ai.Spec.Database.Role,
	}
	for _, t := range ai.Spec.Tables {
		cmds := make([]rls.Command, len(t.Policies))
		for i, p := range t.Policies {
			cmds[i] = rls.Command(p)
		}
		s.Tables = append(s.Tables, rls.Table{
			Schema:       t.Schema,
			Name:         t.Name,
			UserIDColumn: t.UserIDColumn,
			Commands:     cmds,
			// The API promises every managed table a TEXT user id column.
			ManageColumn: true,
			Create:       t.CreateIfMissing,
		})
	}
	return s
}

// rlsMode maps the spec's mode; empty means apply, like the API default.
func rlsMode(ai *integrationsv1alpha1.AuthIntegration) rls.Mode {
	if ai.Spec.Mode == integrationsv1alpha1.ModeObserve {
		return rls.ModeObserve
	}
	return rls.ModeApply
}

// specHash identifies a desired database state, so that differences found later for the same
// hash are drift rather than a first apply.
func specHash(s rls.Spec) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("hashing the desired state: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])[:16], nil
}

// driftInterval is how long to wait before observing the database again.
func driftInterval(ai *integrationsv1alpha1.AuthIntegration) time.Duration {
	if d := ai.Spec.DriftCheckInterval; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return defaultDriftCheckInterval
}

// rotationPolicy maps the generated secret's rotation settings.
func rotationPolicy(g *integrationsv1alpha1.GeneratedJWTSecret) jwtsecret.Policy {
	r := g.Rotation
	if r == nil {
		return jwtsecret.Policy{}
	}
	p := jwtsecret.Policy{Trigger: r.Trigger, GracePeriod: defaultGracePeriod}
	if r.Interval != nil {
		p.Interval = r.Interval.Duration
	}
	if r.GracePeriod != nil {
		p.GracePeriod = r.GracePeriod.Duration
	}
	return p
}

// exportKey is the data key of an export, with the default applied.
func exportKey(e integrationsv1alpha1.SecretExport) string {
	if e.Key == "" {
		return integrationsv1alpha1.DefaultExportKey
	}
	return e.Key
}

// referencedSecrets lists every Secret name the integration reads or writes, for the watch index.
func referencedSecrets(ai *integrationsv1alpha1.AuthIntegration) []string {
	names := []string{ai.Spec.Database.ConnectionSecretRef.Name}
	if g := ai.Spec.JWT.Generate; g != nil {
		names = append(names, g.SecretName)
	}
	if e := ai.Spec.JWT.ExistingSecretRef; e != nil {
		names = append(names, e.Name)
	}
	for _, e := range ai.Spec.Exports {
		names = append(names, e.SecretName)
	}
	if c := ai.Spec.Clerk; c != nil && c.SecretKeyRef != nil {
		names = append(names, c.SecretKeyRef.Name)
	}
	if a := ai.Spec.Auth0; a != nil && a.Management != nil {
		names = append(names, a.Management.CredentialsSecretRef.Name)
	}
	return names
}
