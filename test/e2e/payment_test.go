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

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/testutil/devchain"
	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/gatewayrun"
	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/okxfake"
	"github.com/insforge/integrations-operator/internal/testutil/proc"
	"github.com/insforge/integrations-operator/internal/testutil/procnet"
	"github.com/insforge/integrations-operator/internal/testutil/rlscheck"
	"github.com/insforge/integrations-operator/internal/testutil/sampleoverlay"
)

// Samples the flow applies, and the names inside them.
const (
	sampleAuth     = "integrations_v1alpha1_authintegration_clerk.yaml"
	sampleOnchain  = "integrations_v1alpha1_paymentroute_onchain.yaml"
	sampleOKX      = "integrations_v1alpha1_paymentroute_okx.yaml"
	okxRoute       = "weather-okx"
	okxPath        = "/api/weather" // 0.01
	okxAtomic      = 10000
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
// `kubectl get paymentroute`; then the same for the OKX sample through a fake of OKX's API that
// settles on the same chain. (The OKX sample asks for two replicas; one process serves here.)
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
	var gethLog proc.Buffer
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
	okxRelayer, okxMerchant := newAccount(t), newAccount(t)
	for _, a := range []devchain.Account{relayer, okxRelayer} {
		if err := chain.Fund(ctx, a.Address, devchain.Ether(10)); err != nil {
			t.Fatal(err)
		}
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

	// OKX's API, faked: it checks the signed requests and settles on the dev chain.
	okx := startOKXFake(t, ctx, chain, okxRelayer)

	// The Secrets a user creates: the database URL, the relayer key and the OKX credentials.
	for name, data := range map[string]map[string]string{
		"insforge-db":          {"uri": db.URL},
		"x402-relayer":         {"privateKey": relayer.KeyHex()},
		"okx-x402-credentials": {"apiKey": okxAPIKey, "secretKey": okxSecretKey, "passphrase": okxPassphrase},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels: map[string]string{v1alpha1.LabelSecretAccess: "true"}}, StringData: data}
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatalf("creating Secret %s: %v", name, err)
		}
	}

	mgr := startProcess(t, "manager", bins.Manager, nil,
		"--kubeconfig", kubeconfig,
		"--leader-elect", "--leader-election-namespace", ns,
		"--watch-namespaces", ns,
		"--health-probe-bind-address", freeport.MustAddr(t),
		"--metrics-bind-address", "0",
		"--gateway-image", "integrations-operator:e2e",
	)

	overlay := sampleoverlay.Overlay{
		SamplesDir: filepath.Join(env.Root, "config", "samples"),
		Namespace:  ns,
		Samples:    []string{sampleAuth, sampleOnchain, sampleOKX},
		Patches: []sampleoverlay.Patch{
			sampleoverlay.OnchainRoute(onchainRoute, sampleoverlay.Local{
				Upstream: upstream.URL, RPCURL: chain.RPCURL, Network: devchain.Network,
				Token: token.Address.Hex(), PayTo: merchant.Address.Hex(),
			}),
			sampleoverlay.OKXRoute(okxRoute, okx.URL, sampleoverlay.Local{
				Upstream: upstream.URL, RPCURL: chain.RPCURL, Network: devchain.Network, PayTo: okxMerchant.Address.Hex(),
			}, map[string]any{
				"address": token.Address.Hex(), "decimals": 6, "symbol": "USDG",
				"eip712": map[string]string{"name": tokenEIP712, "version": tokenVersion},
			}),
		},
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

	// PaymentRoute on chain: the gateway runs from the rendered Deployment; then the route is
	// Ready, a payment with the CLI settles on the dev chain, and kubectl shows the total.
	gw, gwLog := runGateway(t, ctx, env, ns, onchainRoute, bins.Gateway)
	k.run(ctx, "", "wait", "--for=condition=Ready", "paymentroute/"+onchainRoute, "--timeout=120s")
	tx := payWithCLI(t, ctx, bins.Pay, payer, gw.URL+pricedPath, pricedAtomic)
	if got, err := token.BalanceOf(ctx, merchant.Address); err != nil || got.Int64() != pricedAtomic {
		t.Errorf("merchant balance %v (err %v), want %d", got, err, pricedAtomic)
	}
	waitSettled(t, ctx, k, onchainRoute, "0.25", "1", tx)

	// PaymentRoute through OKX (faked): the same path with signed API calls in between.
	gwOKX, gwOKXLog := runGateway(t, ctx, env, ns, okxRoute, bins.Gateway)
	k.run(ctx, "", "wait", "--for=condition=Ready", "paymentroute/"+okxRoute, "--timeout=120s")
	tx = payWithCLI(t, ctx, bins.Pay, payer, gwOKX.URL+okxPath, okxAtomic)
	if got, err := token.BalanceOf(ctx, okxMerchant.Address); err != nil || got.Int64() != okxAtomic {
		t.Errorf("OKX merchant balance %v (err %v), want %d", got, err, okxAtomic)
	}
	if n := okx.Count(okxfake.PathSettle); n != 1 {
		t.Errorf("the OKX fake took %d settle calls, want 1", n)
	}
	waitSettled(t, ctx, k, okxRoute, "0.01", "1", tx)

	// No secret reached a log or a rendered object (they travel as secretKeyRefs only).
	rendered := k.run(ctx, "", "get", "deployments,configmaps,paymentroutes", "-o", "yaml")
	for where, text := range map[string]string{
		"the manager's log": mgr.log(), "the gateway logs": gwLog.String() + gwOKXLog.String(), "the rendered objects": rendered,
	} {
		for name, secret := range map[string]string{
			"relayer key": strings.TrimPrefix(relayer.KeyHex(), "0x"), "OKX secret key": okxSecretKey, "OKX passphrase": okxPassphrase,
		} {
			if strings.Contains(strings.ToLower(text), strings.ToLower(secret)) {
				t.Errorf("the %s appears in %s", name, where)
			}
		}
	}

	// Every process under test talked and listened on loopback only.
	for name, pid := range map[string]int{
		"manager": mgr.Cmd.Process.Pid, "gateway " + onchainRoute: gw.Process.Cmd.Process.Pid,
		"gateway " + okxRoute: gwOKX.Process.Cmd.Process.Pid,
	} {
		if bad, err := procnet.NonLoopback(pid); err != nil || len(bad) > 0 {
			t.Errorf("%s holds sockets off loopback: %v (err %v)", name, bad, err)
		}
	}
}

// runGateway runs the route's rendered Deployment as a local process until the test ends.
func runGateway(t *testing.T, ctx context.Context, env *kubetest.Env, ns, route, bin string) (*gatewayrun.Gateway, *proc.Buffer) {
	t.Helper()
	var log proc.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("=== gateway %s log ===\n%s", route, log.String())
		}
	})
	gw, err := gatewayrun.Start(ctx, gatewayrun.Options{
		Client: env.Client, Route: client.ObjectKey{Namespace: ns, Name: route},
		Binary: bin, Dir: t.TempDir(), Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gw.Stop(); err != nil {
			t.Errorf("the gateway of %s did not stop cleanly: %v", route, err)
		}
	})
	return gw, &log
}

// payWithCLI pays for url with the x402-pay binary and returns the receipt's transaction.
func payWithCLI(t *testing.T, ctx context.Context, bin string, payer devchain.Account, url string, maxAtomic int) string {
	t.Helper()
	pay := exec.CommandContext(ctx, bin, "-max-atomic", fmt.Sprint(maxAtomic), url)
	pay.Env = []string{"X402_PAY_KEY=" + payer.KeyHex()}
	var stdout, stderr proc.Buffer
	pay.Stdout, pay.Stderr = &stdout, &stderr
	if err := pay.Run(); err != nil {
		t.Fatalf("x402-pay %s: %v\nstderr:\n%s\nstdout:\n%s", url, err, stderr.String(), stdout.String())
	}
	var body map[string]any
	path := url[strings.Index(url[len("http://"):], "/")+len("http://"):]
	if err := json.Unmarshal([]byte(stdout.String()), &body); err != nil || body["report"] != path {
		t.Errorf("x402-pay printed %q, want the upstream's JSON for %s", stdout.String(), path)
	}
	m := txHash.FindStringSubmatch(stderr.String())
	if m == nil || !strings.Contains(stderr.String(), "status: 200") || !strings.Contains(stderr.String(), "success: true") {
		t.Fatalf("x402-pay receipt without success and a transaction:\n%s", stderr.String())
	}
	return m[1]
}

// waitSettled waits until `kubectl get paymentroute` shows the total and count, and checks the
// last transaction in status.
func waitSettled(t *testing.T, ctx context.Context, k kubectlRunner, route, total, count, tx string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := k.run(ctx, "", "get", "paymentroute", route)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		row := map[string]string{}
		if len(lines) == 2 {
			head, vals := strings.Fields(lines[0]), strings.Fields(lines[1])
			for i := range min(len(head), len(vals)) {
				row[head[i]] = vals[i]
			}
		}
		if row["READY"] == "True" && row["SETTLED"] == total && row["PAYMENTS"] == count {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl get paymentroute %s does not show Ready, %s settled in %s payment(s) after 60s:\n%s", route, total, count, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	lastTx := k.run(ctx, "", "get", "paymentroute", route, "-o", "jsonpath={.status.settled.lastTxHash}")
	if !strings.EqualFold(strings.TrimSpace(lastTx), tx) {
		t.Errorf("%s: status.settled.lastTxHash %q, want the receipt's %s", route, lastTx, tx)
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
