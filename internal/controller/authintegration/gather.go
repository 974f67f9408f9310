package authintegration

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
)

// secretRefs makes a change of a referenced Secret reconcile the integration.
var secretRefs = kit.Refs[*v1alpha1.AuthIntegration]{
	Index: ".spec.authSecretRefs",
	List:  func() client.ObjectList { return &v1alpha1.AuthIntegrationList{} },
	Refs:  referencedSecrets,
}

// workloadRefs makes a change of a named InsForge Deployment (a rollout progressing) reconcile
// the integration at once, so the signers switch as soon as the workloads run the new key.
// StatefulSets are polled instead (see rolloutPoll): watching them would cache every one.
var workloadRefs = kit.Refs[*v1alpha1.AuthIntegration]{
	Index: ".spec.insforgeDeployments",
	List:  func() client.ObjectList { return &v1alpha1.AuthIntegrationList{} },
	Refs:  insforgeDeployments,
	Of:    &appsv1.Deployment{},
}

func insforgeDeployments(ai *v1alpha1.AuthIntegration) []string {
	if ai.Spec.InsForge == nil {
		return nil
	}
	var names []string
	for _, w := range ai.Spec.InsForge.Workloads {
		if w.Kind == v1alpha1.KindDeployment {
			names = append(names, w.Name)
		}
	}
	return names
}

// readSecret is one Secret as read: its content, or a new empty Secret named like it when it
// does not exist. The values are key material: they go into Secrets and nowhere else.
type readSecret struct {
	secret corev1.Secret
	exists bool
}

// facts is what one reconcile read before deciding anything.
type facts struct {
	// jwt is the generated or adopted JWT Secret; jwtErr a read failure.
	jwt    readSecret
	jwtErr error
	// exports are the export Secrets, in spec order; exportsErr the first read failure.
	exports    []readSecret
	exportsErr error
	// dsn is the database connection URL (a secret); dsnErr says why it is not there.
	dsn    string
	dsnErr error

	// workloads are the InsForge workloads; workloadsErr a read failure.
	workloads    []workloadFacts
	workloadsErr error
	// signing is the Secret holding the key the signers use (read when there are signers).
	signing    readSecret
	signingErr error
	// providerCreds are the provider API credentials (secrets), providerErr why they are missing.
	providerCreds map[string]string
	providerErr   error
	// refused says why the manager's allow-lists refuse the exchange image or a URL.
	refused error
}

// gather reads every Secret the integration reads or writes.
func (r *Reconciler) gather(ctx context.Context, ai *v1alpha1.AuthIntegration) facts {
	var f facts
	switch jwt := ai.Spec.JWT; {
	case jwt.Generate != nil:
		f.jwt, f.jwtErr = r.readSecret(ctx, ai.Namespace, jwt.Generate.SecretName, "the JWT Secret", kit.UseOwn)
	case jwt.ExistingSecretRef != nil:
		f.jwt, f.jwtErr = r.readSecret(ctx, ai.Namespace, jwt.ExistingSecretRef.Name, "the JWT Secret", kit.UseReference)
	}
	for _, e := range ai.Spec.Exports {
		s, err := r.readSecret(ctx, ai.Namespace, e.SecretName, "the export Secret", kit.UseOwn)
		if err != nil {
			f.exportsErr = err
			break
		}
		f.exports = append(f.exports, s)
	}
	f.dsn, f.dsnErr = r.connectionDSN(ctx, ai)
	f.workloads, f.workloadsErr = r.readWorkloads(ctx, ai)
	if hasSigners(ai) {
		f.signing, f.signingErr = r.readSecret(ctx, ai.Namespace, signingSecretName(ai.Name), "the signing Secret", kit.UseOwn)
	}
	// The allow-lists are checked before a credential is read or a URL handed to a pod.
	if f.refused = r.checkAllowed(ai); f.refused == nil {
		f.providerCreds, f.providerErr = r.providerCredentials(ctx, ai)
	}
	return f
}

// checkAllowed applies the manager's allow-lists to the exchange's image and to every URL the
// operator or the exchange would call.
func (r *Reconciler) checkAllowed(ai *v1alpha1.AuthIntegration) error {
	if x := ai.Spec.Exchange; x != nil {
		if img := x.Image; img != "" && img != r.Exchange.Image && !r.Exchange.Images.Allows(img) {
			return kit.Stall(v1alpha1.ReasonImageNotAllowed,
				"exchange.image %q is not allowed: the manager runs only its own image or those in --gateway-image-allow", img)
		}
		iss, err := exchangeIssuer(ai)
		if err != nil {
			return err
		}
		if err := r.checkEgress("the exchange's key set URL", iss.JWKSURL); err != nil {
			return err
		}
	}
	for what, u := range providerURLs(ai) {
		if err := r.checkEgress(what, u); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) checkEgress(what, u string) error {
	if u == "" || r.Egress.Allows(u) {
		return nil
	}
	return kit.Stall(v1alpha1.ReasonURLNotAllowed, "%s %q is not allowed: its origin is not in the manager's --egress-allow (%s)",
		what, u, r.Egress.String())
}

// readSecret reads a Secret the integration writes (or adopts); a missing one is returned empty
// with exists false. One that exists without opting in (kit.SecretReader) is never read or
// written: the integration stalls until it is labelled or another name is chosen.
func (r *Reconciler) readSecret(ctx context.Context, ns, name, what string, use kit.SecretUse) (readSecret, error) {
	var s readSecret
	sec, err := r.secrets().Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, use)
	switch {
	case apierrors.IsNotFound(err):
		s.secret.Namespace, s.secret.Name = ns, name
		return s, nil
	case errors.Is(err, kit.ErrSecretNotOptedIn):
		return s, kit.Stall(v1alpha1.ReasonSecretNotOptedIn, "%s", kit.NotOptedInMessage(fmt.Sprintf("%s %s", what, name)))
	case err != nil:
		return s, fmt.Errorf("reading %s %s: %w", what, name, err)
	}
	s.secret, s.exists = *sec, true
	return s, nil
}

// connectionDSN reads the connection URL from the referenced Secret. A missing Secret or key is a
// kit.StalledError naming them; the value never leaves this function except to the pool cache.
func (r *Reconciler) connectionDSN(ctx context.Context, ai *v1alpha1.AuthIntegration) (string, error) {
	ref := ai.Spec.Database.ConnectionSecretRef
	key := ref.KeyOrDefault(v1alpha1.DefaultConnectionSecretKey)
	sec, err := r.secrets().Get(ctx, types.NamespacedName{Namespace: ai.Namespace, Name: ref.Name}, kit.UseReference)
	switch {
	case apierrors.IsNotFound(err):
		return "", kit.Stall(v1alpha1.ReasonSecretNotFound,
			"Secret %s (database.connectionSecretRef) not found in namespace %s", ref.Name, ai.Namespace)
	case errors.Is(err, kit.ErrSecretNotOptedIn):
		return "", kit.Stall(v1alpha1.ReasonSecretNotOptedIn, "%s",
			kit.NotOptedInMessage(fmt.Sprintf("Secret %s (database.connectionSecretRef)", ref.Name)))
	case err != nil:
		return "", fmt.Errorf("reading the connection Secret %s: %w", ref.Name, err)
	}
	dsn := string(sec.Data[key])
	if dsn == "" {
		return "", kit.Stall(v1alpha1.ReasonSecretKeyMissing,
			"Secret %s (database.connectionSecretRef) has no key %s", ref.Name, key)
	}
	return dsn, nil
}
