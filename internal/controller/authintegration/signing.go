package authintegration

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	excfg "github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

// hasSigners reports whether anything signs InsForge tokens for the integration on the
// operator's behalf: the exchange, or a provider the operator configures.
func hasSigners(ai *integrationsv1alpha1.AuthIntegration) bool {
	return ai.Spec.Exchange != nil || providerSyncKind(ai) != ""
}

// decideSigningKey picks the key the signers use. It is the current JWT secret once every
// InsForge workload runs it (or at once when none is named): a signer must never be ahead of the
// verifier, or freshly issued tokens are refused. Until then it is the key the signing Secret
// already holds; a first signing Secret takes the current key (nothing signed before it).
func decideSigningKey(ai *integrationsv1alpha1.AuthIntegration, current string, workloads []workloadPlan, signing readSecret) string {
	if ai.Spec.InsForge == nil || allCurrent(workloads) {
		return current
	}
	if old := string(signing.secret.Data[excfg.SigningKeyName]); signing.exists && old != "" {
		return old
	}
	return current
}

// decideSigningSecret computes the signing Secret's content, or nil when it already holds key.
// It is the operator's alone: one it did not create is never written.
func decideSigningSecret(ai *integrationsv1alpha1.AuthIntegration, s readSecret, key string, scheme *runtime.Scheme) (*secretWrite, error) {
	sec := s.secret.DeepCopy()
	if !s.exists {
		if err := controllerutil.SetControllerReference(ai, sec, scheme); err != nil {
			return nil, fmt.Errorf("setting the owner of Secret %s: %w", sec.Name, err)
		}
	} else if !metav1.IsControlledBy(sec, ai) {
		return nil, kit.Stall(reasonExportNotOwned,
			"Secret %s exists and was not created by this integration; the operator keeps the signing key there and never overwrites a Secret it did not create: delete or rename it",
			sec.Name)
	}
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	if !setKey(sec.Data, excfg.SigningKeyName, key) && s.exists {
		return nil, nil
	}
	return &secretWrite{secret: sec, exists: s.exists, what: "the signing Secret"}, nil
}
