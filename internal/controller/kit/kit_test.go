package kit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
)

func TestObjectKeyRoundTrips(t *testing.T) {
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "weather"}}
	k := ObjectKey(obj)
	if k != "shop/weather" {
		t.Fatalf("ObjectKey = %q", k)
	}
	if got, ok := ParseObjectKey(k); !ok || got != (types.NamespacedName{Namespace: "shop", Name: "weather"}) {
		t.Fatalf("ParseObjectKey(%q) = %v, %v", k, got, ok)
	}
	for _, bad := range []string{"", "shop", "/weather", "shop/", "a/b/c"} {
		if _, ok := ParseObjectKey(bad); ok {
			t.Errorf("ParseObjectKey(%q) accepted", bad)
		}
	}
}

func TestClipKeepsUTF8AndTheLimit(t *testing.T) {
	if Clip("short") != "short" {
		t.Fatal("a short message was changed")
	}
	long := strings.Repeat("é", MaxMessage) // 2 bytes each
	c := Clip(long)
	if len(c) > MaxMessage || !utf8.ValidString(c) || !strings.HasSuffix(c, "…") {
		t.Fatalf("Clip: %d bytes, valid %v", len(c), utf8.ValidString(c))
	}
}

func TestChildNameFitsAServiceAndStaysDistinct(t *testing.T) {
	if ChildName("weather", "-gateway") != "weather-gateway" {
		t.Fatal("a short name was changed")
	}
	long := strings.Repeat("a", 70)
	a, b := ChildName(long, "-gateway"), ChildName(long+"b", "-gateway")
	if len(a) > 63 || !strings.HasSuffix(a, "-gateway") || a == b {
		t.Fatalf("ChildName: %q, %q", a, b)
	}
}

func TestProblemClasses(t *testing.T) {
	st := Stall("SecretNotFound", "Secret %q not found", "db")
	wrapped := fmt.Errorf("reading: %w", st)
	if got, ok := AsStalled(wrapped); !ok || got.Reason != "SecretNotFound" || got.Message != `Secret "db" not found` {
		t.Fatalf("AsStalled = %+v, %v", got, ok)
	}
	if IsAPIError(wrapped) || IsAPIError(nil) || IsAPIError(errors.New("database down")) {
		t.Fatal("not an API error, yet classified as one")
	}
	if !IsAPIError(fmt.Errorf("patching: %w", apierrors.NewConflict(corev1.Resource("secrets"), "db", errors.New("changed")))) {
		t.Fatal("a conflict is an API error")
	}
}

func TestSecretCreationIsNotSentToTheResourceThatCreatedIt(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := integrationsv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	refs := SecretRefs[*integrationsv1alpha1.AuthIntegration]{
		Index: ".spec.secrets",
		List:  func() client.ObjectList { return &integrationsv1alpha1.AuthIntegrationList{} },
		Refs:  func(*integrationsv1alpha1.AuthIntegration) []string { return []string{"shared"} },
	}
	creator := &integrationsv1alpha1.AuthIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creator", UID: "uid-creator"}}
	reader := &integrationsv1alpha1.AuthIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "reader", UID: "uid-reader"}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(creator, reader).
		WithIndex(&integrationsv1alpha1.AuthIntegration{}, refs.Index, func(o client.Object) []string {
			return refs.Refs(o.(*integrationsv1alpha1.AuthIntegration))
		}).Build()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "shared", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: "integrations.insforge.dev/v1alpha1", Kind: "AuthIntegration", Name: "creator", UID: "uid-creator", Controller: ptr.To(true),
	}}}}
	queued := func(send func(handler.EventHandler, workqueue.TypedRateLimitingInterface[reconcile.Request])) []string {
		q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
		defer q.ShutDown()
		send(refs.handler(c), q)
		var names []string
		for q.Len() > 0 {
			req, _ := q.Get()
			names = append(names, req.Name)
			q.Done(req)
		}
		slices.Sort(names)
		return names
	}
	ctx := context.Background()
	if got := queued(func(h handler.EventHandler, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		h.Create(ctx, event.CreateEvent{Object: sec}, q)
	}); !slices.Equal(got, []string{"reader"}) {
		t.Fatalf("creation queued %v, want only the reader", got)
	}
	if got := queued(func(h handler.EventHandler, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		h.Update(ctx, event.UpdateEvent{ObjectOld: sec, ObjectNew: sec}, q)
		h.Delete(ctx, event.DeleteEvent{Object: sec}, q)
	}); !slices.Equal(got, []string{"creator", "reader"}) {
		t.Fatalf("update and deletion queued %v, want both", got)
	}
}

func TestAppliedRecordsIgnoreStatusWritesOfChildrenWithAGeneration(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	owner := types.NamespacedName{Namespace: "ns", Name: "route"}
	render := func() []client.Object {
		meta := func(name string) metav1.ObjectMeta {
			return metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{"app": "gw"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "X", Name: "route", UID: "uid-route", Controller: ptr.To(true)}}}
		}
		return []client.Object{&corev1.ConfigMap{ObjectMeta: meta("gw")}, &appsv1.Deployment{ObjectMeta: meta("gw")}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(render()...).Build()
	ctx := context.Background()
	live := func() (*corev1.ConfigMap, *appsv1.Deployment) {
		var cm corev1.ConfigMap
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "gw"}, &cm); err != nil {
			t.Fatal(err)
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "gw"}, &d); err != nil {
			t.Fatal(err)
		}
		return &cm, &d
	}
	var a AppliedRecords
	record := func() {
		cm, d := live()
		d.Generation = 3
		if err := c.Update(ctx, d); err != nil {
			t.Fatal(err)
		}
		cm, d = live()
		a.Record(owner, "digest", []client.Object{cm, d})
	}
	record()
	if !a.Unchanged(ctx, c, owner, "digest", render()) {
		t.Fatal("children as applied count as changed")
	}
	if a.Unchanged(ctx, c, owner, "other", render()) {
		t.Fatal("a new rendering counts as unchanged")
	}

	_, d := live()
	d.Status.AvailableReplicas = 1 // the Deployment controller's write
	d.Annotations = map[string]string{"deployment.kubernetes.io/revision": "1"}
	if err := c.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !a.Unchanged(ctx, c, owner, "digest", render()) {
		t.Fatal("a status write and an annotation the operator does not render count as a change")
	}

	for name, edit := range map[string]func(*corev1.ConfigMap, *appsv1.Deployment) client.Object{
		"a new generation":            func(_ *corev1.ConfigMap, d *appsv1.Deployment) client.Object { d.Generation = 4; return d },
		"a rendered label removed":    func(_ *corev1.ConfigMap, d *appsv1.Deployment) client.Object { d.Labels = nil; return d },
		"the owner reference removed": func(_ *corev1.ConfigMap, d *appsv1.Deployment) client.Object { d.OwnerReferences = nil; return d },
		"any write of a generationless": func(cm *corev1.ConfigMap, _ *appsv1.Deployment) client.Object {
			cm.Data = map[string]string{"k": "v"}
			return cm
		},
	} {
		record()
		cm, d := live()
		if err := c.Update(ctx, edit(cm, d)); err != nil {
			t.Fatal(err)
		}
		if a.Unchanged(ctx, c, owner, "digest", render()) {
			t.Errorf("%s counts as unchanged", name)
		}
	}
}
