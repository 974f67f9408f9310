package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/x402"
)

// Resolver resolves unknown settlements for the ledger's RunResolver: first through the
// facilitator's status call, then, when that cannot answer or says unknown, through Chain (an
// on-chain lookup of authorizationState and the AuthorizationUsed log), if configured.
type Resolver struct {
	Facilitator facilitator.Facilitator
	// Chain is an optional on-chain status source (an onchain.Facilitator).
	Chain facilitator.Facilitator
}

var _ ledger.Resolver = Resolver{}

// Resolve implements ledger.Resolver.
func (r Resolver) Resolve(ctx context.Context, p ledger.Payment) (ledger.Outcome, error) {
	var payload x402.PaymentPayload
	if err := json.Unmarshal(p.Payload, &payload); err != nil {
		return ledger.Outcome{}, fmt.Errorf("resolve %s: stored payload: %w", p.ID, err)
	}
	ref, err := facilitator.RefFor(payload, x402.PaymentRequirements{Network: p.Network, Asset: p.Asset}, p.TxHash)
	if err != nil {
		return ledger.Outcome{}, fmt.Errorf("resolve %s: %w", p.ID, err)
	}
	res, err := r.Facilitator.SettleStatus(ctx, ref)
	if r.Chain != nil && (err != nil || res.State == facilitator.StateUnknown) {
		if cres, cerr := r.Chain.SettleStatus(ctx, ref); cerr == nil {
			res, err = cres, nil
		} else if errors.Is(err, facilitator.ErrStatusUnsupported) || err == nil {
			err = cerr
		}
	}
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
