package kit

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/insforge/integrations-operator/api/v1alpha1"
)

// ErrSecretNotOptedIn is a Secret that exists but does not carry v1alpha1.LabelSecretAccess: the
// operator neither reads, mounts nor sends it, whatever a resource says.
var ErrSecretNotOptedIn = errors.New("the Secret is not opted in")

// SecretCache is the manager's cache configuration for Secrets: only opted-in ones are listed,
// watched and kept in memory, so Secrets the operator may not use cost it nothing.
func SecretCache() cache.ByObject {
	return cache.ByObject{Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelSecretAccess: "true"})}
}

// MarkSecretAccess labels a Secret the operator writes, so that its own cache (SecretCache) sees it.
func MarkSecretAccess(sec *corev1.Secret) {
	if sec.Labels == nil {
		sec.Labels = map[string]string{}
	}
	sec.Labels[v1alpha1.LabelSecretAccess] = "true"
	sec.Labels[LabelManagedBy] = ManagerName
}

// SecretReader reads the Secrets resources name, under one rule: a Secret is used only if it is
// opted in (v1alpha1.LabelSecretAccess) or was written by the operator.
type SecretReader struct {
	// Client is the manager's client; with SecretCache its reads see only opted-in Secrets.
	Client client.Client
	// Live reads the API server directly (the manager's API reader), only after the cache missed:
	// metadata only, to tell a missing Secret from one that is not opted in, and the whole Secret
	// only for one the operator wrote before it labelled its Secrets (which it then labels). Nil
	// means Client (tests without a cache).
	Live client.Reader
}

// Get returns the Secret at key. A missing Secret is an apierrors NotFound error, one that is not
// opted in ErrSecretNotOptedIn; neither reads its data.
func (r SecretReader) Get(ctx context.Context, key types.NamespacedName) (*corev1.Secret, error) {
	var sec corev1.Secret
	err := r.Client.Get(ctx, key, &sec)
	if err == nil {
		if !usable(sec.Labels) {
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
	if meta.Labels[LabelManagedBy] != ManagerName {
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

func usable(l map[string]string) bool {
	return l[v1alpha1.LabelSecretAccess] == "true" || l[LabelManagedBy] == ManagerName
}

// NotOptedInMessage says how to opt a Secret in; what names the reference, e.g. "Secret db
// (database.connectionSecretRef)".
func NotOptedInMessage(what string) string {
	return fmt.Sprintf("%s exists but is not labelled %s=true; the operator only uses Secrets that opt in (see docs/security.md)",
		what, v1alpha1.LabelSecretAccess)
}
