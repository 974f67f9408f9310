// Package pgpool shares PostgreSQL connection pools between the resources that use the same
// database, and holds the operator's one rule about connection strings: they are secrets, so
// they are never kept in readable form and never quoted in an error.
package pgpool

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrInvalidDSN is a connection string pgx cannot parse. It is terminal (the Secret must be
// fixed) and says nothing else: pgx's own message may quote the string, password included, and
// a value that is not a URL at all (an API key put in the wrong Secret) would be quoted whole.
var ErrInvalidDSN = errors.New("the database connection string is not a valid PostgreSQL URL")

// IsAuthFailure reports whether err is the server refusing the credentials (SQLSTATE class 28:
// a wrong password, no pg_hba entry). It is terminal: retrying does not fix a Secret.
func IsAuthFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && len(pgErr.Code) == 5 && pgErr.Code[:2] == "28"
}

// Cache shares one pool per database between users (any string naming who holds it, e.g. a
// resource's kind and key), and closes a pool when its last user releases it. It is safe for
// concurrent use; the operator keeps one for all its controllers.
type Cache struct {
	configure func(*pgxpool.Config)

	mu    sync.Mutex
	pools map[[32]byte]*entry // by DSN digest, so that DSNs (with passwords) are not kept as keys
	users map[string][32]byte // user -> DSN digest
}

type entry struct {
	pool  *pgxpool.Pool
	users map[string]struct{}
}

// NewCache returns an empty cache. configure, if not nil, adjusts every new pool's config (pool
// size, tracer).
func NewCache(configure func(*pgxpool.Config)) *Cache {
	return &Cache{configure: configure, pools: map[[32]byte]*entry{}, users: map[string][32]byte{}}
}

// Acquire returns the pool for dsn on behalf of user. Acquiring again with the same DSN returns
// the same pool without counting twice; acquiring with another DSN (the Secret changed) releases
// the old one first. Pools connect lazily: a bad password shows on first use, not here. A DSN
// pgx cannot parse is ErrInvalidDSN.
func (c *Cache) Acquire(ctx context.Context, user, dsn string) (*pgxpool.Pool, error) {
	digest := sha256.Sum256([]byte(dsn))
	var stale *pgxpool.Pool
	defer func() {
		if stale != nil {
			stale.Close()
		}
	}()

	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.users[user]; ok {
		if old == digest {
			return c.pools[digest].pool, nil
		}
		stale = c.releaseLocked(user)
	}
	e, ok := c.pools[digest]
	if !ok {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return nil, ErrInvalidDSN
		}
		if c.configure != nil {
			c.configure(cfg)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("opening a connection pool: %w", err)
		}
		e = &entry{pool: pool, users: map[string]struct{}{}}
		c.pools[digest] = e
	}
	e.users[user] = struct{}{}
	c.users[user] = digest
	return e.pool, nil
}

// Release drops user's claim on its pool and closes the pool when nobody else uses it.
// Releasing an unknown user does nothing.
func (c *Cache) Release(user string) {
	c.mu.Lock()
	stale := c.releaseLocked(user)
	c.mu.Unlock()
	if stale != nil {
		// Close waits for borrowed connections, so it runs outside the lock.
		stale.Close()
	}
}

// releaseLocked returns the pool to close, if user was its last user.
func (c *Cache) releaseLocked(user string) *pgxpool.Pool {
	digest, ok := c.users[user]
	if !ok {
		return nil
	}
	delete(c.users, user)
	e := c.pools[digest]
	delete(e.users, user)
	if len(e.users) > 0 {
		return nil
	}
	delete(c.pools, digest)
	return e.pool
}

// Len is the number of open pools.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pools)
}

// Close closes every pool, for manager shutdown.
func (c *Cache) Close() {
	c.mu.Lock()
	pools := c.pools
	c.pools, c.users = map[[32]byte]*entry{}, map[string][32]byte{}
	c.mu.Unlock()
	for _, e := range pools {
		e.pool.Close()
	}
}

// Run closes every pool when ctx ends: add the cache to a controller-runtime manager with
// manager.RunnableFunc(cache.Run).
func (c *Cache) Run(ctx context.Context) error {
	<-ctx.Done()
	c.Close()
	return nil
}

// Redact drops what a connection error quotes of the connection string: pgx names the user and
// the database ("failed to connect to `user=… database=…`"), and a malformed value can put
// anything there, a password included. The host stays (it is what a reader needs to fix the
// network); errors.Is and errors.As still see the whole chain.
func Redact(err error) error {
	var ce *pgconn.ConnectError
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	inner := "failed to connect"
	if cause := ce.Unwrap(); cause != nil {
		inner += ": " + cause.Error()
	}
	return &redacted{msg: strings.Replace(err.Error(), ce.Error(), inner, 1), err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
