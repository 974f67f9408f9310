package onchain

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/caip2"
)

// LookupClient is the read-only part of a JSON-RPC client that settlement lookups need. Client
// (and so *ethclient.Client and the simulated backend's client) implements it.
type LookupClient interface {
	ethereum.ContractCaller
	ethereum.LogFilterer
	ethereum.ChainIDReader
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	TransactionReceipt(ctx context.Context, txHash common.Hash) (*types.Receipt, error)
}

// LookupConfig configures a Lookup.
type LookupConfig struct {
	Client LookupClient
	// Network is the CAIP-2 id of the chain the node must be on (required). The lookup answers
	// nothing until the node's chain id has been read and found equal to it.
	Network string
	// LogLookback bounds the search for the transaction that used a nonce, in blocks;
	// DefaultLogLookback when 0.
	LogLookback uint64
}

// Lookup finds the outcome of a settlement from the chain alone. It holds no key and sends
// nothing, so the gateway can use it next to any facilitator (okx, http) to check what that
// facilitator says; the onchain Facilitator answers SettleStatus with it too.
//
// It says settled only for a successful transaction in which the token emitted
// AuthorizationUsed(payer, nonce) and the Transfer(payer, payTo, value) that authorization made.
// A nonce used any other way (a transfer to someone else or of another value, a cancellation)
// is failed: the payment can never happen any more.
type Lookup struct {
	client   LookupClient
	abi      abi.ABI
	network  string
	lookback uint64

	mu      sync.Mutex
	checked bool // the node's chain id matched network
}

var _ facilitator.StatusSource = (*Lookup)(nil)

// NewLookup returns a lookup over cfg.Client. It does no I/O: the node's chain id is read and
// checked on first use, so that a node that is down at start does not stop the caller.
func NewLookup(cfg LookupConfig) (*Lookup, error) {
	if cfg.Client == nil {
		return nil, errors.New("onchain lookup: a client is required")
	}
	if _, err := caip2.Parse(cfg.Network); err != nil {
		return nil, fmt.Errorf("onchain lookup: network: %w", err)
	}
	return newLookup(cfg.Client, cfg.Network, cfg.LogLookback, false)
}

func newLookup(c LookupClient, network string, lookback uint64, checked bool) (*Lookup, error) {
	a, err := parseTokenABI()
	if err != nil {
		return nil, err
	}
	if lookback == 0 {
		lookback = DefaultLogLookback
	}
	return &Lookup{client: c, abi: a, network: network, lookback: lookback, checked: checked}, nil
}

// Network is the CAIP-2 id of the chain the lookup answers for.
func (l *Lookup) Network() string { return l.network }

// String describes the lookup.
func (l *Lookup) String() string { return "onchain settlement lookup (" + l.network + ")" }

// ready checks once that the node is on the configured chain: an answer from another chain
// would be about other money.
func (l *Lookup) ready(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checked {
		return nil
	}
	id, err := l.client.ChainID(ctx)
	if err != nil {
		return fmt.Errorf("onchain lookup: read chain id: %w", err)
	}
	if got := caip2.EIP155(id); got != l.network {
		return fmt.Errorf("onchain lookup: the node is on %s, the route is on %s", got, l.network)
	}
	l.checked = true
	return nil
}

// payment is what a settlement must have done on chain.
type payment struct {
	token, payer, payTo common.Address
	nonce               [32]byte
	value               *big.Int
}

// SettleStatus implements facilitator.StatusSource: the receipt of ref.TxHash when given, then
// the token's authorizationState(payer, nonce) and the event that used the nonce. A reference
// without asset, payer, nonce, payTo or value is never reported settled: without them any use of
// the nonce would look like this payment.
func (l *Lookup) SettleStatus(ctx context.Context, ref facilitator.SettleRef) (facilitator.SettleResult, error) {
	if err := l.ready(ctx); err != nil {
		return facilitator.SettleResult{}, err
	}
	if ref.Network != "" && ref.Network != l.network {
		return facilitator.SettleResult{}, fmt.Errorf("onchain status: network %s is not %s: %w", ref.Network, l.network, facilitator.ErrStatusUnsupported)
	}
	var hash common.Hash
	if ref.TxHash != "" {
		h, err := hexutil.Decode(ref.TxHash)
		if err != nil || len(h) != common.HashLength {
			return facilitator.SettleResult{}, fmt.Errorf("onchain status: tx hash %q is not a 32-byte hex hash", ref.TxHash)
		}
		hash = common.BytesToHash(h)
	}
	if missing := missingFields(ref); missing != "" {
		return l.unknown(ref, "the reference lacks %s, so the chain cannot tell this payment from another use of the nonce", missing), nil
	}
	want, err := parseRef(ref)
	if err != nil {
		return facilitator.SettleResult{}, err
	}
	var own *types.Receipt // our own transaction's, when its hash is known and it was mined
	if ref.TxHash != "" {
		r, err := l.client.TransactionReceipt(ctx, hash)
		switch {
		case err == nil:
			own = r
		case errors.Is(err, ethereum.NotFound):
		default:
			return facilitator.SettleResult{}, fmt.Errorf("onchain status: receipt of %s: %w", ref.TxHash, err)
		}
	}
	if own != nil && l.paid(own, want) {
		return l.settled(ref, own.TxHash), nil
	}
	use, err := l.findNonceUse(ctx, want)
	if err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("onchain status: %w", err)
	}
	if res, ok := l.usedOutcome(ref, want, use); ok {
		return res, nil
	}
	// The nonce is unused.
	if own != nil && own.Status != types.ReceiptStatusSuccessful {
		return l.failed(ref, x402.ReasonTransactionFailed, "transaction %s reverted and the authorization is unused", own.TxHash.Hex()), nil
	}
	// Not spent and nothing of ours mined: failed for good only once the authorization has expired.
	expired, err := l.expired(ctx, ref.ValidBefore)
	if err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("onchain status: %w", err)
	}
	if expired {
		return l.failed(ref, x402.ReasonValidBefore, "authorization expired unused"), nil
	}
	return l.unknown(ref, "authorization not used yet"), nil
}

// usedOutcome maps a used nonce to a result; ok is false when the nonce is unused.
func (l *Lookup) usedOutcome(ref facilitator.SettleRef, want payment, use nonceUse) (facilitator.SettleResult, bool) {
	switch use.kind {
	case nonceUnused:
		return facilitator.SettleResult{}, false
	case nonceUsedUnseen:
		// Spent (or cancelled) outside the searched range: money may have moved, but without the
		// transaction there is nothing to check it against.
		return l.unknown(ref, "authorization is used but no AuthorizationUsed or AuthorizationCanceled log was found in the last %d blocks", l.lookback), true
	case nonceCanceled:
		return l.failed(ref, x402.ReasonNonceAlreadyUsed, "the payer cancelled the authorization in transaction %s", use.tx.Hex()), true
	case nonceUsedElsewhere:
		return l.failed(ref, x402.ReasonNonceAlreadyUsed, "the authorization's nonce was used by transaction %s, which did not transfer %s to %s",
			use.tx.Hex(), want.value, want.payTo.Hex()), true
	default: // nonceUsedPaid
		return l.settled(ref, use.tx), true
	}
}

func (l *Lookup) settled(ref facilitator.SettleRef, tx common.Hash) facilitator.SettleResult {
	return facilitator.SettleResult{State: facilitator.StateSettled, TxHash: tx.Hex(), Network: l.network, Payer: ref.Payer}
}

// failed keeps ref.TxHash (the caller's own transaction, if any): the transaction that used the
// nonce belongs to no payment and is named in the message only.
func (l *Lookup) failed(ref facilitator.SettleRef, reason x402.Reason, format string, args ...any) facilitator.SettleResult {
	return facilitator.SettleResult{State: facilitator.StateFailed, TxHash: ref.TxHash, Network: l.network, Payer: ref.Payer,
		Reason: reason, Message: fmt.Sprintf(format, args...)}
}

func (l *Lookup) unknown(ref facilitator.SettleRef, format string, args ...any) facilitator.SettleResult {
	return facilitator.Unknown(ref.TxHash, l.network, ref.Payer, format, args...)
}

// missingFields names the fields a lookup needs that ref lacks, or "".
func missingFields(ref facilitator.SettleRef) string {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"asset", ref.Asset}, {"payer", ref.Payer}, {"nonce", ref.Nonce}, {"payTo", ref.PayTo}, {"value", ref.Value},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	return strings.Join(missing, ", ")
}

func parseRef(ref facilitator.SettleRef) (payment, error) {
	var p payment
	if !common.IsHexAddress(ref.Asset) || !common.IsHexAddress(ref.Payer) || !common.IsHexAddress(ref.PayTo) {
		return p, errors.New("onchain status: asset, payer and payTo must be addresses")
	}
	n, err := hexutil.Decode(ref.Nonce)
	if err != nil || len(n) != 32 {
		return p, errors.New("onchain status: nonce must be 32 bytes of hex")
	}
	v, ok := new(big.Int).SetString(ref.Value, 10)
	if !ok || v.Sign() < 0 {
		return p, fmt.Errorf("onchain status: value %q is not an atomic amount", ref.Value)
	}
	copy(p.nonce[:], n)
	p.token, p.payer, p.payTo, p.value = common.HexToAddress(ref.Asset), common.HexToAddress(ref.Payer), common.HexToAddress(ref.PayTo), v
	return p, nil
}

// nonceKind is what happened to an authorization nonce.
type nonceKind int

const (
	nonceUnused        nonceKind = iota
	nonceUsedPaid                // used by a transaction that made this payment's transfer
	nonceUsedElsewhere           // used by a transaction that moved something else
	nonceCanceled                // cancelled by the payer
	nonceUsedUnseen              // used, but the transaction is outside the searched range
)

type nonceUse struct {
	kind nonceKind
	tx   common.Hash
}

// findNonceUse asks the token whether the nonce is used and, if so, finds the transaction that used
// it and checks what that transaction transferred.
func (l *Lookup) findNonceUse(ctx context.Context, want payment) (nonceUse, error) {
	used, err := l.authorizationState(ctx, want.token, want.payer, want.nonce)
	if err != nil {
		return nonceUse{}, err
	}
	if !used {
		return nonceUse{kind: nonceUnused}, nil
	}
	head, err := l.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nonceUse{}, fmt.Errorf("read head: %w", err)
	}
	from := uint64(0)
	if n := head.Number.Uint64(); n > l.lookback {
		from = n - l.lookback
	}
	usedID, canceledID := l.abi.Events["AuthorizationUsed"].ID, l.abi.Events["AuthorizationCanceled"].ID
	logs, err := l.client.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(from),
		ToBlock:   head.Number,
		Addresses: []common.Address{want.token},
		Topics:    [][]common.Hash{{usedID, canceledID}, {common.BytesToHash(want.payer.Bytes())}, {common.Hash(want.nonce)}},
	})
	if err != nil {
		return nonceUse{}, fmt.Errorf("filter authorization logs: %w", err)
	}
	for _, lg := range logs {
		if lg.Removed || len(lg.Topics) == 0 {
			continue
		}
		if lg.Topics[0] == canceledID {
			return nonceUse{kind: nonceCanceled, tx: lg.TxHash}, nil
		}
		r, err := l.client.TransactionReceipt(ctx, lg.TxHash)
		if err != nil {
			return nonceUse{}, fmt.Errorf("receipt of %s: %w", lg.TxHash.Hex(), err)
		}
		if l.paid(r, want) {
			return nonceUse{kind: nonceUsedPaid, tx: lg.TxHash}, nil
		}
		return nonceUse{kind: nonceUsedElsewhere, tx: lg.TxHash}, nil
	}
	return nonceUse{kind: nonceUsedUnseen}, nil
}

// paid reports whether a mined transaction made the payment: it succeeded, the token emitted
// AuthorizationUsed(payer, nonce), and the Transfer that authorization made went from payer to
// payTo with exactly value. When the transaction used several of the token's authorizations,
// the authorization's Transfer is the first one after its AuthorizationUsed and before the next
// authorization event (EIP-3009 tokens mark the nonce used, then transfer); with one, any of the
// token's Transfer logs in the transaction is a candidate.
func (l *Lookup) paid(r *types.Receipt, want payment) bool {
	if r == nil || r.Status != types.ReceiptStatusSuccessful {
		return false
	}
	usedID, canceledID := l.abi.Events["AuthorizationUsed"].ID, l.abi.Events["AuthorizationCanceled"].ID
	transferID := l.abi.Events["Transfer"].ID
	var logs []*types.Log // the token's logs, in order
	ours, auths := -1, 0
	for _, lg := range r.Logs {
		if lg.Address != want.token || lg.Removed || len(lg.Topics) == 0 {
			continue
		}
		if t := lg.Topics[0]; t == usedID || t == canceledID {
			auths++
			if t == usedID && len(lg.Topics) == 3 && lg.Topics[1] == common.BytesToHash(want.payer.Bytes()) && lg.Topics[2] == common.Hash(want.nonce) {
				ours = len(logs)
			}
		}
		logs = append(logs, lg)
	}
	if ours < 0 {
		return false
	}
	isTransfer := func(lg *types.Log) bool { return lg.Topics[0] == transferID }
	matches := func(lg *types.Log) bool {
		return len(lg.Topics) == 3 && lg.Topics[1] == common.BytesToHash(want.payer.Bytes()) &&
			lg.Topics[2] == common.BytesToHash(want.payTo.Bytes()) && len(lg.Data) == 32 &&
			new(big.Int).SetBytes(lg.Data).Cmp(want.value) == 0
	}
	if auths == 1 {
		for _, lg := range logs {
			if isTransfer(lg) && matches(lg) {
				return true
			}
		}
		return false
	}
	for _, lg := range logs[ours+1:] {
		switch t := lg.Topics[0]; {
		case t == usedID || t == canceledID:
			return false
		case isTransfer(lg):
			return matches(lg)
		}
	}
	return false
}

// expired reports whether validBefore is at or before the latest block's timestamp.
func (l *Lookup) expired(ctx context.Context, validBefore string) (bool, error) {
	vb, ok := new(big.Int).SetString(validBefore, 10)
	if !ok {
		return false, nil // unknown expiry: never conclude failure from it
	}
	head, err := l.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("read head: %w", err)
	}
	return vb.Cmp(new(big.Int).SetUint64(head.Time)) <= 0, nil
}

func (l *Lookup) authorizationState(ctx context.Context, token, from common.Address, nonce [32]byte) (bool, error) {
	out, err := l.call(ctx, token, "authorizationState", from, nonce)
	if err != nil {
		return false, err
	}
	used, ok := out[0].(bool)
	if !ok {
		return false, errors.New("authorizationState returned a non-bool")
	}
	return used, nil
}

func (l *Lookup) balanceOf(ctx context.Context, token, who common.Address) (*big.Int, error) {
	out, err := l.call(ctx, token, "balanceOf", who)
	if err != nil {
		return nil, err
	}
	bal, ok := out[0].(*big.Int)
	if !ok {
		return nil, errors.New("balanceOf returned a non-integer")
	}
	return bal, nil
}

func (l *Lookup) call(ctx context.Context, token common.Address, method string, args ...any) ([]any, error) {
	data, err := l.abi.Pack(method, args...)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", method, err)
	}
	out, err := l.client.CallContract(ctx, ethereum.CallMsg{To: &token, Data: data}, nil)
	if err != nil {
		return nil, fmt.Errorf("call %s on %s: %w", method, token.Hex(), err)
	}
	vals, err := l.abi.Unpack(method, out)
	if err != nil || len(vals) != 1 {
		return nil, fmt.Errorf("decode %s result from %s: %v", method, token.Hex(), err)
	}
	return vals, nil
}
