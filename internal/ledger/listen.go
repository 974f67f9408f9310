package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Notification is what the ledger's trigger sends on its channel when a payment becomes
// settled, pending or failed. The JSON payload is small (well under NOTIFY's 8 KB):
//
//	{"id": "...", "route": "ns/name", "status": "settled", "amount": "10000", "mock": false, "tx_hash": "0x..."}
type Notification struct {
	ID     string `json:"id"`
	Route  string `json:"route"`
	Status Status `json:"status"`
	Amount string `json:"amount"`
	Mock   bool   `json:"mock"`
	TxHash string `json:"tx_hash"`
}

// ListenConfig tunes Listen.
type ListenConfig struct {
	// Channel to LISTEN on; default DefaultTable (a ledger's Channel()).
	Channel string
	// OnConnect runs after every (re)connection once LISTEN is in effect. Notifications sent
	// while disconnected are lost, so this is where a consumer resyncs its totals.
	OnConnect func(ctx context.Context)
	// MinBackoff and MaxBackoff bound the reconnect delay; defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives connection errors and malformed payloads; default discards.
	Logger *slog.Logger
}

// Listen delivers the ledger's notifications to handle until ctx ends, reconnecting with backoff
// when the connection is lost. It holds one connection taken out of pool for its whole life
// (one per database is enough: the payload names the route). It returns ctx's error.
// handle runs on Listen's goroutine; keep it short (coalesce and hand off).
func Listen(ctx context.Context, pool *pgxpool.Pool, cfg ListenConfig, handle func(Notification)) error {
	if cfg.Channel == "" {
		cfg.Channel = DefaultTable
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := newBackoff(cfg.MinBackoff, cfg.MaxBackoff)
	for {
		err := listenOnce(ctx, pool, cfg, handle, b, log)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := b.next()
		log.Warn("ledger listener lost its connection; reconnecting", "channel", cfg.Channel, "error", err, "in", d)
		if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

func listenOnce(ctx context.Context, pool *pgxpool.Pool, cfg ListenConfig, handle func(Notification),
	b *backoff, log *slog.Logger) error {
	conn, err := dedicatedConn(ctx, pool)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{cfg.Channel}.Sanitize()); err != nil {
		return fmt.Errorf("ledger: LISTEN %q: %w", cfg.Channel, err)
	}
	b.reset()
	if cfg.OnConnect != nil {
		cfg.OnConnect(ctx)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("ledger: waiting for notifications: %w", err)
		}
		var msg Notification
		if err := json.Unmarshal([]byte(n.Payload), &msg); err != nil {
			log.Warn("ledger listener: malformed notification payload", "channel", n.Channel, "error", err)
			continue
		}
		handle(msg)
	}
}

// dedicatedConn takes a connection out of pool for a session-scoped job (LISTEN, a session
// advisory lock): the pool must never hand it to someone else.
func dedicatedConn(ctx context.Context, pool *pgxpool.Pool) (*pgx.Conn, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: acquiring a dedicated connection: %w", err)
	}
	return c.Hijack(), nil
}

// closeConn closes a dedicated connection; a closed session drops its LISTENs and locks.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx) // best effort: the server drops the session either way
}
