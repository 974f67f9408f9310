// Package ledgerwatch turns the ledger's notifications into reconcile requests: one LISTEN
// connection per ledger (database and channel), however many resources share it, and
// notifications coalesced so that a burst of payments costs one reconcile per resource.
package ledgerwatch

import (
	"context"
	"log/slog"
	"sync"

	"github.com/go-logr/logr"
	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/insforge/integrations-operator/internal/ledger"
)

// Hub runs the listeners of the ledgers its resources use and feeds their notifications into a
// controller's workqueue (Events). It is a manager.Runnable: listeners run while the manager
// runs (on the leader, as the reconcilers do) and stop when it stops. Pools belong to the
// caller (a pgpool.Cache): a listener takes one connection out of its pool for good.
//
// Notifications are coalesced before they reach the workqueue: the listener only marks a
// resource dirty, and one pump goroutine hands each dirty resource on once, however many
// payments arrived meanwhile. The workqueue then deduplicates again while a request waits.
type Hub struct {
	events chan event.GenericEvent
	// resolve maps a notification's route to the resource to reconcile; false drops it.
	resolve func(route string) (types.NamespacedName, bool)
	// object builds the event's object for a resource (the kind the controller watches).
	object func(types.NamespacedName) client.Object

	mu        sync.Mutex
	ctx       context.Context // set by Start; nil before
	listeners map[listenerKey]*listener
	users     map[types.NamespacedName]listenerKey
	dirty     map[types.NamespacedName]struct{}
	wake      chan struct{}
	log       *slog.Logger
}

// listenerKey identifies a ledger: the pool of its database and its channel.
type listenerKey struct {
	pool    *pgxpool.Pool
	channel string
}

type listener struct {
	key   listenerKey
	users map[types.NamespacedName]struct{}
	stop  context.CancelFunc // nil while not running
}

// New returns a hub. resolve maps a ledger row's route to the resource it belongs to; object
// builds the (empty but named) object an event carries.
func New(resolve func(route string) (types.NamespacedName, bool), object func(types.NamespacedName) client.Object) *Hub {
	return &Hub{
		events:    make(chan event.GenericEvent, 64),
		resolve:   resolve,
		object:    object,
		listeners: map[listenerKey]*listener{},
		users:     map[types.NamespacedName]listenerKey{},
		dirty:     map[types.NamespacedName]struct{}{},
		wake:      make(chan struct{}, 1),
		log:       slog.New(slog.DiscardHandler),
	}
}

// Events is the source of reconcile requests for resources whose ledger announced a change.
func (h *Hub) Events() <-chan event.GenericEvent { return h.events }

// Watch makes resource a user of the ledger on pool's database and channel, starting its
// listener when resource is the first user. A resource whose pool or channel changed is moved
// off its old ledger (whose listener stops after its last user).
func (h *Hub) Watch(resource types.NamespacedName, pool *pgxpool.Pool, channel string) {
	if channel == "" {
		channel = ledger.DefaultTable
	}
	key := listenerKey{pool: pool, channel: channel}
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.users[resource]; ok {
		if old == key {
			return
		}
		h.forgetLocked(resource)
	}
	l, ok := h.listeners[key]
	if !ok {
		l = &listener{key: key, users: map[types.NamespacedName]struct{}{}}
		h.listeners[key] = l
	}
	l.users[resource] = struct{}{}
	h.users[resource] = key
	if h.ctx != nil && l.stop == nil {
		h.startLocked(l)
	}
}

// Forget drops resource's use of its ledger, stopping the listener after the last user. Call
// it before releasing the resource's pool.
func (h *Hub) Forget(resource types.NamespacedName) {
	h.mu.Lock()
	h.forgetLocked(resource)
	delete(h.dirty, resource)
	h.mu.Unlock()
}

func (h *Hub) forgetLocked(resource types.NamespacedName) {
	key, ok := h.users[resource]
	if !ok {
		return
	}
	delete(h.users, resource)
	l := h.listeners[key]
	delete(l.users, resource)
	if len(l.users) > 0 {
		return
	}
	delete(h.listeners, key)
	if l.stop != nil {
		l.stop()
	}
}

// Listeners is the number of running listeners (tests check there is one per ledger).
func (h *Hub) Listeners() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.listeners {
		if l.stop != nil {
			n++
		}
	}
	return n
}

// startLocked runs the ledger's listener until the hub stops or its last user leaves.
func (h *Hub) startLocked(l *listener) {
	ctx, cancel := context.WithCancel(h.ctx)
	l.stop = cancel
	cfg := ledger.ListenConfig{
		Channel: l.key.channel,
		Logger:  h.log,
		// Notifications sent while the connection was down are lost: resync every user.
		OnConnect: func(context.Context) { h.markUsers(l) },
	}
	go func() {
		_ = ledger.Listen(ctx, l.key.pool, cfg, func(n ledger.Notification) {
			if r, ok := h.resolve(n.Route); ok {
				h.mark(r)
			}
		})
	}()
}

func (h *Hub) markUsers(l *listener) {
	h.mu.Lock()
	for r := range l.users {
		h.dirty[r] = struct{}{}
	}
	h.mu.Unlock()
	h.signal()
}

// mark records a resource as changed; it never blocks the listener.
func (h *Hub) mark(r types.NamespacedName) {
	h.mu.Lock()
	h.dirty[r] = struct{}{}
	h.mu.Unlock()
	h.signal()
}

func (h *Hub) signal() {
	select {
	case h.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Start runs the listeners and the pump until ctx ends, then stops every listener.
func (h *Hub) Start(ctx context.Context) error {
	h.mu.Lock()
	h.ctx = ctx
	h.log = slog.New(logr.ToSlogHandler(logf.FromContext(ctx).WithName("ledger-listener")))
	for _, l := range h.listeners {
		if l.stop == nil {
			h.startLocked(l)
		}
	}
	h.mu.Unlock()
	defer h.stopAll()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.wake:
		}
		h.mu.Lock()
		batch := make([]types.NamespacedName, 0, len(h.dirty))
		for r := range h.dirty {
			batch = append(batch, r)
		}
		clear(h.dirty)
		h.mu.Unlock()
		for _, r := range batch {
			select {
			case h.events <- event.GenericEvent{Object: h.object(r)}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

func (h *Hub) stopAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.listeners {
		if l.stop != nil {
			l.stop()
			l.stop = nil
		}
	}
}
