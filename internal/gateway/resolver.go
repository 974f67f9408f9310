package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// Resolver resolves unknown settlements for the ledger's RunResolver. It asks the facilitator's
// status call first; when that cannot answer or says unknown, it asks Chain. A facilitator's
// "settled" is booked only once Chain confirms the transfer; its "failed" stands.
type Resolver struct {
	Facilitator facilitator.Facilitator
	// Chain is the on-chain status source (an onchain.Lookup): required for facilitators whose
	// word is not the chain's (okx, http). Leave it nil only when the facilitator's own status is
	// the chain's (onchain) or no money moves (mock).
	Chain facilitator.StatusSource
}

var _ ledger.Resolver = Resolver{}

// Resolve implements ledger.Resolver.
func (r Resolver) Resolve(ctx context.Context, p ledger.Payment) (ledger.Outcome, error) {
	ref, err := refOf(p)
	if err != nil {
		// Never guess: the row stays unresolved (and is reported as stuck after an hour).
		return ledger.Outcome{}, fmt.Errorf("resolve %s: %w", p.ID, err)
	}
	res, err := r.status(ctx, ref)
	if err != nil {
		return ledger.Outcome{}, fmt.Errorf("resolve %s: %w", p.ID, err)
	}
	switch res.State {
	case facilitator.StateSettled:
		return ledger.Outcome{Status: ledger.StatusSettled, TxHash: res.TxHash, ResponseSummary: "settled (resolved)"}, nil
	case facilitator.StateFailed:
		return ledger.Outcome{Status: ledger.StatusFailed, TxHash: res.TxHash, Reason: string(res.Reason) + ": " + res.Message}, nil
	default:
		return ledger.Outcome{Status: ledger.StatusPending, TxHash: res.TxHash, Reason: res.Message}, nil
	}
}

// status asks the facilitator, then the chain: to confirm a "settled", or when the facilitator
// has no answer.
func (r Resolver) status(ctx context.Context, ref facilitator.SettleRef) (facilitator.SettleResult, error) {
	res, err := r.Facilitator.SettleStatus(ctx, ref)
	if r.Chain == nil {
		return res, err
	}
	switch {
	case err == nil && res.State == facilitator.StateFailed:
		return res, nil
	case err == nil && res.State == facilitator.StateSettled:
		// A status API's word (or a hash it names) is no proof that value reached payTo.
		confirm := ref
		if res.TxHash != "" {
			confirm.TxHash = res.TxHash
		}
		cres, cerr := r.Chain.SettleStatus(ctx, confirm)
		if cerr != nil {
			return facilitator.SettleResult{}, fmt.Errorf("confirming the facilitator's settlement %s on chain: %w", res.TxHash, cerr)
		}
		return cres, nil
	}
	cres, cerr := r.Chain.SettleStatus(ctx, ref)
	if cerr == nil {
		return cres, nil
	}
	if err == nil || errors.Is(err, facilitator.ErrStatusUnsupported) {
		err = cerr
	}
	return facilitator.SettleResult{}, err
}

// refOf builds the status reference of a row from its own columns (payTo, amount) and checks that
// the stored authorization is the one the row describes, so that a lookup can never confirm a
// payment other than the row's.
func refOf(p ledger.Payment) (facilitator.SettleRef, error) {
	var payload x402.PaymentPayload
	if err := json.Unmarshal(p.Payload, &payload); err != nil {
		return facilitator.SettleRef{}, fmt.Errorf("stored payload: %w", err)
	}
	ref, err := facilitator.RefFor(payload, x402.PaymentRequirements{Network: p.Network, Asset: p.Asset}, p.TxHash)
	if err != nil {
		return facilitator.SettleRef{}, err
	}
	exact, err := payload.ExactEVM()
	if err != nil {
		return facilitator.SettleRef{}, fmt.Errorf("stored payload: %w", err)
	}
	a, err := eip3009.ParseAuthorization(exact.Authorization)
	if err != nil {
		return facilitator.SettleRef{}, fmt.Errorf("stored authorization: %w", err)
	}
	amount, ok := new(big.Int).SetString(p.Amount, 10)
	switch {
	case !common.IsHexAddress(p.Payer) || a.From != common.HexToAddress(p.Payer):
		return facilitator.SettleRef{}, fmt.Errorf("stored authorization is from %s, the row's payer is %s", a.From.Hex(), p.Payer)
	case !strings.EqualFold(common.Hash(a.Nonce).Hex(), p.Nonce):
		return facilitator.SettleRef{}, fmt.Errorf("stored authorization has nonce %s, the row has %s", common.Hash(a.Nonce).Hex(), p.Nonce)
	case !common.IsHexAddress(p.PayTo) || a.To != common.HexToAddress(p.PayTo):
		return facilitator.SettleRef{}, fmt.Errorf("stored authorization pays %s, the row's payTo is %s", a.To.Hex(), p.PayTo)
	case !ok || a.Value.Cmp(amount) != 0:
		return facilitator.SettleRef{}, fmt.Errorf("stored authorization moves %s, the row's amount is %s", a.Value, p.Amount)
	}
	ref.PayTo, ref.Value = p.PayTo, p.Amount
	return ref, nil
}
