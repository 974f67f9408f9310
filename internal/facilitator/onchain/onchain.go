// Package onchain is a self-hosted x402 facilitator: it verifies exact EVM payments locally and
// with an eth_call simulation, and settles them by sending transferWithAuthorization from a
// relayer key it holds, so the payer pays no gas and no third party is involved. It works against
// any JSON-RPC node (ethclient) and against go-ethereum's simulated backend.
package onchain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/caip2"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// Client is the part of an Ethereum JSON-RPC client the facilitator needs. *ethclient.Client
// and the simulated backend's client implement it.
type Client interface {
	ethereum.ContractCaller
	ethereum.GasEstimator
	ethereum.LogFilterer
	ethereum.TransactionSender
	ethereum.ChainIDReader
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	TransactionReceipt(ctx context.Context, txHash common.Hash) (*types.Receipt, error)
}

// Defaults.
const (
	DefaultReceiptTimeout = 45 * time.Second
	DefaultReceiptPoll    = 500 * time.Millisecond
	DefaultLogLookback    = 50_000 // blocks searched for AuthorizationUsed by SettleStatus
)

// Config configures a Facilitator.
type Config struct {
	Client Client
	// RelayerKey signs settlement transactions and pays their gas. It is never logged.
	RelayerKey *ecdsa.PrivateKey
	// ReceiptTimeout bounds the wait for a receipt; after it the outcome is unknown.
	ReceiptTimeout time.Duration
	// ReceiptPoll is the interval between receipt lookups.
	ReceiptPoll time.Duration
	// AfterSend, if set, runs after each transaction is sent. Dev chains that mine on demand
	// (the simulated backend) use it to mine; leave nil for real nodes.
	AfterSend func(ctx context.Context)
	// Now returns the current time for the validity checks; nil means time.Now.
	Now func() time.Time
	// Verifier holds the local check settings. Without a Cache, New gives it one, so that the
	// re-verification inside Settle does not recover the signer again.
	Verifier eip3009.Verifier
	// LogLookback bounds the search of SettleStatus for the transaction that used a nonce, in
	// blocks.
	LogLookback uint64
}

// Facilitator is the self-hosted on-chain facilitator.
type Facilitator struct {
	cfg     Config
	chainID *big.Int
	network string
	relayer common.Address
	abi     abi.ABI
	signer  types.Signer
	// lookup answers SettleStatus and decides what a reverted settlement means.
	lookup *Lookup

	nonceMu    sync.Mutex
	nextNonce  uint64
	nonceValid bool // false: read the pending nonce from the node before the next send
}

var _ facilitator.Facilitator = (*Facilitator)(nil)

// New reads the chain id from the client and returns a facilitator.
func New(ctx context.Context, cfg Config) (*Facilitator, error) {
	if cfg.Client == nil || cfg.RelayerKey == nil {
		return nil, errors.New("onchain facilitator: client and relayer key are required")
	}
	if cfg.ReceiptTimeout <= 0 {
		cfg.ReceiptTimeout = DefaultReceiptTimeout
	}
	if cfg.ReceiptPoll <= 0 {
		cfg.ReceiptPoll = DefaultReceiptPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Verifier.Cache == nil {
		cfg.Verifier.Cache = eip3009.NewRecoverCache(4096)
	}
	chainID, err := cfg.Client.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("onchain facilitator: read chain id: %w", err)
	}
	network := caip2.EIP155(chainID)
	lookup, err := newLookup(cfg.Client, network, cfg.LogLookback, true)
	if err != nil {
		return nil, err
	}
	return &Facilitator{
		cfg: cfg, chainID: chainID, network: network, abi: lookup.abi, lookup: lookup,
		relayer: crypto.PubkeyToAddress(cfg.RelayerKey.PublicKey),
		signer:  types.LatestSignerForChainID(chainID),
	}, nil
}

// Relayer is the address that sends settlement transactions (and needs gas money).
func (f *Facilitator) Relayer() common.Address { return f.relayer }

// Network is the CAIP-2 id of the chain.
func (f *Facilitator) Network() string { return f.network }

// String describes the facilitator without secrets.
func (f *Facilitator) String() string {
	return fmt.Sprintf("onchain facilitator (%s, relayer %s)", f.network, f.relayer.Hex())
}

// Supported implements facilitator.Facilitator.
func (f *Facilitator) Supported(context.Context) (x402.SupportedResponse, error) {
	return x402.SupportedResponse{
		Kinds:   []x402.SupportedKind{{X402Version: x402.Version2, Scheme: x402.SchemeExact, Network: f.network}},
		Signers: map[string][]string{"eip155:*": {f.relayer.Hex()}},
	}, nil
}

// SettleStatus implements facilitator.Facilitator from the chain alone (see Lookup): it resolves
// settlements whose hash was never learned, and settlements made by any facilitator on this
// chain.
func (f *Facilitator) SettleStatus(ctx context.Context, ref facilitator.SettleRef) (facilitator.SettleResult, error) {
	return f.lookup.SettleStatus(ctx, ref)
}

// Verify implements facilitator.Facilitator: the local checks, then an eth_call of the transfer.
func (f *Facilitator) Verify(ctx context.Context, payment x402.PaymentPayload, req x402.PaymentRequirements) (facilitator.VerifyResult, error) {
	_, _, res, err := f.check(ctx, payment, req)
	if err != nil {
		return facilitator.VerifyResult{}, fmt.Errorf("onchain verify: %w", err)
	}
	return res, nil
}

// check runs local verification and the simulation. A nil error with res.Valid=false is an
// invalid payment; an error means no verdict could be reached.
func (f *Facilitator) check(ctx context.Context, payment x402.PaymentPayload, req x402.PaymentRequirements) (eip3009.Verified, []byte, facilitator.VerifyResult, error) {
	if req.Network != f.network {
		return eip3009.Verified{}, nil, facilitator.VerifyResult{Reason: x402.ReasonInvalidNetwork,
			Message: fmt.Sprintf("network %s is not this facilitator's %s", req.Network, f.network)}, nil
	}
	v, err := f.cfg.Verifier.Verify(payment, req, f.cfg.Now())
	if err != nil {
		return eip3009.Verified{}, nil, facilitator.Invalid(err, ""), nil
	}
	calldata, err := f.transferCalldata(v)
	if err != nil {
		return eip3009.Verified{}, nil, facilitator.VerifyResult{}, err
	}
	token := v.Domain.VerifyingContract
	_, callErr := f.cfg.Client.CallContract(ctx, ethereum.CallMsg{From: f.relayer, To: &token, Data: calldata}, nil)
	if callErr == nil {
		return v, calldata, facilitator.VerifyResult{Valid: true, Payer: v.Payer.Hex()}, nil
	}
	if !isRevert(callErr) {
		return eip3009.Verified{}, nil, facilitator.VerifyResult{}, fmt.Errorf("simulate transferWithAuthorization: %w", callErr)
	}
	reason, msg := f.diagnose(ctx, v, callErr)
	return v, calldata, facilitator.VerifyResult{Reason: reason, Message: msg, Payer: v.Payer.Hex()}, nil
}

func (f *Facilitator) transferCalldata(v eip3009.Verified) ([]byte, error) {
	a := v.Authorization
	sig := v.SignatureBytes()
	var r, s [32]byte
	copy(r[:], sig[:32])
	copy(s[:], sig[32:64])
	data, err := f.abi.Pack("transferWithAuthorization", a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, sig[64], r, s)
	if err != nil {
		return nil, fmt.Errorf("pack transferWithAuthorization: %w", err)
	}
	return data, nil
}

// diagnose turns a reverted simulation into an x402 reason: it asks the token whether the
// nonce is used and whether the balance suffices rather than trusting revert strings, which
// differ between token implementations.
func (f *Facilitator) diagnose(ctx context.Context, v eip3009.Verified, callErr error) (x402.Reason, string) {
	token := v.Domain.VerifyingContract
	if used, err := f.lookup.authorizationState(ctx, token, v.Authorization.From, v.Authorization.Nonce); err == nil && used {
		return x402.ReasonNonceAlreadyUsed, "the authorization nonce has already been used"
	}
	if bal, err := f.lookup.balanceOf(ctx, token, v.Authorization.From); err == nil && bal.Cmp(v.Authorization.Value) < 0 {
		return x402.ReasonInsufficientFunds, fmt.Sprintf("payer balance %s is below %s", bal, v.Authorization.Value)
	}
	return x402.ReasonSimulationFailed, "transferWithAuthorization would revert: " + revertReason(callErr)
}

// isRevert reports whether err is an execution revert (a verdict) rather than a transport or
// node failure (no verdict).
func isRevert(err error) bool {
	var de rpc.DataError
	if errors.As(err, &de) {
		return true
	}
	var re rpc.Error
	if errors.As(err, &re) && re.ErrorCode() == 3 {
		return true
	}
	return strings.Contains(err.Error(), "execution reverted")
}

// revertReason extracts the Error(string) message of a revert, if any.
func revertReason(err error) string {
	var de rpc.DataError
	if errors.As(err, &de) {
		if s, ok := de.ErrorData().(string); ok {
			if data, derr := hexutil.Decode(s); derr == nil {
				if reason, uerr := abi.UnpackRevert(data); uerr == nil {
					return reason
				}
			}
		}
	}
	return err.Error()
}

// GoString keeps %#v from printing the relayer key.
func (f *Facilitator) GoString() string { return f.String() }

// String describes the configuration without the relayer key.
func (c Config) String() string {
	relayer := "<none>"
	if c.RelayerKey != nil {
		relayer = crypto.PubkeyToAddress(c.RelayerKey.PublicKey).Hex()
	}
	return fmt.Sprintf("onchain.Config{relayer: %s, receiptTimeout: %s}", relayer, c.ReceiptTimeout)
}

// GoString keeps %#v from printing the relayer key.
func (c Config) GoString() string { return c.String() }
