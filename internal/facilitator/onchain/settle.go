package onchain

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// gasHeadroom is added to the gas estimate (percent): state may change between estimate and
// inclusion, and running out of gas would burn the relayer's fee for nothing.
const gasHeadroom = 25

// Settle implements facilitator.Facilitator. It re-runs Verify, sends transferWithAuthorization
// from the relayer and waits, at most ReceiptTimeout, for the receipt.
func (f *Facilitator) Settle(ctx context.Context, payment x402.PaymentPayload, req x402.PaymentRequirements) (facilitator.SettleResult, error) {
	v, calldata, res, err := f.check(ctx, payment, req)
	if err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("onchain settle: verify: %w", err)
	}
	if !res.Valid {
		return facilitator.SettleResult{State: facilitator.StateFailed, Network: f.network, Payer: res.Payer, Reason: res.Reason, Message: res.Message}, nil
	}
	payer := v.Payer.Hex()
	token := v.Domain.VerifyingContract
	gas, err := f.cfg.Client.EstimateGas(ctx, ethereum.CallMsg{From: f.relayer, To: &token, Data: calldata})
	if err != nil {
		if isRevert(err) {
			reason, msg := f.diagnose(ctx, v, err)
			return facilitator.SettleResult{State: facilitator.StateFailed, Network: f.network, Payer: payer, Reason: reason, Message: msg}, nil
		}
		return facilitator.SettleResult{}, fmt.Errorf("onchain settle: estimate gas: %w", err)
	}
	gas += gas * gasHeadroom / 100
	tip, feeCap, err := f.fees(ctx)
	if err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("onchain settle: %w", err)
	}

	tx, sent, err := f.send(ctx, func(nonce uint64) *types.DynamicFeeTx {
		return &types.DynamicFeeTx{ChainID: f.chainID, Nonce: nonce, To: &token, Gas: gas, GasTipCap: tip, GasFeeCap: feeCap, Data: calldata}
	})
	if err != nil {
		return facilitator.SettleResult{}, fmt.Errorf("onchain settle: %w", err)
	}
	hash := tx.Hash().Hex()
	if !sent {
		return facilitator.Unknown(hash, f.network, payer, "sending the transaction failed in transit; it may be in the pool"), nil
	}
	if f.cfg.AfterSend != nil {
		f.cfg.AfterSend(ctx)
	}
	receipt, err := f.waitReceipt(ctx, tx.Hash())
	if err != nil {
		return facilitator.Unknown(hash, f.network, payer, "no receipt yet: %v", err), nil
	}
	return f.fromReceipt(ctx, receipt, v), nil
}

// fromReceipt maps a mined settlement to a result. A reverted transaction moved nothing; what
// it means depends on who used the nonce.
func (f *Facilitator) fromReceipt(ctx context.Context, r *types.Receipt, v eip3009.Verified) facilitator.SettleResult {
	hash, payer := r.TxHash.Hex(), v.Payer.Hex()
	if r.Status == types.ReceiptStatusSuccessful {
		return facilitator.SettleResult{State: facilitator.StateSettled, TxHash: hash, Network: f.network, Payer: payer}
	}
	failed := func(reason x402.Reason, format string, args ...any) facilitator.SettleResult {
		return facilitator.SettleResult{State: facilitator.StateFailed, TxHash: hash, Network: f.network, Payer: payer,
			Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	a := v.Authorization
	use, err := f.lookup.findNonceUse(ctx, payment{token: v.Domain.VerifyingContract, payer: a.From, payTo: a.To, nonce: a.Nonce, value: a.Value})
	switch {
	case err != nil:
		return facilitator.Unknown(hash, f.network, payer, "transferWithAuthorization reverted; whether another transaction used the authorization could not be read: %v", err)
	case use.kind == nonceUnused:
		return failed(x402.ReasonTransactionFailed, "transferWithAuthorization reverted")
	case use.kind == nonceUsedPaid:
		// Another transaction (a racing relayer) delivered this payment first. Settle's "settled"
		// means this call made the transfer, which a replay must never read as, so the outcome
		// is left to SettleStatus, which books it with that transaction.
		return facilitator.Unknown(hash, f.network, payer, "transferWithAuthorization reverted: transaction %s delivered the authorization first", use.tx.Hex())
	case use.kind == nonceUsedUnseen:
		return facilitator.Unknown(hash, f.network, payer, "transferWithAuthorization reverted: the authorization is used by a transaction not found in the last %d blocks", f.lookup.lookback)
	case use.kind == nonceCanceled:
		return failed(x402.ReasonNonceAlreadyUsed, "the payer cancelled the authorization in transaction %s", use.tx.Hex())
	default:
		return failed(x402.ReasonNonceAlreadyUsed, "the authorization was used by transaction %s, which did not make this payment", use.tx.Hex())
	}
}

func (f *Facilitator) fees(ctx context.Context) (tip, feeCap *big.Int, err error) {
	tip, err = f.cfg.Client.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("suggest gas tip: %w", err)
	}
	head, err := f.cfg.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("read head: %w", err)
	}
	base := head.BaseFee
	if base == nil {
		base = new(big.Int)
	}
	// Twice the base fee survives several full blocks of base-fee growth.
	feeCap = new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip)
	return tip, feeCap, nil
}

// send assigns the relayer's next nonce, signs and sends under one lock, so concurrent
// settlements get distinct, gap-free nonces. sent=false with a nil error means the send failed
// in transit and the transaction may or may not be in the pool. An error means the node
// rejected the transaction (it is not in the pool) or it was never sent.
func (f *Facilitator) send(ctx context.Context, build func(nonce uint64) *types.DynamicFeeTx) (*types.Transaction, bool, error) {
	f.nonceMu.Lock()
	defer f.nonceMu.Unlock()
	for attempt := 0; ; attempt++ {
		if !f.nonceValid {
			n, err := f.cfg.Client.PendingNonceAt(ctx, f.relayer)
			if err != nil {
				return nil, false, fmt.Errorf("read relayer nonce: %w", err)
			}
			f.nextNonce, f.nonceValid = n, true
		}
		tx, err := types.SignNewTx(f.cfg.RelayerKey, f.signer, build(f.nextNonce))
		if err != nil {
			return nil, false, fmt.Errorf("sign transaction: %w", err)
		}
		err = f.cfg.Client.SendTransaction(ctx, tx)
		if err == nil {
			f.nextNonce++
			return tx, true, nil
		}
		var rpcErr rpc.Error
		if !errors.As(err, &rpcErr) {
			// Transport failure: the node may have the transaction. Re-read the nonce next time
			// so that a lost transaction leaves no gap.
			f.nonceValid = false
			return tx, false, nil
		}
		msg := strings.ToLower(rpcErr.Error())
		if strings.Contains(msg, "already known") {
			f.nextNonce++
			return tx, true, nil
		}
		f.nonceValid = false
		// A stale nonce (someone else used the relayer key, or a restart) is safe to retry once:
		// the node refused the transaction, so nothing was submitted.
		if attempt == 0 && (strings.Contains(msg, "nonce too low") || strings.Contains(msg, "replacement transaction underpriced")) {
			continue
		}
		return nil, false, fmt.Errorf("node rejected the settlement transaction: %w", err)
	}
}

// waitReceipt polls for the receipt until it exists, ReceiptTimeout passes or ctx is done.
func (f *Facilitator) waitReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ReceiptTimeout)
	defer cancel()
	tick := time.NewTicker(f.cfg.ReceiptPoll)
	defer tick.Stop()
	for {
		r, err := f.cfg.Client.TransactionReceipt(ctx, hash)
		if err == nil {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}
