package metricnames

import (
	"slices"
	"testing"
)

func TestVectorsWithoutChildrenAreListedWithTheirLabels(t *testing.T) {
	gw, err := Gateway()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := Manager()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ms     map[string]Metric
		name   string
		labels []string
	}{
		{gw, "x402_gateway_requests_total", []string{"outcome", "reason", "route"}},
		{gw, "x402_gateway_ledger_seconds", []string{"op"}},
		{gw, "x402_gateway_pending_payments", nil},
		{gw, "go_goroutines", nil},
		{mgr, "insforge_authintegration_reconcile_total", []string{"result"}},
		{mgr, "insforge_paymentroutes", []string{"state"}},
		{mgr, "insforge_paymentroute_gateway_applies_total", nil},
	} {
		m, ok := tc.ms[tc.name]
		if !ok {
			t.Errorf("%s not listed", tc.name)
			continue
		}
		if !slices.Equal(m.Labels, tc.labels) || m.Help == "" {
			t.Errorf("%s: labels %q, help %q; want labels %q", tc.name, m.Labels, m.Help, tc.labels)
		}
	}
	if _, ok := mgr["go_goroutines"]; ok {
		t.Error("the manager's list has the Go collector, which controller-runtime registers, not our code")
	}
	if ours := Ours(gw); len(ours) < 10 || slices.Contains(ours, "go_goroutines") {
		t.Errorf("Ours(gateway) = %q", ours)
	}
}

func TestExchangeMetricsAreListed(t *testing.T) {
	ex, err := Exchange()
	if err != nil {
		t.Fatal(err)
	}
	if m := ex["insforge_exchange_exchanges_total"]; !slices.Equal(m.Labels, []string{"outcome", "provider"}) {
		t.Errorf("insforge_exchange_exchanges_total: labels %q", m.Labels)
	}
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"insforge_exchange_jwks_fetches_total", "x402_gateway_requests_total", "insforge_paymentroutes"} {
		if _, ok := all[n]; !ok {
			t.Errorf("All lacks %s", n)
		}
	}
}
