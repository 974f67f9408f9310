package authintegration

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/insforge/integrations-operator/internal/controller/kit"
)

// Reconcile outcomes, the values of the result label.
const (
	outcomeReady   = "ready"
	outcomeStalled = "stalled"
	outcomeError   = "error"
	outcomeDeleted = "deleted"
)

// metrics are the AuthIntegration controller's own metrics, beside controller-runtime's.
type metrics struct {
	// integrations counts AuthIntegrations by state (kit.StateReady, StateReconciling, StateStalled).
	integrations *kit.StateGauge
	outcomes     *prometheus.CounterVec
	drift        prometheus.Counter
	statements   prometheus.Counter
	rotations    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	integrations, err := kit.NewStateGauge(reg, "insforge_authintegrations", "AuthIntegrations by state: ready, reconciling or stalled.")
	if err != nil {
		return nil, err
	}
	m := &metrics{
		integrations: integrations,
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "insforge_authintegration_reconcile_total",
			Help: "AuthIntegration reconciles by result: ready, stalled, error (retried with backoff) or deleted.",
		}, []string{"result"}),
		drift: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "insforge_authintegration_drift_detections_total",
			Help: "Observations that found the database differing from an AuthIntegration it had already reached.",
		}),
		statements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "insforge_authintegration_sql_statements_executed_total",
			Help: "SQL statements executed to bring databases to their AuthIntegrations (0 per steady resync).",
		}),
		rotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "insforge_authintegration_jwt_rotations_total",
			Help: "JWT secret rotations performed.",
		}),
	}
	if m.outcomes, err = kit.Register(reg, m.outcomes); err != nil {
		return nil, err
	}
	for _, c := range []*prometheus.Counter{&m.drift, &m.statements, &m.rotations} {
		if *c, err = kit.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
