//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/insforge/integrations-operator/internal/testutil/devchain"
	"github.com/insforge/integrations-operator/internal/testutil/gatewayrun"
	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/rlscheck"
	"github.com/insforge/integrations-operator/internal/testutil/sampleoverlay"
)

// Samples the flow applies, and the names inside them.
const (
	sampleAuth     = "integrations_v1alpha1_authintegration_clerk.yaml"
	sampleOnchain  = "integrations_v1alpha1_paymentroute_onchain.yaml"
	authName       = "clerk"
	onchainRoute   = "reports-onchain"
	pricedPath     = "/reports/weekly" // matches /reports/* at 0.25
	pricedAtomic   = 250000
	tokenEIP712    = "Global Dollar" // the sample's asset.eip712
	tokenVersion   = "1"
	kustomizeBuild = "kustomize-v5.8.2"
)

var txHash = regexp.MustCompile(`(?m)^transaction: (0x[0-9a-f]{64})$`)

// TestUserFlow follows a user: the samples applied with kubectl (through a kustomize overlay that
// points them at local stand-ins), the AuthIntegration Ready with working row-level security, the
// PaymentRoute Ready with its gateway running from the rendered Deployment, a payment with the
// payer CLI settled on a geth dev chain by the on-chain facilitator, and the settled total in
// `kubectl get paymentroute`.
func TestUserFlow(t *testing.T) {
	env := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bins := buildBinaries(t, env.Root)
	ns := env.Namespace(t)
	kubeconfig := env.Kubeconfig(t)
	k := kubectlRunner{t: t, kubeconfig: kubeconfig, namespace: ns, dir: env.Root}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := k.try(context.Background(), "", "get", "events", "--sort-by=.lastTimestamp")
			t.Logf("=== kubectl get events ===\n%s", out)
			out, _ = k.try(context.Background(), "", "get", "authintegrations,paymentroutes,deployments", "-o", "yaml")
			t.Logf("=== objects ===\n%s", out)
		}
	})

	// The InsForge database with the app's tables, as a user has it before installing anything.
	db := insforgetest.NewDatabase(t, insforgetest.Options{AuthJWT: true})
	db.Exec(t, insforgetest.AsProjectAdmin(`
CREATE TABLE public.todos (id bigserial PRIMARY KEY, title text);
CREATE TABLE public.notes (id bigserial PRIMARY KEY, body text);`))

	// The chain: a token with the sample's EIP-712 domain, a payer holding 10 tokens, a relayer
	// with gas, and a merchant to be paid.
	var gethLog syncBuffer
	chain, err := devchain.Start(ctx, devchain.Options{Log: &gethLog})
	if err != nil {
		t.Fatalf("%v\n%s", err, gethLog.String())
	}
	t.Cleanup(chain.Stop)
	token, err := chain.DeployToken(ctx, tokenEIP712, tokenVersion, "USDG")
	if err != nil {
		t.Fatal(err)
	}
	payer, relayer, merchant := newAccount(t), newAccount(t), newAccount(t)
	if err := chain.Fund(ctx, relayer.Address, devchain.Ether(10)); err != nil {
		t.Fatal(err)
	}
	if err := token.Mint(ctx, payer.Address, big.NewInt(10_000_000)); err != nil {
		t.Fatal(err)
	}

	// The service being sold.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"report":%q,"rows":3}`, r.URL.Path)
	}))
	t.Cleanup(upstream.Close)

	// The Secrets a user creates: the database URL and the relayer key.
	for name, data := range map[string]map[string]string{
		"insforge-db":  {"uri": db.URL},
		"x402-relayer": {"privateKey": relayer.KeyHex()},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatalf("creating Secret %s: %v", name, err)
		}
	}

	startProcess(t, "manager", bins.Manager, nil,
		"--kubeconfig", kubeconfig,
		"--leader-elect", "--leader-election-namespace", ns,
		"--watch-namespaces", ns,
		"--health-probe-bind-address", freeAddr(t),
		"--metrics-bind-address", "0",
		"--gateway-image", "integrations-operator:e2e",
	)

	overlay := sampleoverlay.Overlay{
		SamplesDir: filepath.Join(env.Root, "config", "samples"),
		Namespace:  ns,
		Samples:    []string{sampleAuth, sampleOnchain},
		Patches: []sampleoverlay.Patch{sampleoverlay.OnchainRoute(onchainRoute, sampleoverlay.Local{
			Upstream: upstream.URL, RPCURL: chain.RPCURL, Network: devchain.Network,
			Token: token.Address.Hex(), PayTo: merchant.Address.Hex(),
		})},
	}
	manifests, err := overlay.Build(ctx, filepath.Join(env.Root, "bin", kustomizeBuild), filepath.Join(t.TempDir(), "overlay"))
	if err != nil {
		t.Fatal(err)
	}
	k.run(ctx, string(manifests), "apply", "-f", "-")

	// AuthIntegration: Ready, policies in the database, and one user cannot see another's rows.
	k.run(ctx, "", "wait", "--for=condition=Ready", "authintegration/"+authName, "--timeout=120s")
	var policies int
	conn := db.Pool(t)
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_policies WHERE schemaname = 'public' AND tablename IN ('todos', 'notes')`).Scan(&policies); err != nil {
		t.Fatal(err)
	}
	if policies != 6 { // todos: all four commands; notes: select and insert
		t.Errorf("%d policies on todos and notes, want 6", policies)
	}
	for _, table := range []string{"todos", "notes"} {
		res, err := rlscheck.Check(ctx, db.URL, "public", table, "user_id", "user_2xAlice", "auth0|bob")
		if err != nil {
			t.Fatal(err)
		}
		if res.OwnerSees != 1 || res.OtherSees != 0 || res.OtherUpdated != 0 {
			t.Errorf("isolation check: %s", res)
		}
	}

	// PaymentRoute: the gateway runs from the rendered Deployment; then the route is Ready.
	var gwLog syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("=== gateway log ===\n%s", gwLog.String())
		}
	})
	gw, err := gatewayrun.Start(ctx, gatewayrun.Options{
		Client: env.Client, Route: client.ObjectKey{Namespace: ns, Name: onchainRoute},
		Binary: bins.Gateway, Dir: t.TempDir(), Log: &gwLog,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gw.Stop(); err != nil {
			t.Errorf("the gateway did not stop cleanly: %v", err)
		}
	})
	k.run(ctx, "", "wait", "--for=condition=Ready", "paymentroute/"+onchainRoute, "--timeout=120s")

	// Pay with the CLI, as a user would.
	pay := exec.CommandContext(ctx, bins.Pay, "-max-atomic", fmt.Sprint(pricedAtomic), gw.URL+pricedPath)
	pay.Env = []string{"X402_PAY_KEY=" + payer.KeyHex()}
	var stdout, stderr syncBuffer
	pay.Stdout, pay.Stderr = &stdout, &stderr
	if err := pay.Run(); err != nil {
		t.Fatalf("x402-pay: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(stdout.String()), &body); err != nil || body["report"] != pricedPath {
		t.Errorf("x402-pay printed %q, want the upstream's JSON for %s", stdout.String(), pricedPath)
	}
	m := txHash.FindStringSubmatch(stderr.String())
	if m == nil || !strings.Contains(stderr.String(), "status: 200") || !strings.Contains(stderr.String(), "success: true") {
		t.Fatalf("x402-pay receipt without success and a transaction:\n%s", stderr.String())
	}
	if got, err := token.BalanceOf(ctx, merchant.Address); err != nil || got.Int64() != pricedAtomic {
		t.Errorf("merchant balance %v (err %v), want %d", got, err, pricedAtomic)
	}

	// The settled total, as `kubectl get` shows it.
	var row string
	waitFor(t, 60*time.Second, "kubectl get paymentroute to show the settled payment", func() bool {
		row = k.run(ctx, "", "get", "paymentroute", onchainRoute, "--no-headers")
		f := strings.Fields(row)
		// NAME NETWORK READY SETTLED ASSET PAYMENTS AGE
		return len(f) >= 6 && f[2] == "True" && f[3] == "0.25" && f[5] == "1"
	})
	lastTx := k.run(ctx, "", "get", "paymentroute", onchainRoute, "-o", "jsonpath={.status.settled.lastTxHash}")
	if !strings.EqualFold(strings.TrimSpace(lastTx), m[1]) {
		t.Errorf("status.settled.lastTxHash %q, want the receipt's %s", lastTx, m[1])
	}
}

func newAccount(t *testing.T) devchain.Account {
	t.Helper()
	a, err := devchain.NewAccount()
	if err != nil {
		t.Fatal(err)
	}
	return a
}
