package kit

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/insforge/integrations-operator/api/v1alpha1"
)

// SecretAccessOwned is the value of v1alpha1.LabelSecretAccess on the Secrets the operator
// writes (generated JWT secrets, exports): its cache sees them, but no resource may reference
// them, so a route editor cannot mount another integration's JWT secret, say. A user who wants
// to share one sets the label to "true".
const SecretAccessOwned = "owned"

// ErrSecretNotOptedIn is a Secret that exists but that a resource may not reference: it does
// not carry v1alpha1.LabelSecretAccess=true. The operator neither reads, mounts nor sends it.
var ErrSecretNotOptedIn = errors.New("the Secret is not opted in")

// SecretCache is the manager's cache configuration for Secrets: only opted-in ones and the
// operator's own are listed, watched and kept in memory, so the cluster's other Secrets cost it
// nothing.
func SecretCache() cache.ByObject {
	req, err := labels.NewRequirement(v1alpha1.LabelSecretAccess, selection.In, []string{"true", SecretAccessOwned})
	if err != nil {
		panic(err) // constant input
	}
	return cache.ByObject{Label: labels.NewSelector().Add(*req)}
}

// MarkSecretAccess labels a Secret the operator writes, so that its cache (SecretCache) sees it.
// A Secret the user opted in keeps its "true".
func MarkSecretAccess(sec *corev1.Secret) {
	if sec.Labels == nil {
		sec.Labels = map[string]string{}
	}
	if sec.Labels[v1alpha1.LabelSecretAccess] != "true" {
		sec.Labels[v1alpha1.LabelSecretAccess] = SecretAccessOwned
	}
	sec.Labels[LabelManagedBy] = ManagerName
}

// SecretUse is what a resource does with a Secret it names.
type SecretUse int

const (
	// UseReference: the operator reads it, mounts it or sends its values (connection URLs,
	// credentials, an adopted JWT secret). Only opted-in Secrets (LabelSecretAccess=true).
	UseReference SecretUse = iota
	// UseOwn: the operator writes it (a generated JWT secret, an export). Its own Secrets, or
	// opted-in ones.
	UseOwn
)

// SecretReader reads the Secrets resources name under the opt-in rule (SecretUse).
type SecretReader struct {
	// Client is the manager's client; with SecretCache its reads see only opted-in and own Secrets.
	Client client.Client
	// Live reads the API server directly, only after the cache missed: metadata only, to tell a
	// missing Secret from one that may not be used, and the whole Secret only for one the
	// operator wrote before it labelled its Secrets (which it then labels). Nil means Client.
	Live client.Reader
}

// Get returns the Secret at key for use. A missing Secret is an apierrors NotFound error, one
// that may not be used that way ErrSecretNotOptedIn; neither reads its data.
func (r SecretReader) Get(ctx context.Context, key types.NamespacedName, use SecretUse) (*corev1.Secret, error) {
	var sec corev1.Secret
	err := r.Client.Get(ctx, key, &sec)
	if err == nil {
		if !usable(sec.Labels, use) {
			return nil, ErrSecretNotOptedIn
		}
		return &sec, nil
	}
	if !apierrors.IsNotFound(err) || r.Live == nil {
		return nil, err
	}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := r.Live.Get(ctx, key, meta); err != nil {
		return nil, err
	}
	if use != UseOwn || meta.Labels[LabelManagedBy] != ManagerName {
		return nil, ErrSecretNotOptedIn
	}
	// Written by an operator version that did not label its Secrets: label it, once.
	if err := r.Live.Get(ctx, key, &sec); err != nil {
		return nil, err
	}
	MarkSecretAccess(&sec)
	if err := r.Client.Update(ctx, &sec); err != nil {
		return nil, fmt.Errorf("labelling the operator's Secret %s for its cache: %w", key.Name, err)
	}
	return &sec, nil
}

func usable(l map[string]string, use SecretUse) bool {
	if l[v1alpha1.LabelSecretAccess] == "true" {
		return true
	}
	return use == UseOwn && (l[v1alpha1.LabelSecretAccess] == SecretAccessOwned || l[LabelManagedBy] == ManagerName)
}

// NotOptedInMessage says how to opt a Secret in; what names the reference, e.g. "Secret db
// (database.connectionSecretRef)".
func NotOptedInMessage(what string) string {
	return fmt.Sprintf("%s exists but is not labelled %s=true; the operator only uses Secrets that opt in, and never lets a resource reference the Secrets it writes for another (see docs/security.md)",
		what, v1alpha1.LabelSecretAccess)
}
