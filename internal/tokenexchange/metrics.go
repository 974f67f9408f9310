package tokenexchange

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ProviderUnknown labels exchanges whose issuer was not identified.
const ProviderUnknown = "unknown"

// Metrics are the exchange's Prometheus metrics, registered on a registry the caller owns.
type Metrics struct {
	exchanges *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	fetches   *prometheus.CounterVec
	jwksKeys  *prometheus.GaugeVec
	keyInfo   *prometheus.GaugeVec
	keyLoaded prometheus.Gauge
}

// NewMetrics creates the metrics and registers them (plus Go and process collectors) on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "insforge_exchange_exchanges_total", Help: "Token exchanges by provider and outcome (ok or the failure reason).",
		}, []string{"provider", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "insforge_exchange_duration_seconds", Help: "Time to verify a provider token and mint an InsForge token (JWKS fetches included).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"provider"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "insforge_exchange_jwks_fetches_total", Help: "Fetches of providers' key sets by result.",
		}, []string{"provider", "result"}),
		jwksKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "insforge_exchange_jwks_keys", Help: "Usable keys in each issuer's cached key set.",
		}, []string{"provider", "jwks_url"}),
		keyInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "insforge_exchange_signing_key_info", Help: "1 for the loaded signing key, labelled by its fingerprint (sha256: and 12 hex digits of its hash).",
		}, []string{"fingerprint"}),
		keyLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "insforge_exchange_signing_key_loaded", Help: "1 while a signing key is loaded; 0 means exchanges answer 503.",
		}),
	}
	reg.MustRegister(m.exchanges, m.duration, m.fetches, m.jwksKeys, m.keyInfo, m.keyLoaded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) exchanged(provider string, outcome Reason, seconds float64) {
	if m == nil {
		return
	}
	if provider == "" {
		provider = ProviderUnknown
	}
	m.exchanges.WithLabelValues(provider, string(outcome)).Inc()
	m.duration.WithLabelValues(provider).Observe(seconds)
}

// rejected counts a request refused before any token was looked at.
func (m *Metrics) rejected(outcome Reason) {
	if m != nil {
		m.exchanges.WithLabelValues(ProviderUnknown, string(outcome)).Inc()
	}
}

func (m *Metrics) fetched(provider, result string) {
	if m != nil {
		m.fetches.WithLabelValues(provider, result).Inc()
	}
}

func (m *Metrics) keys(provider, url string, n int) {
	if m != nil {
		m.jwksKeys.WithLabelValues(provider, url).Set(float64(n))
	}
}

func (m *Metrics) signingKey(fingerprint string) {
	if m == nil {
		return
	}
	m.keyInfo.Reset()
	if fingerprint == "" {
		m.keyLoaded.Set(0)
		return
	}
	m.keyInfo.WithLabelValues(fingerprint).Set(1)
	m.keyLoaded.Set(1)
}
