package kit

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
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

// Watch adds the Secret watch to a controller builder.
func (s Refs[T]) Watch(b *builder.Builder, c client.Reader) *builder.Builder {
	var of client.Object = &corev1.Secret{}
	if s.Of != nil {
		of = s.Of
	}
	return b.Watches(of, handler.EnqueueRequestsFromMapFunc(s.mapper(c)))
}

func (s Refs[T]) mapper(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := s.List()
		if err := c.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{s.Index: o.GetName()}); err != nil {
			logf.FromContext(ctx).Error(err, "Listing the resources that reference a Secret", "secret", o.GetName())
			return nil
		}
		var reqs []reconcile.Request
		_ = meta.EachListItem(list, func(item runtime.Object) error {
			if co, ok := item.(client.Object); ok {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(co)})
			}
			return nil
		})
		return reqs
	}
}
