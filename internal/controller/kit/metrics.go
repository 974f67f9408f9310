package kit

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
)

// Register adds c to reg, or returns the collector already registered under its name: a process
// (or a test binary) may set up more than one manager against the same registry.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
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

// Resource states, the values of a StateGauge's state label.
const (
	StateReady       = "ready"
	StateReconciling = "reconciling"
	StateStalled     = "stalled"
)

// StateGauge counts a kind's resources by state (ready, reconciling or stalled, read from their
// conditions) in a gauge with a state label. Safe for concurrent use.
type StateGauge struct {
	vec *prometheus.GaugeVec

	mu     sync.Mutex
	states map[types.NamespacedName]string
}

// NewStateGauge registers the gauge name on reg (or takes the one registered under that name)
// with all three states at 0.
func NewStateGauge(reg prometheus.Registerer, name, help string) (*StateGauge, error) {
	vec, err := Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"state"}))
	if err != nil {
		return nil, err
	}
	for _, s := range []string{StateReady, StateReconciling, StateStalled} {
		vec.WithLabelValues(s).Add(0)
	}
	return &StateGauge{vec: vec, states: map[types.NamespacedName]string{}}, nil
}

// Observe records a resource's state from its conditions; nil conditions forget the resource
// (deleted).
func (g *StateGauge) Observe(key types.NamespacedName, conds []metav1.Condition) {
	state := ""
	switch {
	case conds == nil:
	case meta.IsStatusConditionTrue(conds, integrationsv1alpha1.ConditionStalled):
		state = StateStalled
	case meta.IsStatusConditionTrue(conds, integrationsv1alpha1.ConditionReady):
		state = StateReady
	default:
		state = StateReconciling
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.states[key]; ok {
		g.vec.WithLabelValues(old).Dec()
		delete(g.states, key)
	}
	if state != "" {
		g.states[key] = state
		g.vec.WithLabelValues(state).Inc()
	}
}

// Gauge is the gauge of one state.
func (g *StateGauge) Gauge(state string) prometheus.Gauge { return g.vec.WithLabelValues(state) }
