package authintegration

import (
	"bytes"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
)

// reasonExportNotOwned: an export names a Secret that exists and was not created by this
// integration; it is never overwritten.
const reasonExportNotOwned = "ExportSecretNotOwned"

// previousSuffix names the export key that carries the previous JWT secret during a rotation's
// grace period, e.g. INSFORGE_JWT_SECRET_PREVIOUS.
const previousSuffix = "_PREVIOUS"

// decideExport computes an export Secret's content: the JWT secret under the export's key, and
// the previous key during a grace period. It returns the Secret to write, or nil when it already
// holds exactly that. A Secret this integration did not create is never written.
func decideExport(ai *integrationsv1alpha1.AuthIntegration, e integrationsv1alpha1.SecretExport, s readSecret,
	jwt jwtOutcome, scheme *runtime.Scheme) (*secretWrite, error) {
	key := exportKey(e)
	sec := s.secret.DeepCopy()
	if !s.exists {
		if err := controllerutil.SetControllerReference(ai, sec, scheme); err != nil {
			return nil, fmt.Errorf("setting the owner of Secret %s: %w", e.SecretName, err)
		}
	} else if !metav1.IsControlledBy(sec, ai) {
		return nil, kit.Stall(reasonExportNotOwned,
			"export Secret %s exists and was not created by this integration; it is never overwritten: delete it or choose another secretName", e.SecretName)
	}
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	changed := !s.exists
	changed = setKey(sec.Data, key, jwt.current) || changed
	changed = setKey(sec.Data, key+previousSuffix, jwt.previous) || changed
	if !changed {
		return nil, nil
	}
	return &secretWrite{secret: sec, exists: s.exists, what: "the export Secret"}, nil
}

// setKey sets data[key] to value, or removes it when value is empty; it reports a change.
func setKey(data map[string][]byte, key, value string) bool {
	old, ok := data[key]
	if value == "" {
		delete(data, key)
		return ok
	}
	if ok && bytes.Equal(old, []byte(value)) {
		return false
	}
	data[key] = []byte(value)
	return true
}
