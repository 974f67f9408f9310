package controller

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reconcile outcomes, the values of the result label.
const (
	outcomeReady   = "ready"
	outcomeStalled = "stalled"
	outcomeError   = "error"
	outcomeDeleted = "deleted"
)

// authMetrics are the AuthIntegration controller's own metrics, beside controller-runtime's.
type authMetrics struct {
	outcomes   *prometheus.CounterVec
	drift      prometheus.Counter
	statements prometheus.Counter
	rotations  prometheus.Counter
}

func newAuthMetrics(reg prometheus.Registerer) (*authMetrics, error) {
	m := &authMetrics{
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
	var err error
	if m.outcomes, err = register(reg, m.outcomes); err != nil {
		return nil, err
	}
	for _, c := range []*prometheus.Counter{&m.drift, &m.statements, &m.rotations} {
		if *c, err = register(reg, *c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// register adds c to reg, or returns the collector already registered under its name: a process
// (or a test binary) may set up more than one manager against the same registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("registering metrics: %w", err)
	}
	return c, nil
}
