package eip3009

import (
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// RecoverCache remembers recovered signers by (digest, signature). Recovery is most of the cost
// of a local check, and one paid request checks the same signature several times (gateway,
// facilitator verify, re-verify in settle). The mapping is a pure function, so a cached answer
// is always right. It holds at most its size entries, evicting the oldest. Safe for concurrent use.
type RecoverCache struct {
	mu    sync.Mutex
	size  int
	items map[[32]byte]common.Address
	order [][32]byte // insertion order, a ring of len size
	next  int
}

// NewRecoverCache returns a cache of at most size entries (size > 0).
func NewRecoverCache(size int) *RecoverCache {
	if size <= 0 {
		size = 1
	}
	return &RecoverCache{size: size, items: make(map[[32]byte]common.Address, size), order: make([][32]byte, 0, size)}
}

func cacheKey(digest common.Hash, sig []byte) [32]byte {
	return crypto.Keccak256Hash(digest[:], sig)
}

// recover returns the signer of sig over digest, from the cache when possible.
func (c *RecoverCache) recover(digest common.Hash, sig []byte) (common.Address, error) {
	if c == nil {
		return Recover(digest, sig)
	}
	k := cacheKey(digest, sig)
	c.mu.Lock()
	a, ok := c.items[k]
	c.mu.Unlock()
	if ok {
		return a, nil
	}
	a, err := Recover(digest, sig)
	if err != nil {
		return a, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return a, nil
	}
	if len(c.order) < c.size {
		c.order = append(c.order, k)
	} else {
		delete(c.items, c.order[c.next])
		c.order[c.next] = k
		c.next = (c.next + 1) % c.size
	}
	c.items[k] = a
	return a, nil
}

// Len returns the number of cached signers.
func (c *RecoverCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
