package eip3009

import (
	"crypto/sha256"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/insforge/integrations-operator/internal/x402"
)

// RecoverCache remembers the pure parts of a check so that checking the same payment again is
// cheap: one paid request is checked several times (gateway, facilitator verify, re-verify in
// settle). It holds recovered signers by (digest, signature), payloads that passed a check by
// their exact bytes (the parsed authorization and signature and their signer), and token
// domains with their EIP-712 separators. Each is a pure function of its key, so a cached answer
// is always right; everything that depends on the requirements or the time is checked again.
// It holds at most size signers and size/8 payloads (a payload entry is about ten times the
// memory of a signer entry), evicting the oldest. Safe for concurrent use.
type RecoverCache struct {
	mu       sync.Mutex
	signers  fifo[[32]byte, common.Address]
	payloads fifo[string, *checkedPayload]
	domains  fifo[domainKey, cachedDomain]
}

// maxCachedDomains bounds the domain table: a process serves a handful of tokens.
const maxCachedDomains = 64

// NewRecoverCache returns a cache of at most size signers (size > 0).
func NewRecoverCache(size int) *RecoverCache {
	if size <= 0 {
		size = 1
	}
	return &RecoverCache{
		signers:  newFIFO[[32]byte, common.Address](size),
		payloads: newFIFO[string, *checkedPayload](max(1, size/8)),
		domains:  newFIFO[domainKey, cachedDomain](maxCachedDomains),
	}
}

// cacheKey names (digest, sig). SHA-256 rather than keccak: it has hardware support on amd64
// and arm64, keccak here runs in Go at several times the cost.
func cacheKey(digest common.Hash, sig []byte) [32]byte {
	var buf [32 + SignatureLen]byte
	return sha256.Sum256(append(append(buf[:0], digest[:]...), sig...))
}

// recover returns the signer of sig over digest, from the cache when possible.
func (c *RecoverCache) recover(digest common.Hash, sig []byte) (common.Address, error) {
	if c == nil {
		return Recover(digest, sig)
	}
	k := cacheKey(digest, sig)
	c.mu.Lock()
	a, ok := c.signers.get(k)
	c.mu.Unlock()
	if ok {
		return a, nil
	}
	a, err := Recover(digest, sig)
	if err != nil {
		return a, err
	}
	c.mu.Lock()
	c.signers.put(k, a)
	c.mu.Unlock()
	return a, nil
}

// Len returns the number of cached signers.
func (c *RecoverCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.signers.items)
}

// domainKey is what DomainFor reads from requirements.
type domainKey struct{ name, version, network, asset string }

type cachedDomain struct {
	d   Domain // ChainID is shared: hand out copies only
	sep common.Hash
}

// domain returns DomainFor(req) and its separator. The separator is constant per token, and
// hashing it again costs three keccaks per check.
func (c *RecoverCache) domain(req x402.PaymentRequirements) (Domain, common.Hash, error) {
	if c == nil {
		d, err := DomainFor(req)
		if err != nil {
			return Domain{}, common.Hash{}, err
		}
		return d, d.Separator(), nil
	}
	name, _ := req.ExtraString("name")
	version, _ := req.ExtraString("version")
	k := domainKey{name, version, req.Network, req.Asset}
	c.mu.Lock()
	cd, ok := c.domains.get(k)
	c.mu.Unlock()
	if !ok {
		d, err := DomainFor(req)
		if err != nil {
			return Domain{}, common.Hash{}, err
		}
		cd = cachedDomain{d: d, sep: d.Separator()}
		c.mu.Lock()
		c.domains.put(k, cd)
		c.mu.Unlock()
	}
	d := cd.d
	d.ChainID = new(big.Int).Set(d.ChainID)
	return d, cd.sep, nil
}

// checkedPayload is an exact EVM payload that passed a check: its parsed authorization and
// signature, and the signer recovered under the domain separator sep. Never modified once
// cached; callers get copies.
type checkedPayload struct {
	auth      Authorization
	sig       []byte
	sep       common.Hash
	signer    common.Address
	signerHex string
}

// checked returns what a passed check learnt from exactly these payload bytes under the domain
// separator sep, or nil.
func (c *RecoverCache) checked(raw []byte, sep common.Hash) *checkedPayload {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	cp, ok := c.payloads.get(string(raw))
	c.mu.Unlock()
	if !ok || cp.sep != sep {
		return nil
	}
	return cp
}

// remember records a payload that passed a check. It keeps its own copies.
func (c *RecoverCache) remember(raw []byte, sep common.Hash, auth Authorization, sig []byte, signer common.Address, signerHex string) {
	if c == nil {
		return
	}
	cp := &checkedPayload{auth: auth.clone(), sig: clone(sig), sep: sep, signer: signer, signerHex: signerHex}
	k := string(raw)
	c.mu.Lock()
	c.payloads.put(k, cp)
	c.mu.Unlock()
}

func (a Authorization) clone() Authorization {
	a.Value = new(big.Int).Set(a.Value)
	a.ValidAfter = new(big.Int).Set(a.ValidAfter)
	a.ValidBefore = new(big.Int).Set(a.ValidBefore)
	return a
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// fifo is a map of at most size entries that evicts the oldest insertion. Not safe for
// concurrent use; RecoverCache guards its fifos with its mutex.
type fifo[K comparable, V any] struct {
	size  int
	items map[K]V
	order []K // insertion order, a ring of len size
	next  int
}

func newFIFO[K comparable, V any](size int) fifo[K, V] {
	return fifo[K, V]{size: size, items: make(map[K]V), order: make([]K, 0, size)}
}

func (f *fifo[K, V]) get(k K) (V, bool) {
	v, ok := f.items[k]
	return v, ok
}

// put adds k, or replaces its value if present.
func (f *fifo[K, V]) put(k K, v V) {
	if _, ok := f.items[k]; ok {
		f.items[k] = v
		return
	}
	if len(f.order) < f.size {
		f.order = append(f.order, k)
	} else {
		delete(f.items, f.order[f.next])
		f.order[f.next] = k
		f.next = (f.next + 1) % f.size
	}
	f.items[k] = v
}
