package controller

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/go-logr/logr"
	"github.com/jackc/pgx/v5/pgxpool"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/ledger"
)

// ledgerPoolMaxConns bounds each database's pool: Migrate and Totals are one statement each, and
// the listener's connection is taken out of the pool for good.
const ledgerPoolMaxConns = 4

// ledgerHub shares one connection pool and ONE listener per ledger (database DSN and NOTIFY
// channel) between all routes that use it, and turns the ledger's notifications into reconcile
// requests. It is a manager.Runnable: listeners run while the manager runs (on the leader, as the
// reconcilers do) and everything is closed when it stops.
//
// Notifications are coalesced before they reach the workqueue: the listener only marks a route
// dirty, and one pump goroutine hands each dirty route on once, however many payments arrived
// meanwhile. The workqueue then deduplicates again while a request waits.
type ledgerHub struct {
	events chan event.GenericEvent

	mu      sync.Mutex
	ctx     context.Context // set by Start; nil before
	ledgers map[ledgerKey]*hubLedger
	users   map[types.NamespacedName]ledgerKey
	dirty   map[types.NamespacedName]struct{}
	wake    chan struct{}
	log     *slog.Logger
}

// ledgerKey identifies a ledger without holding its DSN (a secret) in a readable form.
type ledgerKey struct {
	dsn     [32]byte
	channel string
}

type hubLedger struct {
	pool    *pgxpool.Pool
	channel string
	users   map[types.NamespacedName]struct{}
	stop    context.CancelFunc // nil while the listener is not running
}

func newLedgerHub() *ledgerHub {
	return &ledgerHub{
		events:  make(chan event.GenericEvent, 64),
		ledgers: map[ledgerKey]*hubLedger{},
		users:   map[types.NamespacedName]ledgerKey{},
		dirty:   map[types.NamespacedName]struct{}{},
		wake:    make(chan struct{}, 1),
		log:     slog.New(slog.DiscardHandler),
	}
}

// Events is the source of reconcile requests for routes whose ledger announced a change.
func (h *ledgerHub) Events() <-chan event.GenericEvent { return h.events }

// Acquire returns the ledger of a route and its pool, opening the pool and starting its listener when the
// route is the first user. A route whose DSN or table changed is moved off its old ledger.
func (h *ledgerHub) Acquire(route types.NamespacedName, dsn string, opts ledger.Options) (*ledger.Ledger, *pgxpool.Pool, error) {
	channel := opts.Table
	if channel == "" {
		channel = ledger.DefaultTable
	}
	key := ledgerKey{dsn: sha256.Sum256([]byte(dsn)), channel: channel}
	var closeOld *hubLedger
	defer func() {
		if closeOld != nil {
			closeOld.close()
		}
	}()

	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.users[route]; ok && old != key {
		closeOld = h.releaseLocked(route)
	}
	hl, ok := h.ledgers[key]
	if !ok {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			// pgx's message may quote parts of the URL: say only that it is invalid.
			return nil, nil, errInvalidDSN
		}
		cfg.MaxConns = ledgerPoolMaxConns
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("opening a ledger pool: %w", err)
		}
		hl = &hubLedger{pool: pool, channel: channel, users: map[types.NamespacedName]struct{}{}}
		h.ledgers[key] = hl
	}
	hl.users[route] = struct{}{}
	h.users[route] = key
	if h.ctx != nil && hl.stop == nil {
		h.startLocked(hl)
	}
	l, err := ledger.New(hl.pool, opts)
	if err != nil {
		return nil, nil, err
	}
	return l, hl.pool, nil
}

// errInvalidDSN is returned for a connection string pgx cannot parse.
var errInvalidDSN = errors.New("the database connection string is not a valid PostgreSQL URL")

// Release drops a route's use of its ledger, closing the pool and listener after the last user.
func (h *ledgerHub) Release(route types.NamespacedName) {
	h.mu.Lock()
	hl := h.releaseLocked(route)
	delete(h.dirty, route)
	h.mu.Unlock()
	if hl != nil {
		hl.close()
	}
}

// releaseLocked returns the ledger to close when route was its last user.
func (h *ledgerHub) releaseLocked(route types.NamespacedName) *hubLedger {
	key, ok := h.users[route]
	if !ok {
		return nil
	}
	delete(h.users, route)
	hl := h.ledgers[key]
	delete(hl.users, route)
	if len(hl.users) > 0 {
		return nil
	}
	delete(h.ledgers, key)
	return hl
}

// Listeners is the number of running listeners (tests check there is one per database).
func (h *ledgerHub) Listeners() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, hl := range h.ledgers {
		if hl.stop != nil {
			n++
		}
	}
	return n
}

func (hl *hubLedger) close() {
	if hl.stop != nil {
		hl.stop()
	}
	hl.pool.Close()
}

// startLocked runs the ledger's listener until the hub stops or the ledger is released.
func (h *ledgerHub) startLocked(hl *hubLedger) {
	ctx, cancel := context.WithCancel(h.ctx)
	hl.stop = cancel
	cfg := ledger.ListenConfig{
		Channel: hl.channel,
		Logger:  h.log,
		// Notifications sent while the connection was down are lost: resync every user.
		OnConnect: func(context.Context) { h.markUsers(hl) },
	}
	go func() {
		_ = ledger.Listen(ctx, hl.pool, cfg, func(n ledger.Notification) {
			ns, name, ok := splitRoute(n.Route)
			if ok {
				h.mark(types.NamespacedName{Namespace: ns, Name: name})
			}
		})
	}()
}

func (h *ledgerHub) markUsers(hl *hubLedger) {
	h.mu.Lock()
	for r := range hl.users {
		h.dirty[r] = struct{}{}
	}
	h.mu.Unlock()
	h.signal()
}

// mark records a route as changed; it never blocks the listener.
func (h *ledgerHub) mark(route types.NamespacedName) {
	h.mu.Lock()
	h.dirty[route] = struct{}{}
	h.mu.Unlock()
	h.signal()
}

func (h *ledgerHub) signal() {
	select {
	case h.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Start runs the listeners and the pump until ctx ends, then closes every pool.
func (h *ledgerHub) Start(ctx context.Context) error {
	h.mu.Lock()
	h.ctx = ctx
	h.log = slog.New(logr.ToSlogHandler(logf.FromContext(ctx).WithName("ledger-listener")))
	for _, hl := range h.ledgers {
		if hl.stop == nil {
			h.startLocked(hl)
		}
	}
	h.mu.Unlock()
	defer h.closeAll()
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
			ev := event.GenericEvent{Object: &integrationsv1alpha1.PaymentRoute{
				ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: r.Name},
			}}
			select {
			case h.events <- ev:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

func (h *ledgerHub) closeAll() {
	h.mu.Lock()
	all := h.ledgers
	h.ledgers = map[ledgerKey]*hubLedger{}
	h.users = map[types.NamespacedName]ledgerKey{}
	h.mu.Unlock()
	for _, hl := range all {
		hl.close()
	}
}

// splitRoute parses a ledger row's "namespace/name".
func splitRoute(s string) (ns, name string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], i > 0 && i < len(s)-1
		}
	}
	return "", "", false
}

// routeKey is the ledger's route column value of a route.
func routeKey(route client.Object) string { return route.GetNamespace() + "/" + route.GetName() }
