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

// pay runs the paid path for a payment that passed the local checks. Its ledger writes: the
// claim (ClaimSettling: the replay lock and the durable record that money may move, in one
// synchronous write before the facilitator is asked anything), then the outcome; a claim given
// up before settle (verify or upstream failed) is released.
func (h *Handler) pay(w http.ResponseWriter, r *http.Request, rt *route, p *payment) {
	ctx := r.Context()
	var print requestPrint
	window := h.replayWindow(r, rt)
	if window > 0 {
		var err error
		if print, err = fingerprint(r); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "the request body could not be read")
			return
		}
	}
	start := time.Now()
	c, err := h.ledger.ClaimSettling(ctx, ledger.Intent{
		Payer: p.payer, Nonce: p.nonce, Route: h.cfg.Route, Endpoint: r.URL.Path, Resource: h.resourceURL(r),
		Amount: rt.req.Amount, Network: rt.req.Network, Asset: rt.req.Asset, PayTo: rt.req.PayTo,
		Facilitator: h.cfg.Facilitator.Kind, Mock: h.mock, Payload: p.raw,
	})
	since(h.metrics.ledger, "claim", start)
	if errors.Is(err, ledger.ErrPayerBusy) {
		h.metrics.outcome(rt.label, OutcomeInFlight, string(x402.ReasonPaymentInFlight))
		retryAfter(w, inFlightRetry)
		writeError(w, http.StatusTooManyRequests, string(x402.ReasonPaymentInFlight),
			"another payment of this payer is in progress on this route; retry after it, nothing was charged")
		return
	}
	if err != nil {
		h.log.Error("ledger claim failed; not settling", "route", rt.label, "payer", p.payer, "error", err)
		h.unavailable(w, rt, reasonLedgerUnavailable, "the payment ledger is unavailable; nothing was charged")
		return
	}
	if !c.Won {
		h.answerExisting(w, r, rt, p, c.Payment, print)
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
		h.limits.refused(clientKey(r, h.cfg.Gateway.TrustsForwarded()), payerLimitKey(p.payer))
		if fundsReason(v.Reason) {
			h.limits.rememberUnfunded(p.payer, v.Reason, v.Message)
		}
		h.metrics.outcome(rt.label, OutcomeInvalid, string(v.Reason))
		h.challenge(w, r, rt, http.StatusPaymentRequired, v.Reason, v.Message)
		return
	}

	if rt.cfg.SettleBefore(r.Method) {
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
		h.upstreamFailed(ctx, w, resp, err, "nothing was charged")
		return
	}
	sr, ok := h.settle(w, r, rt, p, t)
	if !ok {
		return
	}
	h.metrics.outcome(rt.label, OutcomeSettled, "")
	if window > 0 {
		h.replays.store(t.ID, print, window, resp)
	}
	resp.write(w, receipt(p.version, sr))
}

// inFlightRetry is the Retry-After of answers about a payment another request is handling.
const inFlightRetry = 2 * time.Second

// replayWindow is how long r's response is kept for a replay of the same request: the route's
// window for GET and HEAD on a buffered route, else 0.
func (h *Handler) replayWindow(r *http.Request, rt *route) time.Duration {
	if rt.cfg.ReplayWindow.Duration <= 0 || (r.Method != http.MethodGet && r.Method != http.MethodHead) || rt.cfg.SettleBefore(r.Method) {
		return 0
	}
	return rt.cfg.ReplayWindow.Duration
}

// upstreamFailed answers a paid request whose upstream call failed (err) or refused (resp with
// status >= 400, passed through); charge says what became of the payment.
func (h *Handler) upstreamFailed(ctx context.Context, w http.ResponseWriter, resp *buffered, err error, charge string) {
	if err == nil {
		resp.write(w, nil)
		return
	}
	status, msg := http.StatusBadGateway, "the upstream did not answer; "+charge
	if errors.Is(err, errTooLarge) {
		msg = "the upstream response is larger than the gateway buffers; " + charge
	} else if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		status, msg = http.StatusGatewayTimeout, "the upstream timed out; "+charge
	}
	writeError(w, status, "upstream_failed", msg)
}

// settle settles the claimed payment (its row durably settling since the claim) and records
// the outcome. When the payment did not settle it answers the client and returns false.
func (h *Handler) settle(w http.ResponseWriter, r *http.Request, rt *route, p *payment, t ledger.Ticket) (x402.SettleResponse, bool) {
	ctx := r.Context()
	// From here on money may move: the client going away must not cut the settle or its record.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.Gateway.SettleTimeout.Duration)
	defer cancel()
	start := time.Now()
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
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	start := time.Now()
	spooled, err := h.ledger.ApplyOrSpool(rctx, h.spool, t, o)
	since(h.metrics.ledger, "record", start)
	switch {
	case err != nil:
		h.metrics.recordFailures.Inc()
		h.log.Error("settle outcome not recorded; the resolver will resolve the settling row",
			"id", t.ID, "route", rt.label, "payer", p.payer, "status", o.Status, "tx", o.TxHash, "error", err)
	case spooled:
		h.metrics.Spooled.Inc()
		h.log.Warn("settle outcome spooled; the database did not take it", "id", t.ID, "status", o.Status, "tx", o.TxHash)
	case o.Status != ledger.StatusSettled:
		h.log.Info("payment not settled", "id", t.ID, "route", rt.label, "payer", p.payer, "status", o.Status, "reason", o.Reason, "tx", o.TxHash)
	}
}

// release gives a claim up before settle; failure is harmless (the resolver fails the settling
// row once its authorization can no longer move money) but logged.
func (h *Handler) release(ctx context.Context, t ledger.Ticket, reason string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	start := time.Now()
	if err := h.ledger.Release(rctx, t, reason); err != nil {
		h.log.Warn("ledger: releasing a claim failed; the resolver will release it", "id", t.ID, "error", err)
	}
	since(h.metrics.ledger, "release", start)
}

// answerExisting answers a payment that another request claimed first. A payment buys one
// response: a settled one is served again only if it never was (the resolver settled it after
// the payer was told to wait), or, within the route's replay window, as the stored response to
// the very same request. Otherwise the payer learns that it was charged, and for what.
func (h *Handler) answerExisting(w http.ResponseWriter, r *http.Request, rt *route, p *payment, row ledger.Payment, print requestPrint) {
	if !h.sameTerms(r, rt, row) {
		h.metrics.outcome(rt.label, OutcomeReplayUsed, string(x402.ReasonNonceAlreadyUsed))
		h.challenge(w, r, rt, http.StatusPaymentRequired, x402.ReasonNonceAlreadyUsed, "this payment was already used for another resource")
		return
	}
	switch row.Status {
	case ledger.StatusSettled:
		sr := x402.SettleResponse{Success: true, Transaction: row.TxHash, Network: row.Network, Payer: p.payer}
		if stored := h.replays.lookup(row.ID, print); stored != nil && h.replayWindow(r, rt) > 0 {
			h.metrics.outcome(rt.label, OutcomeReplaySettled, "")
			stored.write(w, receipt(p.version, sr))
			return
		}
		if !row.Served && h.serveOnce(w, r, rt, p, row, sr, print) {
			return
		}
		h.metrics.outcome(rt.label, OutcomeAlreadyUsed, string(x402.ReasonPaymentUsed))
		setHeaders(w, receipt(p.version, sr))
		h.challenge(w, r, rt, http.StatusPaymentRequired, x402.ReasonPaymentUsed,
			"this payment was settled and its response delivered already (see "+paymentResponseHeader(p.version)+"); a payment buys one response")
	case ledger.StatusVerifying, ledger.StatusSettling, ledger.StatusPending:
		h.metrics.outcome(rt.label, OutcomeReplayPending, "")
		wait := h.cfg.Gateway.PendingRetryAfter.Duration
		if row.Status != ledger.StatusPending {
			wait = inFlightRetry // in flight in another request: answered within seconds
		}
		h.pending(w, p.version, x402.SettleResponse{
			Success: false, ErrorReason: string(x402.ReasonSettlementPending), Transaction: row.TxHash,
			Network: row.Network, Payer: p.payer,
		}, wait)
	default:
		h.unavailable(w, rt, reasonLedgerUnavailable, "the payment is in an unexpected state; retry")
	}
}

// sameTerms reports whether row is a payment for this very resource on these terms: a payment
// made for another path, price, recipient, network or facilitator (a mock-settled row after the
// route moved to a real facilitator, say) buys nothing here.
func (h *Handler) sameTerms(r *http.Request, rt *route, row ledger.Payment) bool {
	return row.Route == h.cfg.Route && row.Endpoint == r.URL.Path && strings.EqualFold(row.PayTo, rt.req.PayTo) &&
		row.Amount == rt.req.Amount && row.Network == rt.req.Network && strings.EqualFold(row.Asset, rt.req.Asset) &&
		row.Facilitator == h.cfg.Facilitator.Kind && row.Mock == h.mock
}

// serveOnce serves a settled payment whose response was never delivered, if this request is
// the one that marks it served. It returns false when another request did (or the ledger could
// not say), and the caller answers that the payment is used.
func (h *Handler) serveOnce(w http.ResponseWriter, r *http.Request, rt *route, p *payment, row ledger.Payment, sr x402.SettleResponse, print requestPrint) bool {
	ctx := r.Context()
	won, err := h.ledger.MarkServed(ctx, row.ID)
	if err != nil {
		h.log.Warn("ledger: marking a resolved payment served failed", "id", row.ID, "error", err)
		h.unavailable(w, rt, reasonLedgerUnavailable, "the payment ledger is unavailable; the payment stays settled, retry")
		return true
	}
	if !won {
		return false
	}
	h.metrics.outcome(rt.label, OutcomeReplaySettled, "")
	if rt.cfg.SettleBefore(r.Method) {
		h.up.stream(w, r, p.payer, receipt(p.version, sr))
		return true
	}
	resp, err := h.up.fetch(ctx, r, p.payer)
	if err != nil || resp.status >= 400 {
		// Not delivered: give the payer its one response back.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if uerr := h.ledger.UnmarkServed(uctx, row.ID); uerr != nil {
			h.log.Warn("ledger: unmarking a payment whose response failed", "id", row.ID, "error", uerr)
		}
		h.upstreamFailed(ctx, w, resp, err, "the payment stays settled, retry")
		return true
	}
	if window := h.replayWindow(r, rt); window > 0 {
		h.replays.store(row.ID, print, window, resp)
	}
	resp.write(w, receipt(p.version, sr))
	return true
}

// paymentResponseHeader names the receipt header of a payment version.
func paymentResponseHeader(version int) string {
	if version == x402.Version1 {
		return x402.HeaderXPaymentResponse
	}
	return x402.HeaderPaymentResponse
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
