// Package tokendomain checks, over a chain node, that a token's EIP-712 domain is the one a
// route signs for: a wrong name or version makes every payer's signature invalid on chain, so
// the operator refuses to deploy a gateway for it. Results are cached per domain and node.
package tokendomain

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"k8s.io/utils/clock"

	"github.com/insforge/integrations-operator/internal/x402/caip2"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// How long a result is trusted. A match is stable (tokens do not change their domain); a
// mismatch is re-read sooner in case the RPC URL pointed at the wrong chain for a while; an
// unreachable node is retried soon.
const (
	matchTTL    = time.Hour
	mismatchTTL = 5 * time.Minute
	errorTTL    = 30 * time.Second
	callTimeout = 10 * time.Second
)

// nameSelector is the 4-byte selector of name().
var nameSelector = []byte{0x06, 0xfd, 0xde, 0x03}

// Dialer opens a read-only connection to a chain node. The returned func releases it. Tests
// inject the simulated backend's client (it is an ethereum.ContractCaller).
type Dialer func(ctx context.Context, rpcURL string) (ethereum.ContractCaller, func(), error)

// DialJSONRPC is the production Dialer: JSON-RPC over http(s) or ws(s).
func DialJSONRPC(ctx context.Context, rpcURL string) (ethereum.ContractCaller, func(), error) {
	c, err := ethclient.DialContext(ctx, rpcURL)
	if err != nil {
		return nil, nil, err
	}
	return c, c.Close, nil
}

// Domain is what a check compares: the token, its EIP-712 name and version, and the CAIP-2
// network whose chain id completes the domain.
type Domain struct {
	Asset, Name, Version, Network string
}

// Result is the outcome of one check: exactly one of OK, Mismatch or Err.
type Result struct {
	OK bool
	// Mismatch says expected vs actual, for status and events.
	Mismatch string
	// Err is set when the node could not be asked.
	Err error
	at  time.Time
}

func (r Result) ttl() time.Duration {
	switch {
	case r.OK:
		return matchTTL
	case r.Err != nil:
		return errorTTL
	}
	return mismatchTTL
}

type cacheKey struct {
	rpc string
	Domain
}

// Checker compares a configured domain with the token's DOMAIN_SEPARATOR() and caches the
// answer per (node, domain), so a reconcile rarely calls the node. Safe for concurrent use.
type Checker struct {
	dial  Dialer
	clock clock.PassiveClock

	mu    sync.Mutex
	cache map[cacheKey]Result
}

// NewChecker returns a checker; a nil dial means DialJSONRPC.
func NewChecker(dial Dialer, clk clock.PassiveClock) *Checker {
	if dial == nil {
		dial = DialJSONRPC
	}
	return &Checker{dial: dial, clock: clk, cache: map[cacheKey]Result{}}
}

// SetClock replaces the clock (tests).
func (c *Checker) SetClock(clk clock.PassiveClock) { c.clock = clk }

// Check returns the cached or fresh result for d over the node at rpc.
func (c *Checker) Check(ctx context.Context, rpc string, d Domain) Result {
	key := cacheKey{rpc: rpc, Domain: d}
	key.Asset = strings.ToLower(key.Asset)
	now := c.clock.Now()
	c.mu.Lock()
	if r, ok := c.cache[key]; ok && now.Sub(r.at) < r.ttl() {
		c.mu.Unlock()
		return r
	}
	c.mu.Unlock()

	r := c.check(ctx, key)
	r.at = now
	c.mu.Lock()
	c.cache[key] = r
	c.mu.Unlock()
	return r
}

func (c *Checker) check(ctx context.Context, k cacheKey) Result {
	chainID, err := caip2.ParseEVM(k.Network)
	if err != nil {
		return Result{Mismatch: fmt.Sprintf("network %q is not an EVM chain: %v", k.Network, err)}
	}
	d := eip3009.Domain{Name: k.Name, Version: k.Version, ChainID: chainID, VerifyingContract: common.HexToAddress(k.Asset)}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	caller, closeFn, err := c.dial(ctx, k.rpc)
	if err != nil {
		return Result{Err: fmt.Errorf("connecting to the RPC node: %w", err)}
	}
	defer closeFn()
	actual, err := eip3009.ReadDomainSeparator(ctx, caller, d.VerifyingContract)
	if err != nil {
		return Result{Err: err}
	}
	want := d.Separator()
	if actual == want {
		return Result{OK: true}
	}
	msg := fmt.Sprintf("token %s: the configured EIP-712 domain (name %q, version %q, chain %s) gives DOMAIN_SEPARATOR %s, but the token's DOMAIN_SEPARATOR() is %s",
		d.VerifyingContract.Hex(), d.Name, d.Version, chainID, want.Hex(), actual.Hex())
	if name, err := readTokenName(ctx, caller, d.VerifyingContract); err == nil {
		msg += fmt.Sprintf("; the token's name() is %q", name)
	}
	return Result{Mismatch: msg}
}

// readTokenName calls name() on an ERC-20 token.
func readTokenName(ctx context.Context, caller ethereum.ContractCaller, token common.Address) (string, error) {
	out, err := caller.CallContract(ctx, ethereum.CallMsg{To: &token, Data: nameSelector}, nil)
	if err != nil {
		return "", fmt.Errorf("call name() on %s: %w", token.Hex(), err)
	}
	strType, err := abi.NewType("string", "", nil)
	if err != nil {
		return "", err
	}
	vals, err := abi.Arguments{{Type: strType}}.Unpack(out)
	if err != nil || len(vals) != 1 {
		return "", fmt.Errorf("decode name() of %s: %v", token.Hex(), err)
	}
	name, _ := vals[0].(string)
	return name, nil
}
