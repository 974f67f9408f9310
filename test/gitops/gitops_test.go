// Package gitops proves that GitOps tools read this operator's status correctly: Flux and
// kstatus (`wait: true`) through sigs.k8s.io/cli-utils, and Argo CD through the Lua health check
// in config/argocd, both on real objects served by a real apiserver.
package gitops

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.Shutdown()
	os.Exit(code)
}

// TestStatusIsReadByKstatusAndArgoCD walks a real PaymentRoute and AuthIntegration through the
// states a reconciler puts them in and checks what kstatus and the Argo CD script make of each.
func TestStatusIsReadByKstatusAndArgoCD(t *testing.T) {
	env := kubetest.Shared(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	script := readFile(t, filepath.Join(env.Root, "config", "argocd", "health.lua"))

	objects := []client.Object{
		sample(t, env.Root, "integrations_v1alpha1_paymentroute_okx.yaml", &v1.PaymentRoute{}),
		sample(t, env.Root, "integrations_v1alpha1_authintegration_clerk.yaml", &v1.AuthIntegration{}),
	}
	for _, obj := range objects {
		obj.SetNamespace(ns)
		t.Run(kindOf(obj), func(t *testing.T) {
			if err := env.Client.Create(ctx, obj); err != nil {
				t.Fatalf("creating: %v", err)
			}
			steps := []struct {
				name       string
				conditions []metav1.Condition
				observed   func(generation int64) int64
				bumpSpec   bool // change the spec first, so the generation moves past the status
				kstatus    status.Status
				argo       string
			}{
				{"just created, not yet reconciled", nil, nil, false, status.InProgressStatus, "Progressing"},
				{"reconciling", []metav1.Condition{
					{Type: v1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: v1.ReasonProgressing, Message: "rolling out"},
					{Type: v1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1.ReasonProgressing, Message: "rolling out"},
				}, same, false, status.InProgressStatus, "Progressing"},
				{"ready", []metav1.Condition{
					{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonReconciled, Message: "all good"},
				}, same, false, status.CurrentStatus, "Healthy"},
				{"stalled on a bad spec", []metav1.Condition{
					{Type: v1.ConditionStalled, Status: metav1.ConditionTrue, Reason: v1.ReasonSecretKeyMissing, Message: "Secret okx has no key passphrase"},
					{Type: v1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1.ReasonSecretKeyMissing, Message: "Secret okx has no key passphrase"},
				}, same, false, status.FailedStatus, "Degraded"},
				{"ready but for an older generation", []metav1.Condition{
					{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonReconciled},
				}, func(g int64) int64 { return g - 1 }, true, status.InProgressStatus, "Progressing"},
				{"not ready, no progress condition", []metav1.Condition{
					{Type: v1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1.ReasonDatabaseError, Message: "connection refused"},
				}, same, false, status.InProgressStatus, "Progressing"},
			}
			for _, step := range steps {
				if step.bumpSpec {
					bumpSpec(t, ctx, env, obj)
				}
				if step.observed != nil {
					setStatus(t, ctx, env, obj, step.observed(obj.GetGeneration()), step.conditions)
				}
				u := fetch(t, ctx, env, obj)
				res, err := status.Compute(u)
				if err != nil {
					t.Fatalf("%s: kstatus: %v", step.name, err)
				}
				if res.Status != step.kstatus {
					t.Errorf("%s: kstatus = %s (%s), want %s", step.name, res.Status, res.Message, step.kstatus)
				}
				health, message := argoHealth(t, script, u.Object)
				if health != step.argo {
					t.Errorf("%s: Argo CD health = %s (%s), want %s", step.name, health, message, step.argo)
				}
				if step.argo == "Degraded" && !strings.Contains(message, "has no key passphrase") {
					t.Errorf("%s: Argo CD message %q does not carry the stall's message", step.name, message)
				}
			}
		})
	}
}

// TestArgoCDSnippetMatchesScript keeps the argocd-cm snippet a faithful copy of health.lua.
func TestArgoCDSnippetMatchesScript(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := readFile(t, filepath.Join(root, "config", "argocd", "health.lua"))
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root, "config", "argocd", "argocd-cm.yaml"))), &cm); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"AuthIntegration", "PaymentRoute"} {
		key := "resource.customizations.health.integrations.insforge.dev_" + kind
		if got := cm.Data[key]; got != script {
			t.Errorf("argocd-cm key %s differs from config/argocd/health.lua; regenerate the snippet", key)
		}
	}
}

func same(g int64) int64 { return g }

// bumpSpec changes the spec as a user would, which moves metadata.generation.
func bumpSpec(t *testing.T, ctx context.Context, env *kubetest.Env, obj client.Object) {
	t.Helper()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	before := obj.GetGeneration()
	switch o := obj.(type) {
	case *v1.PaymentRoute:
		o.Spec.Routes[0].Description = "changed by the user"
	case *v1.AuthIntegration:
		o.Spec.Mode = v1.ModeObserve
	}
	if err := env.Client.Update(ctx, obj); err != nil {
		t.Fatalf("updating spec: %v", err)
	}
	if obj.GetGeneration() == before {
		t.Fatalf("generation did not move after a spec change")
	}
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *v1.PaymentRoute:
		return "PaymentRoute"
	default:
		return "AuthIntegration"
	}
}

func sample(t *testing.T, root, file string, into client.Object) client.Object {
	t.Helper()
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root, "config", "samples", file))), into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return into
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// setStatus writes status through the status subresource, as a reconciler does.
func setStatus(t *testing.T, ctx context.Context, env *kubetest.Env, obj client.Object, observed int64, conds []metav1.Condition) {
	t.Helper()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	var list []metav1.Condition
	for _, c := range conds {
		meta.SetStatusCondition(&list, c)
	}
	switch o := obj.(type) {
	case *v1.PaymentRoute:
		o.Status.ObservedGeneration, o.Status.Conditions = observed, list
	case *v1.AuthIntegration:
		o.Status.ObservedGeneration, o.Status.Conditions = observed, list
	}
	if err := env.Client.Status().Update(ctx, obj); err != nil {
		t.Fatalf("updating status: %v", err)
	}
}

func fetch(t *testing.T, ctx context.Context, env *kubetest.Env, obj client.Object) *unstructured.Unstructured {
	t.Helper()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// argoHealth runs the health script the way Argo CD does: the object as the global `obj`, the
// script's return value a table with status and message.
func argoHealth(t *testing.T, script string, obj map[string]any) (health, message string) {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: false})
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		t.Fatalf("health.lua failed: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %s, want a table", L.Get(-1).Type())
	}
	return lua.LVAsString(ret.RawGetString("status")), lua.LVAsString(ret.RawGetString("message"))
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case int64:
		return lua.LNumber(x)
	case int:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case map[string]any:
		tbl := L.NewTable()
		for k, e := range x {
			tbl.RawSetString(k, toLua(L, e))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, e := range x {
			tbl.Append(toLua(L, e))
		}
		return tbl
	default:
		return lua.LString("")
	}
}
