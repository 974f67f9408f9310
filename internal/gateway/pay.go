package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/x402"
)

// recordTimeout bounds writing an outcome to the database before it goes to the spool.
const recordTimeout = 5 * time.Second

// unavailableRetry is the Retry-After of 503 answers (nothing was charged; try again soon).
const unavailableRetry = 5 * time.Second

// pay runs the paid path for a payment that passed the local checks.
func (h *Handler) pay(w http.ResponseWriter, r *http.Request, rt *route, p *payment) {
	ctx := r.Context()
	start := time.Now()
	c, err := h.ledger.Claim(ctx, ledger.Intent{
		Payer: p.payer, Nonce: p.nonce, Route: h.cfg.Route, Endpoint: r.URL.Path, Resource: h.resourceURL(r),
		Amount: rt.req.Amount, Network: rt.req.Network, Asset: rt.req.Asset, PayTo: rt.req.PayTo,
		Facilitator: h.cfg.Facilitator.Kind, Mock: h.mock, Payload: p.raw,
	})
	since(h.metrics.ledger, "claim", start)
	if err != nil {
		h.log.Error("ledger claim failed; not settling", "route", rt.label, "payer", p.payer, "error", err)
		h.unavailable(w, rt, "ledger_unavailable", "the payment ledger is unavailable; nothing was charged")
		return
	}
	if !c.Won {
		h.answerExisting(w, r, rt, p, c.Payment)
		return
	}
	t := c.Ticket

	start = time.Now()
	v, err := h.fac.Verify(ctx, p.payload, rt.req)
	since(h.metrics.verify, rt.label, start)
	if err != nil {
		h.release(ctx, t, "verify error")
		h.log.Warn("facilitator verify failed", "route", rt.label, "payer", p.payer, "error", err)
		h.unavailable(w, rt, string(x402.ReasonUnexpectedVerifyError), "the facilitator could not verify the payment; nothing was charged")
		return
	}
	if !v.Valid {
		h.release(ctx, t, "verify: "+string(v.Reason))
		h.metrics.outcome(rt.label, OutcomeInvalid, string(v.Reason))
		h.challenge(w, r, rt, http.StatusPaymentRequired, v.Reason, v.Message)
		return
	}

	if rt.before {
		sr, ok := h.settle(w, r, rt, p, t)
		if ok {
			h.metrics.outcome(rt.label, OutcomeSettled, "")
			h.up.stream(w, r, p.payer, receipt(p.version, sr))
		}
		return
	}

	start = time.Now()
	resp, err := h.up.fetch(ctx, r, p.payer)
	since(h.metrics.upstream, rt.label, start)
	if err != nil || resp.status >= 400 {
		reason := "upstream error"
		if err == nil {
			reason = "upstream status " + strconv.Itoa(resp.status)
		}
		h.release(ctx, t, reason)
		h.metrics.outcome(rt.label, OutcomeNotCharged, "")
		if err != nil {
			status, msg := http.StatusBadGateway, "the upstream did not answer; nothing was charged"
			if errors.Is(err, errTooLarge) {
				msg = "the upstream response is larger than the gateway buffers; nothing was charged"
			} else if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				status, msg = http.StatusGatewayTimeout, "the upstream timed out; nothing was charged"
			}
			writeError(w, status, "upstream_failed", msg)
			return
		}
		resp.write(w, nil) // passed through, not charged
		return
	}
	sr, ok := h.settle(w, r, rt, p, t)
	if !ok {
		return
	}
	h.metrics.outcome(rt.label, OutcomeSettled, "")
	resp.write(w, receipt(p.version, sr))
}

// settle marks the row settling, settles and records the outcome. When the payment did not
// settle it answers the client and returns false.
func (h *Handler) settle(w http.ResponseWriter, r *http.Request, rt *route, p *payment, t ledger.Ticket) (x402.SettleResponse, bool) {
	ctx := r.Context()
	start := time.Now()
	err := h.ledger.MarkSettling(ctx, t)
	since(h.metrics.ledger, "settling", start)
	if err != nil {
		h.release(ctx, t, "could not mark settling")
		h.log.Error("ledger: marking settling failed; not settling", "route", rt.label, "payer", p.payer, "error", err)
		h.unavailable(w, rt, "ledger_unavailable", "the payment ledger is unavailable; nothing was charged")
		return x402.SettleResponse{}, false
	}
	// From here on money may move: the client going away must not cut the settle or its record.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.Gateway.SettleTimeout.Duration)
	defer cancel()
	start = time.Now()
	res, err := h.fac.Settle(sctx, p.payload, rt.req)
	since(h.metrics.settle, rt.label, start)
	if err != nil {
		// Settle's contract: an error means nothing was submitted.
		res = facilitator.SettleResult{State: facilitator.StateFailed, Network: rt.req.Network, Payer: p.payer,
			Reason: x402.ReasonUnexpectedSettleError, Message: "the settlement could not be submitted"}
		h.log.Warn("facilitator settle not submitted", "route", rt.label, "payer", p.payer, "error", err)
	}
	if res.Payer == "" {
		res.Payer = p.payer
	}
	if res.Network == "" {
		res.Network = rt.req.Network
	}
	sr := res.Response()
	switch res.State {
	case facilitator.StateSettled:
		h.record(ctx, rt, p, t, ledger.Outcome{Status: ledger.StatusSettled, TxHash: res.TxHash, ResponseSummary: "settled", Served: true})
		h.metrics.settledAmount(rt.label, rt.req.Amount)
		return sr, true
	case facilitator.StateFailed:
		h.record(ctx, rt, p, t, ledger.Outcome{Status: ledger.StatusFailed, TxHash: res.TxHash, Reason: string(res.Reason) + ": " + res.Message})
		h.metrics.outcome(rt.label, OutcomeSettleFailed, string(res.Reason))
		setHeaders(w, receipt(p.version, sr))
		h.challenge(w, r, rt, http.StatusPaymentRequired, res.Reason, "settlement failed: "+res.Message)
		return sr, false
	default:
		h.record(ctx, rt, p, t, ledger.Outcome{Status: ledger.StatusPending, TxHash: res.TxHash, Reason: res.Message})
		h.metrics.outcome(rt.label, OutcomePending, "")
		h.pending(w, p.version, sr, h.cfg.Gateway.PendingRetryAfter.Duration)
		return sr, false
	}
}

// record writes an outcome to the ledger or, failing that, to the spool. If neither takes it
// the row is still settling in the database and the resolver will resolve it.
func (h *Handler) record(ctx context.Context, rt *route, p *payment, t ledger.Ticket, o ledger.Outcome) {
	id := t.ID
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	start := time.Now()
	spooled, err := h.ledger.ApplyOrSpool(rctx, h.spool, t, o)
	since(h.metrics.ledger, "record", start)
	switch {
	case err != nil:
		h.metrics.recordFailures.Inc()
		h.log.Error("settle outcome not recorded; the resolver will resolve the settling row",
			"id", id, "route", rt.label, "payer", p.payer, "status", o.Status, "tx", o.TxHash, "error", err)
	case spooled:
		h.metrics.Spooled.Inc()
		h.log.Warn("settle outcome spooled; the database did not take it", "id", id, "status", o.Status, "tx", o.TxHash)
	case o.Status != ledger.StatusSettled:
		h.log.Info("payment not settled", "id", id, "route", rt.label, "payer", p.payer, "status", o.Status, "reason", o.Reason, "tx", o.TxHash)
	}
}

// release gives a claim up before settle; failure is harmless (the resolver releases abandoned
// claims) but logged.
func (h *Handler) release(ctx context.Context, t ledger.Ticket, reason string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	start := time.Now()
	if err := h.ledger.Release(rctx, t, reason); err != nil {
		h.log.Warn("ledger: releasing a claim failed; the resolver will release it", "id", t.ID, "error", err)
	}
	since(h.metrics.ledger, "release", start)
}

// answerExisting answers a payment that another request claimed first.
func (h *Handler) answerExisting(w http.ResponseWriter, r *http.Request, rt *route, p *payment, row ledger.Payment) {
	switch row.Status {
	case ledger.StatusSettled:
		if row.Route != h.cfg.Route || row.Endpoint != r.URL.Path || !strings.EqualFold(row.PayTo, rt.req.PayTo) || row.Amount != rt.req.Amount {
			h.metrics.outcome(rt.label, OutcomeReplayUsed, string(x402.ReasonNonceAlreadyUsed))
			h.challenge(w, r, rt, http.StatusPaymentRequired, x402.ReasonNonceAlreadyUsed, "this payment was already used for another resource")
			return
		}
		// The payer paid for this resource; a retry (lost response) gets the content again.
		h.metrics.outcome(rt.label, OutcomeReplaySettled, "")
		sr := x402.SettleResponse{Success: true, Transaction: row.TxHash, Network: row.Network, Payer: p.payer}
		if rt.before {
			h.up.stream(w, r, p.payer, receipt(p.version, sr))
			return
		}
		resp, err := h.up.fetch(r.Context(), r, p.payer)
		if err != nil {
			writeError(w, http.StatusBadGateway, "upstream_failed", "the upstream did not answer; the payment stays settled, retry")
			return
		}
		resp.write(w, receipt(p.version, sr))
	case ledger.StatusVerifying, ledger.StatusSettling, ledger.StatusPending:
		h.metrics.outcome(rt.label, OutcomeReplayPending, "")
		wait := h.cfg.Gateway.PendingRetryAfter.Duration
		if row.Status != ledger.StatusPending {
			wait = 2 * time.Second // in flight in another request: answered within seconds
		}
		h.pending(w, p.version, x402.SettleResponse{
			Success: false, ErrorReason: string(x402.ReasonSettlementPending), Transaction: row.TxHash,
			Network: row.Network, Payer: p.payer,
		}, wait)
	default:
		h.unavailable(w, rt, "ledger_unavailable", "the payment is in an unexpected state; retry")
	}
}

// pending answers 402 settlement_pending: the payment may have moved money, so the client must
// retry the same payment later and must not sign a new one. No fresh challenge is sent.
func (h *Handler) pending(w http.ResponseWriter, version int, sr x402.SettleResponse, wait time.Duration) {
	sr.Success = false
	sr.ErrorReason = string(x402.ReasonSettlementPending)
	setHeaders(w, receipt(version, sr))
	retryAfter(w, wait)
	writeJSON(w, http.StatusPaymentRequired, errorBody{
		X402Version: x402.Version2, Reason: string(x402.ReasonSettlementPending), Transaction: sr.Transaction,
		Error: "the settlement of this payment is not confirmed yet; retry the same payment after Retry-After, do not pay again",
	})
}

// unavailable answers 503: nothing was charged, retry the same payment soon.
func (h *Handler) unavailable(w http.ResponseWriter, rt *route, reason, msg string) {
	h.metrics.outcome(rt.label, OutcomeUnavailable, reason)
	retryAfter(w, unavailableRetry)
	writeError(w, http.StatusServiceUnavailable, reason, msg)
}
