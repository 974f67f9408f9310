package install

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/insforge/integrations-operator/internal/controller/authintegration"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/controller/paymentroute"
	"github.com/insforge/integrations-operator/internal/gateway"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/metricnames"
)

// renderChart runs helm template on the chart with --set arguments; no API server is needed
// (the monitoring kinds are the Prometheus Operator's, which envtest does not have).
func renderChart(t *testing.T, sets ...string) []*unstructured.Unstructured {
	t.Helper()
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	helm := tool(t, root, "bin/helm", "make helm")
	args := []string{"template", "ops", filepath.Join(root, "charts", "integrations-operator"), "--namespace", "ops"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return decode(t, run(t, root, helm, args...))
}

// monitoringObjects returns the monitoring objects among objs: the monitors, the rule and the
// dashboard ConfigMap, by kind.
func monitoringObjects(objs []*unstructured.Unstructured) map[string][]*unstructured.Unstructured {
	out := map[string][]*unstructured.Unstructured{}
	for _, o := range objs {
		switch {
		case o.GetKind() == "ServiceMonitor", o.GetKind() == "PodMonitor", o.GetKind() == "PrometheusRule":
			out[o.GetKind()] = append(out[o.GetKind()], o)
		case o.GetKind() == "ConfigMap" && strings.HasSuffix(o.GetName(), "-dashboard"):
			out["dashboard"] = append(out["dashboard"], o)
		}
	}
	return out
}

func TestHelmChartMonitoringOnlyWhenEnabled(t *testing.T) {
	if got := monitoringObjects(renderChart(t)); len(got) != 0 {
		t.Errorf("the defaults render monitoring objects: %v", slices.Collect(maps.Keys(got)))
	}
	for value, kind := range map[string]string{
		"serviceMonitor.enabled":    "ServiceMonitor",
		"gatewayPodMonitor.enabled": "PodMonitor",
		"prometheusRule.enabled":    "PrometheusRule",
		"grafanaDashboard.enabled":  "dashboard",
	} {
		// A certificate makes no monitoring object (the ServiceMonitor needs one).
		got := monitoringObjects(renderChart(t, value+"=true", "metrics.tls.existingSecret=metrics-tls"))
		want := 1
		if kind == "PodMonitor" { // the gateways' and the exchanges'
			want = 2
		}
		if len(got) != 1 || len(got[kind]) != want {
			t.Errorf("%s=true renders %v, want one %s only", value, slices.Sorted(maps.Keys(got)), kind)
		}
	}
}

func TestHelmChartMonitorsSelectWhatTheOperatorRuns(t *testing.T) {
	objs := renderChart(t, "serviceMonitor.enabled=true", "metrics.tls.existingSecret=metrics-tls", "serviceMonitor.labels.release=prom",
		"gatewayPodMonitor.enabled=true", "gatewayPodMonitor.labels.release=prom")
	mon := monitoringObjects(objs)
	if len(mon["ServiceMonitor"]) != 1 || len(mon["PodMonitor"]) != 2 {
		t.Fatalf("monitors: %v", slices.Sorted(maps.Keys(mon)))
	}

	// The manager's ServiceMonitor selects the metrics Service and one of its ports.
	sm := mon["ServiceMonitor"][0]
	var svc *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Service" && strings.HasSuffix(o.GetName(), "-metrics") {
			svc = o
		}
	}
	if svc == nil {
		t.Fatal("no metrics Service")
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range sel {
		if svc.GetLabels()[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, the metrics Service has %q", k, v, svc.GetLabels()[k])
		}
	}
	if len(sel) == 0 || sm.GetLabels()["release"] != "prom" {
		t.Errorf("ServiceMonitor selector %v, labels %v", sel, sm.GetLabels())
	}
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 || len(ports) != 1 || endpoints[0].(map[string]any)["port"] != ports[0].(map[string]any)["name"] {
		t.Errorf("ServiceMonitor endpoints %v, Service ports %v", endpoints, ports)
	}

	// The PodMonitor selects every gateway pod the operator renders, on its metrics port, in
	// every namespace (routes live in their own).
	pm := mon["PodMonitor"][0]
	if pm.GetLabels()["release"] != "prom" {
		t.Errorf("PodMonitor labels %v", pm.GetLabels())
	}
	sel, _, _ = unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
	if !maps.Equal(sel, paymentroute.GatewayPodSelector()) {
		t.Errorf("PodMonitor selects %v, the gateway pods carry %v", sel, paymentroute.GatewayPodSelector())
	}
	if anyNS, _, _ := unstructured.NestedBool(pm.Object, "spec", "namespaceSelector", "any"); !anyNS {
		t.Errorf("PodMonitor namespaceSelector %v, want any", pm.Object["spec"].(map[string]any)["namespaceSelector"])
	}
	endpoints, _, _ = unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
	if len(endpoints) != 1 {
		t.Fatalf("podMetricsEndpoints %v", endpoints)
	}
	ep := endpoints[0].(map[string]any)
	if ep["port"] != paymentroute.GatewayMetricsPort || ep["path"] != "/metrics" {
		t.Errorf("PodMonitor endpoint %v, want port %q path /metrics", ep, paymentroute.GatewayMetricsPort)
	}
	// The second PodMonitor selects every token exchange pod.
	if len(mon["PodMonitor"]) != 2 {
		t.Fatalf("%d PodMonitors, want the gateways' and the exchanges'", len(mon["PodMonitor"]))
	}
	xsel, _, _ := unstructured.NestedStringMap(mon["PodMonitor"][1].Object, "spec", "selector", "matchLabels")
	if !maps.Equal(xsel, authintegration.ExchangePodSelector()) {
		t.Errorf("exchange PodMonitor selects %v, the exchange pods carry %v", xsel, authintegration.ExchangePodSelector())
	}
	relabel, _ := json.Marshal(ep["relabelings"])
	if !strings.Contains(string(relabel), `"targetLabel":"paymentroute"`) {
		t.Errorf("no paymentroute label: %s", relabel)
	}

	// A namespaced install looks for gateways in its namespaces only.
	pm = monitoringObjects(renderChart(t, "gatewayPodMonitor.enabled=true", "watchNamespaces={team-a,team-b}"))["PodMonitor"][0]
	names, _, _ := unstructured.NestedStringSlice(pm.Object, "spec", "namespaceSelector", "matchNames")
	if !slices.Equal(names, []string{"team-a", "team-b"}) {
		t.Errorf("namespaced PodMonitor matchNames %v", names)
	}
}

// targetLabels are the labels a series gets from its scrape (the PodMonitor adds paymentroute)
// and le, a histogram bucket's.
var targetLabels = []string{"namespace", "pod", "container", "job", "instance", "endpoint", "paymentroute", "le"}

// labelValues are the values a matcher may ask for, from the code's constants.
var labelValues = map[string][]string{
	"outcome": {gateway.OutcomeChallenge, gateway.OutcomeBadRequest, gateway.OutcomeInvalid, gateway.OutcomeSettled,
		gateway.OutcomeSettleFailed, gateway.OutcomePending, gateway.OutcomeReplaySettled, gateway.OutcomeAlreadyUsed,
		gateway.OutcomeReplayPending, gateway.OutcomeReplayUsed, gateway.OutcomeInFlight, gateway.OutcomeRateLimited,
		gateway.OutcomeNotCharged, gateway.OutcomeUnavailable, gateway.OutcomeUnpriced},
	"state": {kit.StateReady, kit.StateReconciling, kit.StateStalled},
}

var (
	groupingPattern = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matcherPattern  = regexp.MustCompile(`([a-z_]+)\s*(?:=~|!~|!=|=)\s*"([^"]*)"`)
)

// checkExpr checks a PromQL expression's metrics, label names and outcome/state values against
// the registered metrics, and returns the metric names it uses.
func checkExpr(t *testing.T, where, expr string, reg map[string]metricnames.Metric) []string {
	t.Helper()
	refs := metricnames.Refs(expr)
	if len(refs) == 0 {
		t.Errorf("%s: %q uses none of our metrics", where, expr)
	}
	allowed := slices.Clone(targetLabels)
	var names []string
	for _, ref := range refs {
		m, ok := metricnames.Lookup(reg, ref.Name)
		if !ok {
			t.Errorf("%s: %s is not a metric the gateway or the manager registers", where, ref.Name)
			continue
		}
		names = append(names, m.Name)
		allowed = append(allowed, m.Labels...)
		for _, l := range ref.Labels {
			if !slices.Contains(m.Labels, l) && !slices.Contains(targetLabels, l) {
				t.Errorf("%s: %s has no label %s", where, m.Name, l)
			}
		}
	}
	for _, g := range groupingPattern.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(allowed, l) {
				t.Errorf("%s: grouping by %s, which none of its metrics has", where, l)
			}
		}
	}
	for _, m := range matcherPattern.FindAllStringSubmatch(expr, -1) {
		values, ok := labelValues[m[1]]
		if !ok || strings.Contains(m[2], "$") {
			continue
		}
		for v := range strings.SplitSeq(m[2], "|") {
			if !slices.Contains(values, v) {
				t.Errorf("%s: %s=%q is not a value the code sets (%v)", where, m[1], v, values)
			}
		}
	}
	return names
}

func TestHelmChartPrometheusRuleAlertsOnRealMetrics(t *testing.T) {
	reg, err := metricnames.Both()
	if err != nil {
		t.Fatal(err)
	}
	rules := monitoringObjects(renderChart(t, "prometheusRule.enabled=true", "prometheusRule.labels.release=prom",
		"prometheusRule.alertLabels.team=payments", "prometheusRule.pendingFor=30m", "prometheusRule.settleFailureRatio=0.2",
	))["PrometheusRule"]
	if len(rules) != 1 || rules[0].GetLabels()["release"] != "prom" {
		t.Fatalf("PrometheusRule: %v", rules)
	}
	groups, _, _ := unstructured.NestedSlice(rules[0].Object, "spec", "groups")
	alerts := map[string]map[string]any{}
	for _, g := range groups {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rule := r.(map[string]any)
			name, _ := rule["alert"].(string)
			expr, _ := rule["expr"].(string)
			alerts[name] = rule
			checkExpr(t, name, expr, reg)
			labels, _ := rule["labels"].(map[string]any)
			if labels["team"] != "payments" || (labels["severity"] != "warning" && labels["severity"] != "critical") {
				t.Errorf("%s: labels %v", name, labels)
			}
			if ann, _ := rule["annotations"].(map[string]any); ann["summary"] == nil || ann["description"] == nil {
				t.Errorf("%s: annotations %v", name, ann)
			}
		}
	}
	// The alerts docs/operations.md describes, by the metric each watches.
	for alert, metric := range map[string]string{
		"X402GatewayOutcomesUnrecorded":     "x402_gateway_record_failures_total",
		"X402GatewayPaymentsPending":        "x402_gateway_pending_payments",
		"X402GatewayPendingPaymentsGrowing": "x402_gateway_pending_payments",
		"X402GatewayOutcomesSpooled":        "x402_gateway_spooled_outcomes",
		"X402GatewayNoResolver":             "x402_gateway_resolver_leader",
		"X402GatewaySettleFailures":         "x402_gateway_requests_total",
		"X402GatewaySettleSlow":             "x402_gateway_settle_seconds",
		"InsforgeAuthIntegrationStalled":    "insforge_authintegrations",
		"InsforgePaymentRouteStalled":       "insforge_paymentroutes",
		"InsforgeAuthIntegrationDrift":      "insforge_authintegration_drift_detections_total",
	} {
		rule, ok := alerts[alert]
		if !ok {
			t.Errorf("no alert %s", alert)
			continue
		}
		if expr, _ := rule["expr"].(string); !slices.ContainsFunc(metricnames.Refs(expr), func(r metricnames.Ref) bool {
			m, _ := metricnames.Lookup(reg, r.Name)
			return m.Name == metric
		}) {
			t.Errorf("%s does not watch %s: %s", alert, metric, expr)
		}
	}
	if len(alerts) != 10 {
		t.Errorf("%d alerts: %v", len(alerts), slices.Sorted(maps.Keys(alerts)))
	}
	// Values reach the rules.
	if alerts["X402GatewayPaymentsPending"]["for"] != "30m" {
		t.Errorf("pendingFor: %v", alerts["X402GatewayPaymentsPending"]["for"])
	}
	if expr, _ := alerts["X402GatewaySettleFailures"]["expr"].(string); !strings.HasSuffix(strings.TrimSpace(expr), "> 0.2") {
		t.Errorf("settleFailureRatio: %s", expr)
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func TestHelmChartGrafanaDashboardShowsRealMetrics(t *testing.T) {
	reg, err := metricnames.Both()
	if err != nil {
		t.Fatal(err)
	}
	cms := monitoringObjects(renderChart(t, "grafanaDashboard.enabled=true", "grafanaDashboard.sidecarLabel=grafana.example/dashboard",
		"grafanaDashboard.sidecarLabelValue=yes", "grafanaDashboard.namespace=monitoring"))["dashboard"]
	if len(cms) != 1 {
		t.Fatalf("dashboard ConfigMaps: %v", cms)
	}
	cm := cms[0]
	if cm.GetLabels()["grafana.example/dashboard"] != "yes" || cm.GetNamespace() != "monitoring" {
		t.Errorf("ConfigMap %s/%s labels %v: want the sidecar label and the namespace set", cm.GetNamespace(), cm.GetName(), cm.GetLabels())
	}
	if _, ok := cm.GetLabels()["grafana_dashboard"]; ok {
		t.Error("the default sidecar label is still there")
	}
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	if len(data) != 1 {
		t.Fatalf("data keys %v", slices.Collect(maps.Keys(data)))
	}
	var d dashboard
	for _, raw := range data {
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatalf("the dashboard is not JSON: %v", err)
		}
	}
	if d.UID == "" {
		t.Error("the dashboard has no uid (the sidecar would duplicate it on every load)")
	}
	used := map[string]bool{}
	targets := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			targets++
			for _, n := range checkExpr(t, "panel "+p.Title, tg.Expr, reg) {
				used[n] = true
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			checkExpr(t, "variable "+v.Name, v.Definition, reg)
		}
	}
	if targets < 10 {
		t.Errorf("only %d queries", targets)
	}
	// Every metric of ours is on the dashboard.
	for _, name := range metricnames.Ours(reg) {
		if !used[name] {
			t.Errorf("the dashboard does not show %s", name)
		}
	}
}
