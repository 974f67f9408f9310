package gateway

import (
	"math/big"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/insforge/integrations-operator/internal/x402"
)

// Outcomes counted in x402_gateway_requests_total. The reason label carries the x402 reason
// code where one applies (see reasonLabel).
const (
	OutcomeChallenge     = "challenge"       // 402 without a payment
	OutcomeBadRequest    = "bad_request"     // malformed payment header (400)
	OutcomeInvalid       = "invalid"         // local check or facilitator verify refused (402)
	OutcomeSettled       = "settled"         // paid and served
	OutcomeSettleFailed  = "settle_failed"   // settle definitively failed (402)
	OutcomePending       = "settle_pending"  // settle outcome unknown (402 settlement_pending)
	OutcomeReplaySettled = "replay_settled"  // settled payment served: its first delivery, or a stored response in its replay window
	OutcomeAlreadyUsed   = "already_used"    // settled payment whose response was delivered (402 payment_already_used)
	OutcomeReplayPending = "replay_pending"  // payment in progress elsewhere (402 settlement_pending)
	OutcomeReplayUsed    = "replay_used"     // payment made for another resource or terms (402)
	OutcomeInFlight      = "in_flight"       // another payment of the payer in progress on the route (429)
	OutcomeRateLimited   = "rate_limited"    // too many refused payments from the client or payer (429)
	OutcomeNotCharged    = "upstream_failed" // upstream status >= 400 or error: claim released
	OutcomeUnavailable   = "unavailable"     // ledger or facilitator unreachable before settle (503)
	OutcomeUnpriced      = "unpriced"        // proxied or refused unpriced path
)

// Metrics are the gateway's Prometheus metrics, registered on a registry the caller owns.
type Metrics struct {
	requests      *prometheus.CounterVec
	settledAtomic *prometheus.CounterVec
	verify        *prometheus.HistogramVec
	settle        *prometheus.HistogramVec
	upstream      *prometheus.HistogramVec
	ledger        *prometheus.HistogramVec
	// Pending is the number of this route's payments whose settlement is unresolved.
	Pending prometheus.Gauge
	// Spooled is the number of outcomes waiting in the local spool.
	Spooled prometheus.Gauge
	// ResolverLeader is 1 while this replica runs the resolver.
	ResolverLeader prometheus.Gauge
	resolved       *prometheus.CounterVec
	recordFailures prometheus.Counter
}

// NewMetrics creates the metrics and registers them (plus Go and process collectors) on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "x402_gateway_requests_total", Help: "Requests to priced paths by outcome and x402 reason; unpriced requests under outcome unpriced.",
		}, []string{"route", "outcome", "reason"}),
		settledAtomic: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "x402_gateway_settled_atomic_total", Help: "Settled amount in the asset's atomic units.",
		}, []string{"route"}),
		verify: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "x402_gateway_verify_seconds", Help: "Facilitator verify latency.", Buckets: buckets,
		}, []string{"route"}),
		settle: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "x402_gateway_settle_seconds", Help: "Facilitator settle latency.", Buckets: buckets,
		}, []string{"route"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "x402_gateway_upstream_seconds", Help: "Upstream latency of paid requests (buffered routes: until the body is read).", Buckets: buckets,
		}, []string{"route"}),
		ledger: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "x402_gateway_ledger_seconds", Help: "Ledger statement latency by operation.", Buckets: buckets,
		}, []string{"op"}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "x402_gateway_pending_payments", Help: "Payments of this route whose settlement outcome is unknown (pending or settling).",
		}),
		Spooled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "x402_gateway_spooled_outcomes", Help: "Settle outcomes waiting in the local spool for the database.",
		}),
		ResolverLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "x402_gateway_resolver_leader", Help: "1 while this replica resolves unknown settlements.",
		}),
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "x402_gateway_resolved_total", Help: "Unknown settlements resolved by the resolver, by outcome.",
		}, []string{"status"}),
		recordFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "x402_gateway_record_failures_total", Help: "Settle outcomes neither the database nor the spool took (the resolver will find the row).",
		}),
	}
	reg.MustRegister(m.requests, m.settledAtomic, m.verify, m.settle, m.upstream, m.ledger, m.Pending, m.Spooled,
		m.ResolverLeader, m.resolved, m.recordFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) outcome(route, outcome, reason string) {
	m.requests.WithLabelValues(route, outcome, reasonLabel(reason)).Inc()
}

// Reason label values beyond the x402 reason codes.
const (
	// reasonLedgerUnavailable: the ledger could not be read or written (503, nothing charged).
	reasonLedgerUnavailable = "ledger_unavailable"
	// reasonOther stands for any reason that is not a known code.
	reasonOther = "other"
)

// reasonLabel bounds the reason label. A facilitator answers its reasons over the network and
// may send any text (an error message, a revert string); each distinct label value would be a
// new time series, so only the known codes are kept and the rest count as "other" (the ledger
// row and the log keep the original).
func reasonLabel(reason string) string {
	if reason == "" || reason == reasonLedgerUnavailable || x402.Reason(reason).Known() {
		return reason
	}
	return reasonOther
}

func (m *Metrics) settledAmount(route, atomic string) {
	if v, ok := new(big.Float).SetString(atomic); ok {
		f, _ := v.Float64()
		m.settledAtomic.WithLabelValues(route).Add(f)
	}
}

func since(h *prometheus.HistogramVec, label string, start time.Time) {
	h.WithLabelValues(label).Observe(time.Since(start).Seconds())
}

// Resolved counts a resolver outcome (for ledger.ResolverConfig.OnResolved).
func (m *Metrics) Resolved(status string) { m.resolved.WithLabelValues(status).Inc() }
