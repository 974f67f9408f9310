package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// Options assemble a Handler.
type Options struct {
	// Config is a loaded, validated configuration.
	Config config.Config
	// Facilitator verifies and settles.
	Facilitator facilitator.Facilitator
	// Ledger records payments; Spool takes outcomes the database cannot.
	Ledger *ledger.Ledger
	Spool  *ledger.Spool
	// Metrics; required (create with NewMetrics on your own registry).
	Metrics *Metrics
	// Logger; nil discards.
	Logger *slog.Logger
	// Transport reaches the upstream; nil means a tuned http.Transport.
	Transport http.RoundTripper
	// Now is the clock of the local checks; nil means time.Now.
	Now func() time.Time
	// RecoverCache remembers the signers the local check recovers. Give the in-process
	// facilitator (mock, onchain) the same cache: its verify and settle then re-check the
	// payment without recovering the signature again, which is most of a check's CPU. nil
	// means no cache (each check recovers).
	RecoverCache *eip3009.RecoverCache
}

// Handler is the gateway's data-plane http.Handler.
type Handler struct {
	cfg      config.Config
	fac      facilitator.Facilitator
	ledger   *ledger.Ledger
	spool    *ledger.Spool
	metrics  *Metrics
	log      *slog.Logger
	routes   *routeTable
	up       *upstream
	verifier eip3009.Verifier
	now      func() time.Time
	mock     bool
	limits   *limits
	replays  *replayCache
}

// New builds a Handler.
func New(o Options) (*Handler, error) {
	if o.Facilitator == nil || o.Ledger == nil || o.Spool == nil || o.Metrics == nil {
		return nil, errors.New("gateway: facilitator, ledger, spool and metrics are required")
	}
	base, err := url.Parse(o.Config.Upstream)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("gateway: upstream URL %q is not absolute", o.Config.Upstream)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Transport == nil {
		o.Transport = NewTransport(o.Config.Gateway.UpstreamTimeout.Duration)
	}
	g := o.Config.Gateway
	return &Handler{
		cfg: o.Config, fac: o.Facilitator, ledger: o.Ledger, spool: o.Spool, metrics: o.Metrics, log: o.Logger,
		routes:   newRouteTable(o.Config),
		up:       newUpstream(base, o.Transport, g.UpstreamTimeout.Duration, g.MaxResponseBytes, g.PayerHeader, g.TrustsForwarded()),
		verifier: eip3009.Verifier{Cache: o.RecoverCache},
		now:      o.Now,
		mock:     o.Config.Facilitator.Kind == config.KindMock,
		limits:   newLimits(o.Now),
		replays:  newReplayCache(o.Now, replayBudget),
	}, nil
}

// NewTransport is the upstream transport: keep-alive pools sized for a busy gateway, and the
// upstream timeout as the bound on waiting for response headers (streams may last longer).
func NewTransport(headerTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 512
	t.ResponseHeaderTimeout = headerTimeout
	return t
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.Gateway.MaxRequestBytes)
	dw := withIdleWrites(w, h.cfg.Gateway.WriteIdleTimeout.Duration)
	defer dw.finish()
	w = dw
	method := r.Method
	if method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		method = r.Header.Get("Access-Control-Request-Method")
	}
	// One spelling per resource: everything below (matching, the ledger, the resource URL, the
	// upstream) sees the canonical path, so an upstream's own normalisation is a no-op.
	cp, rt, err := h.routes.resolve(method, requestPath(r))
	if err != nil {
		h.metrics.outcome("", OutcomeBadRequest, string(x402.ReasonInvalidPath))
		writeError(w, http.StatusBadRequest, string(x402.ReasonInvalidPath), err.Error()) // never quotes the path
		return
	}
	rewritePath(r, cp)
	if rt == nil {
		h.unpriced(w, r)
		return
	}
	if r.Method == http.MethodOptions && method != r.Method {
		h.preflight(w, method)
		return
	}
	h.cors(w)
	if !hasPayment(r) {
		h.metrics.outcome(rt.label, OutcomeChallenge, "")
		h.challenge(w, r, rt, http.StatusPaymentRequired, "", msgPaymentRequired)
		return
	}
	client := clientKey(r, h.cfg.Gateway.TrustsForwarded())
	if ok, wait := h.limits.allowed(client); !ok {
		h.rateLimited(w, rt, wait)
		return
	}
	p, perr := h.decodePayment(r, rt, h.now())
	if perr != nil {
		h.limits.refused(client)
		outcome := OutcomeInvalid
		if perr.status == http.StatusBadRequest {
			outcome = OutcomeBadRequest
		}
		h.metrics.outcome(rt.label, outcome, string(perr.reason))
		h.challenge(w, r, rt, perr.status, perr.reason, perr.msg)
		return
	}
	if ok, wait := h.limits.allowed(payerLimitKey(p.payer)); !ok {
		h.rateLimited(w, rt, wait)
		return
	}
	if v, ok := h.limits.unfundedVerdict(p.payer); ok {
		// Answered from memory: no ledger row and no facilitator call for a wallet known empty.
		h.limits.refused(client, payerLimitKey(p.payer))
		h.metrics.outcome(rt.label, OutcomeInvalid, string(v.reason))
		h.challenge(w, r, rt, http.StatusPaymentRequired, v.reason, v.msg)
		return
	}
	h.pay(w, r, rt, p)
}

// rateLimited answers 429: this client or payer sent too many refused payments lately.
func (h *Handler) rateLimited(w http.ResponseWriter, rt *route, wait time.Duration) {
	h.metrics.outcome(rt.label, OutcomeRateLimited, string(x402.ReasonRateLimited))
	retryAfter(w, wait)
	writeError(w, http.StatusTooManyRequests, string(x402.ReasonRateLimited),
		"too many refused payments from this client or payer; retry later")
}

func (h *Handler) unpriced(w http.ResponseWriter, r *http.Request) {
	h.metrics.outcome("", OutcomeUnpriced, "")
	if h.cfg.Gateway.UnpricedPaths == config.UnpricedReject {
		writeError(w, http.StatusNotFound, "", "not found")
		return
	}
	h.up.stream(w, r, "", nil)
}
