package onchain

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/x402"
)

// SettleStatus implements facilitator.Facilitator from the chain alone: the receipt of
// ref.TxHash, and the token's authorizationState(payer, nonce) with the AuthorizationUsed log
// that names the transaction that spent it. It resolves settlements whose hash was never
// learned, and settlements made by any facilitator on this chain.
func (f *Facilitator) SettleStatus(ctx context.Context, ref facilitator.SettleRef) (facilitator.SettleResult, error) {
	if ref.Network != "" && ref.Network != f.network {
		return facilitator.SettleResult{}, fmt.Errorf("onchain status: network %s is not %s: %w", ref.Network, f.network, facilitator.ErrStatusUnsupported)
	}
	var receipt *types.Receipt
	if ref.TxHash != "" {
		h, err := hexutil.Decode(ref.TxHash)
		if err != nil || len(h) != common.HashLength {
			return facilitator.SettleResult{}, fmt.Errorf("onchain status: tx hash %q is not a 32-byte hex hash", ref.TxHash)
		}
		r, err := f.cfg.Client.TransactionReceipt(ctx, common.BytesToHash(h))
		switch {
		case err == nil:
			receipt = r
		case errors.Is(err, ethereum.NotFound):
		default:
			return facilitator.SettleResult{}, fmt.Errorf("onchain status: receipt of %s: %w", ref.TxHash, err)
		}
		if receipt != nil && receipt.Status == types.ReceiptStatusSuccessful {
			return facilitator.SettleResult{State: facilitator.StateSettled, TxHash: receipt.TxHash.Hex(), Network: f.network, Payer: ref.Payer}, nil
		}
	}
	if ref.Asset == "" || ref.Payer == "" || ref.Nonce == "" {
		if receipt != nil {
			return facilitator.SettleResult{State: facilitator.StateFailed, TxHash: ref.TxHash, Network: f.network, Payer: ref.Payer,
				Reason: x402.ReasonTransactionFailed, Message: "transaction reverted"}, nil
		}
		if ref.TxHash == "" {
			return facilitator.SettleResult{}, fmt.Errorf("onchain status: need a tx hash or asset, payer and nonce: %w", facilitator.ErrStatusUnsupported)
		}
		return facilitator.Unknown(ref.TxHash, f.network, ref.Payer, "transaction not mined"), nil
	}
	token, payer, nonce, err := parseRef(ref)
	if err != nil {
		return facilitator.SettleResult{}, err
	}
	used, err := f.authorizationState(ctx, token, payer, nonce)
	if err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("onchain status: %w", err)
	}
	if used {
		hash, err := f.findAuthorizationUsed(ctx, token, payer, nonce)
		if err != nil {
			return facilitator.SettleResult{}, fmt.Errorf("onchain status: %w", err)
		}
		if hash == "" {
			// Spent (or cancelled) outside the searched range: money may have moved, but without
			// a hash there is nothing to record.
			return facilitator.Unknown("", f.network, ref.Payer, "authorization is used but no AuthorizationUsed log was found in the last %d blocks", f.cfg.LogLookback), nil
		}
		return facilitator.SettleResult{State: facilitator.StateSettled, TxHash: hash, Network: f.network, Payer: ref.Payer}, nil
	}
	if receipt != nil {
		return facilitator.SettleResult{State: facilitator.StateFailed, TxHash: ref.TxHash, Network: f.network, Payer: ref.Payer,
			Reason: x402.ReasonTransactionFailed, Message: "transaction reverted and the authorization is unused"}, nil
	}
	// Not spent and no receipt: failed for good only once the authorization has expired.
	if expired, err := f.expired(ctx, ref.ValidBefore); err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("onchain status: %w", err)
	} else if expired {
		return facilitator.SettleResult{State: facilitator.StateFailed, TxHash: ref.TxHash, Network: f.network, Payer: ref.Payer,
			Reason: x402.ReasonValidBefore, Message: "authorization expired unused"}, nil
	}
	return facilitator.Unknown(ref.TxHash, f.network, ref.Payer, "authorization not used yet"), nil
}

func parseRef(ref facilitator.SettleRef) (token, payer common.Address, nonce [32]byte, err error) {
	if !common.IsHexAddress(ref.Asset) || !common.IsHexAddress(ref.Payer) {
		return token, payer, nonce, fmt.Errorf("onchain status: asset and payer must be addresses")
	}
	n, derr := hexutil.Decode(ref.Nonce)
	if derr != nil || len(n) != 32 {
		return token, payer, nonce, fmt.Errorf("onchain status: nonce must be 32 bytes of hex")
	}
	copy(nonce[:], n)
	return common.HexToAddress(ref.Asset), common.HexToAddress(ref.Payer), nonce, nil
}

// expired reports whether validBefore is at or before the latest block's timestamp.
func (f *Facilitator) expired(ctx context.Context, validBefore string) (bool, error) {
	vb, ok := new(big.Int).SetString(validBefore, 10)
	if !ok {
		return false, nil // unknown expiry: never conclude failure from it
	}
	head, err := f.cfg.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("read head: %w", err)
	}
	return vb.Cmp(new(big.Int).SetUint64(head.Time)) <= 0, nil
}

// findAuthorizationUsed returns the hash of the transaction that emitted
// AuthorizationUsed(payer, nonce) within the lookback window, or "".
func (f *Facilitator) findAuthorizationUsed(ctx context.Context, token, payer common.Address, nonce [32]byte) (string, error) {
	head, err := f.cfg.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("read head: %w", err)
	}
	from := uint64(0)
	if n := head.Number.Uint64(); n > f.cfg.LogLookback {
		from = n - f.cfg.LogLookback
	}
	logs, err := f.cfg.Client.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(from),
		ToBlock:   head.Number,
		Addresses: []common.Address{token},
		Topics:    [][]common.Hash{{f.abi.Events["AuthorizationUsed"].ID}, {common.BytesToHash(payer.Bytes())}, {common.Hash(nonce)}},
	})
	if err != nil {
		return "", fmt.Errorf("filter AuthorizationUsed logs: %w", err)
	}
	for _, l := range logs {
		if !l.Removed {
			return l.TxHash.Hex(), nil
		}
	}
	return "", nil
}
