package paymentroute

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
)

// Route states, the values of the state label.
const (
	routeStateReady       = "ready"
	routeStateReconciling = "reconciling"
	routeStateStalled     = "stalled"
)

// metrics are the PaymentRoute controller's own metrics, beside controller-runtime's.
type metrics struct {
	routes         *prometheus.GaugeVec
	statusWrites   prometheus.Counter
	deferredWrites prometheus.Counter
	applies        prometheus.Counter

	mu     sync.Mutex
	states map[types.NamespacedName]string
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		routes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "insforge_paymentroutes",
			Help: "PaymentRoutes by state: ready, reconciling or stalled.",
		}, []string{"state"}),
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
		states: map[types.NamespacedName]string{},
	}
	var err error
	if m.routes, err = kit.Register(reg, m.routes); err != nil {
		return nil, err
	}
	for _, c := range []*prometheus.Counter{&m.statusWrites, &m.deferredWrites, &m.applies} {
		if *c, err = kit.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	for _, s := range []string{routeStateReady, routeStateReconciling, routeStateStalled} {
		m.routes.WithLabelValues(s).Set(0)
	}
	return m, nil
}

// observe records a route's state from its conditions; "" forgets the route (deleted).
func (m *metrics) observe(key types.NamespacedName, conds []metav1.Condition) {
	state := ""
	switch {
	case conds == nil:
	case meta.IsStatusConditionTrue(conds, integrationsv1alpha1.ConditionStalled):
		state = routeStateStalled
	case meta.IsStatusConditionTrue(conds, integrationsv1alpha1.ConditionReady):
		state = routeStateReady
	default:
		state = routeStateReconciling
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.states[key]; ok {
		m.routes.WithLabelValues(old).Dec()
		delete(m.states, key)
	}
	if state != "" {
		m.states[key] = state
		m.routes.WithLabelValues(state).Inc()
	}
}
