package controller

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

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/x402/caip2"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// How long a domain check result is trusted. A match is stable (tokens do not change their
// domain); a mismatch is re-read sooner in case the RPC URL pointed at the wrong chain for a
// while; an unreachable node is retried soon.
const (
	domainMatchTTL    = time.Hour
	domainMismatchTTL = 5 * time.Minute
	domainErrorTTL    = 30 * time.Second
	domainCallTimeout = 10 * time.Second
)

// nameSelector is the 4-byte selector of name().
var nameSelector = []byte{0x06, 0xfd, 0xde, 0x03}

// ChainDialer opens a read-only connection to a chain node. The returned close func releases
// it. Tests inject the simulated backend's client (it is a bind.ContractCaller).
type ChainDialer func(ctx context.Context, rpcURL string) (ethereum.ContractCaller, func(), error)

// DialChain is the production ChainDialer: JSON-RPC over http(s) or ws(s).
func DialChain(ctx context.Context, rpcURL string) (ethereum.ContractCaller, func(), error) {
	c, err := ethclient.DialContext(ctx, rpcURL)
	if err != nil {
		return nil, nil, err
	}
	return c, c.Close, nil
}

// domainKey is what a check result depends on.
type domainKey struct {
	rpc, asset, name, version, network string
}

// domainResult is the outcome of one check: exactly one of ok, mismatch or err.
type domainResult struct {
	ok       bool
	mismatch string // expected vs actual, for status and events
	err      error  // the node could not be asked
	at       time.Time
}

// domainChecker compares a route's EIP-712 domain with the token's DOMAIN_SEPARATOR() and caches
// the answer per (rpc, asset, name, version, network), so a reconcile rarely calls the node.
type domainChecker struct {
	dial  ChainDialer
	clock clock.PassiveClock

	mu    sync.Mutex
	cache map[domainKey]domainResult
}

func newDomainChecker(dial ChainDialer, clk clock.PassiveClock) *domainChecker {
	if dial == nil {
		dial = DialChain
	}
	return &domainChecker{dial: dial, clock: clk, cache: map[domainKey]domainResult{}}
}

// domainRPC is the RPC URL a route's domain is checked over, or "" when there is none.
func domainRPC(route *integrationsv1alpha1.PaymentRoute) string {
	switch f := route.Spec.Facilitator; {
	case f.Onchain != nil:
		return f.Onchain.RPCURL
	case f.OKX != nil:
		return f.OKX.RPCURL
	}
	return ""
}

// Check returns the cached or fresh result for the route's domain over rpc.
func (c *domainChecker) Check(ctx context.Context, rpc string, route *integrationsv1alpha1.PaymentRoute) domainResult {
	a := route.Spec.Asset
	key := domainKey{
		rpc:     rpc,
		asset:   strings.ToLower(or(a.Address, integrationsv1alpha1.DefaultAssetAddress)),
		name:    or(a.EIP712.Name, integrationsv1alpha1.DefaultEIP712Name),
		version: or(a.EIP712.Version, integrationsv1alpha1.DefaultEIP712Version),
		network: or(route.Spec.Network, integrationsv1alpha1.DefaultNetwork),
	}
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

func (r domainResult) ttl() time.Duration {
	switch {
	case r.ok:
		return domainMatchTTL
	case r.err != nil:
		return domainErrorTTL
	}
	return domainMismatchTTL
}

func (c *domainChecker) check(ctx context.Context, k domainKey) domainResult {
	chainID, err := caip2.ParseEVM(k.network)
	if err != nil {
		return domainResult{mismatch: fmt.Sprintf("network %q is not an EVM chain: %v", k.network, err)}
	}
	d := eip3009.Domain{Name: k.name, Version: k.version, ChainID: chainID, VerifyingContract: common.HexToAddress(k.asset)}
	ctx, cancel := context.WithTimeout(ctx, domainCallTimeout)
	defer cancel()
	caller, closeFn, err := c.dial(ctx, k.rpc)
	if err != nil {
		return domainResult{err: fmt.Errorf("connecting to the RPC node: %w", err)}
	}
	defer closeFn()
	actual, err := eip3009.ReadDomainSeparator(ctx, caller, d.VerifyingContract)
	if err != nil {
		return domainResult{err: err}
	}
	want := d.Separator()
	if actual == want {
		return domainResult{ok: true}
	}
	msg := fmt.Sprintf("token %s: the configured EIP-712 domain (name %q, version %q, chain %s) gives DOMAIN_SEPARATOR %s, but the token's DOMAIN_SEPARATOR() is %s",
		d.VerifyingContract.Hex(), d.Name, d.Version, chainID, want.Hex(), actual.Hex())
	if name, err := readTokenName(ctx, caller, d.VerifyingContract); err == nil {
		msg += fmt.Sprintf("; the token's name() is %q", name)
	}
	return domainResult{mismatch: msg}
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

// or returns v, or def when v is empty.
func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
