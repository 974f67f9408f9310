package kit

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// SpecChanges lets through the events that ask for a reconcile of the resource itself: a new
// generation or an annotation change (the requestedAt annotation). Status writes change
// neither, so a reconcile's own write does not trigger another.
func SpecChanges() builder.Predicates {
	return builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))
}

// Options are the controller options every kind uses: concurrency (most of a reconcile waits on
// a database or a chain node, so a slow one holds one worker, not all) and a failure backoff from
// 1 s to 5 min instead of controller-runtime's 5 ms start.
func Options(concurrency int) controller.Options {
	return controller.Options{
		MaxConcurrentReconciles: max(concurrency, 1),
		RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute),
	}
}

// Refs makes a change of a Secret (or of another kind, Of) reconcile the resources that
// reference it. It indexes objects of obj's kind by the names Refs returns, and its Handler maps
// an event to the resources of the object's namespace that name it.
type Refs[T client.Object] struct {
	// Index is the field index name, e.g. ".spec.secretRefs".
	Index string
	// List is an empty list of the kind, e.g. &v1alpha1.PaymentRouteList{}.
	List func() client.ObjectList
	// Refs are the names of the objects a resource reads or writes.
	Refs func(T) []string
	// Of is the kind referenced; nil means Secrets.
	Of client.Object
}

// Setup registers the index with the manager.
func (s Refs[T]) Setup(ctx context.Context, mgr ctrl.Manager, obj T) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, obj, s.Index, func(o client.Object) []string {
		return s.Refs(o.(T))
	})
	if err != nil {
		return fmt.Errorf("indexing %T by Secret: %w", obj, err)
	}
	return nil
}

// Watch adds the watch to a controller builder. The creation of an object is not sent to the
// resource that controls it: that resource created it in a reconcile that goes on with it,
// and a second reconcile right after would read the resource from a cache that has not yet seen
// the first one's status write, so it would do the work again and write the same status twice.
func (s Refs[T]) Watch(b *builder.Builder, c client.Reader) *builder.Builder {
	var of client.Object = &corev1.Secret{}
	if s.Of != nil {
		of = s.Of
	}
	return b.Watches(of, s.handler(c))
}

func (s Refs[T]) handler(c client.Reader) handler.EventHandler {
	enqueue := func(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request], skip types.UID) {
		for _, ref := range s.referrers(ctx, c, o) {
			if skip == "" || ref.GetUID() != skip {
				q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(ref)})
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			var creator types.UID
			if owner := metav1.GetControllerOf(e.Object); owner != nil {
				creator = owner.UID
			}
			enqueue(ctx, e.Object, q, creator)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.ObjectNew, q, "")
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q, "")
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q, "")
		},
	}
}

// referrers are the resources in the object's namespace that name it.
func (s Refs[T]) referrers(ctx context.Context, c client.Reader, o client.Object) []client.Object {
	list := s.List()
	if err := c.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{s.Index: o.GetName()}); err != nil {
		logf.FromContext(ctx).Error(err, "Listing the resources that reference an object", "name", o.GetName())
		return nil
	}
	var out []client.Object
	_ = meta.EachListItem(list, func(item runtime.Object) error {
		if co, ok := item.(client.Object); ok {
			out = append(out, co)
		}
		return nil
	})
	return out
}
