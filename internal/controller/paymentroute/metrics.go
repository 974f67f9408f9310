package paymentroute

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/insforge/integrations-operator/internal/controller/kit"
)

// metrics are the PaymentRoute controller's own metrics, beside controller-runtime's.
type metrics struct {
	// routes counts PaymentRoutes by state (kit.StateReady, StateReconciling, StateStalled).
	routes         *kit.StateGauge
	statusWrites   prometheus.Counter
	deferredWrites prometheus.Counter
	applies        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	routes, err := kit.NewStateGauge(reg, "insforge_paymentroutes", "PaymentRoutes by state: ready, reconciling or stalled.")
	if err != nil {
		return nil, err
	}
	m := &metrics{
		routes: routes,
		statusWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "insforge_paymentroute_status_writes_total",
			Help: "PaymentRoute status writes.",
		}),
		deferredWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "insforge_paymentroute_status_writes_coalesced_total",
			Help: "PaymentRoute totals changes held back to be written together with later ones.",
		}),
		applies: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "insforge_paymentroute_gateway_applies_total",
			Help: "Server-side applies of a route's gateway objects (none while nothing changed).",
		}),
	}
	for _, c := range []*prometheus.Counter{&m.statusWrites, &m.deferredWrites, &m.applies} {
		if *c, err = kit.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
