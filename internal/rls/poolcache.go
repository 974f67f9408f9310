package rls

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DSNError is a connection string that cannot be parsed; it is terminal. Its message comes from
// pgx, which redacts passwords.
type DSNError struct{ Err error }

func (e *DSNError) Error() string { return "invalid database connection string: " + e.Err.Error() }
func (e *DSNError) Unwrap() error { return e.Err }

// PoolCache shares one connection pool per DSN between the integrations that use it, and closes a
// pool when its last integration releases it. The controller owns one; it is safe for concurrent
// use.
type PoolCache struct {
	configure func(*pgxpool.Config)

	mu    sync.Mutex
	pools map[[32]byte]*poolEntry // by DSN digest, so that DSNs (with passwords) are not kept as keys
	users map[string][32]byte     // integration key -> DSN digest
}

type poolEntry struct {
	pool  *pgxpool.Pool
	users map[string]struct{}
}

// NewPoolCache returns an empty cache. configure, if not nil, adjusts every new pool's config
// (pool size, tracer).
func NewPoolCache(configure func(*pgxpool.Config)) *PoolCache {
	return &PoolCache{configure: configure, pools: map[[32]byte]*poolEntry{}, users: map[string][32]byte{}}
}

// Acquire returns the pool for dsn on behalf of the integration key. Acquiring again with the
// same DSN returns the same pool without counting twice; acquiring with a different DSN (the
// Secret changed) releases the old one first. Pools connect lazily: a bad password shows up on
// first use, not here.
func (c *PoolCache) Acquire(ctx context.Context, key, dsn string) (*pgxpool.Pool, error) {
	digest := sha256.Sum256([]byte(dsn))
	var stale *pgxpool.Pool
	defer func() {
		if stale != nil {
			stale.Close()
		}
	}()

	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.users[key]; ok {
		if old == digest {
			return c.pools[digest].pool, nil
		}
		stale = c.releaseLocked(key)
	}
	e, ok := c.pools[digest]
	if !ok {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return nil, &DSNError{Err: err}
		}
		if c.configure != nil {
			c.configure(cfg)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("opening a pool: %w", err)
		}
		e = &poolEntry{pool: pool, users: map[string]struct{}{}}
		c.pools[digest] = e
	}
	e.users[key] = struct{}{}
	c.users[key] = digest
	return e.pool, nil
}

// Release drops the integration's claim on its pool and closes the pool when nobody else uses
// it. Releasing an unknown key does nothing.
func (c *PoolCache) Release(key string) {
	c.mu.Lock()
	stale := c.releaseLocked(key)
	c.mu.Unlock()
	if stale != nil {
		// Close waits for borrowed connections, so it runs outside the lock.
		stale.Close()
	}
}

// releaseLocked returns the pool to close, if the key was its last user.
func (c *PoolCache) releaseLocked(key string) *pgxpool.Pool {
	digest, ok := c.users[key]
	if !ok {
		return nil
	}
	delete(c.users, key)
	e := c.pools[digest]
	delete(e.users, key)
	if len(e.users) > 0 {
		return nil
	}
	delete(c.pools, digest)
	return e.pool
}

// Len is the number of open pools.
func (c *PoolCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pools)
}

// Close closes every pool, for manager shutdown.
func (c *PoolCache) Close() {
	c.mu.Lock()
	pools := c.pools
	c.pools, c.users = map[[32]byte]*poolEntry{}, map[string][32]byte{}
	c.mu.Unlock()
	for _, e := range pools {
		e.pool.Close()
	}
}
