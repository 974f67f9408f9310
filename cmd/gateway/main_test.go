package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/jackc/pgx/v5"

	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/testutil/evmtest"
	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/testutil/proc"
	"github.com/insforge/integrations-operator/internal/testutil/rpcbridge"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// buildGateway compiles this command once per test binary run.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gateway")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running gateway and what it wrote to stderr.
type process struct {
	*proc.Process
	stderr proc.Buffer
}

func startGateway(t *testing.T, bin, cfgPath string, env []string, adminAddr string) *process {
	t.Helper()
	cmd := exec.Command(bin, "--config", cfgPath)
	p := &process{}
	cmd.Env, cmd.Stderr = env, &p.stderr
	var err error
	if p.Process, err = proc.Start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch err := p.WaitReady(ctx, 50*time.Millisecond, proc.HTTPReady("http://"+adminAddr+config.PathReadyz)); {
	case errors.Is(err, proc.ErrExited):
		t.Fatalf("gateway exited during start-up: %v\n%s", p.Err(), p.logs())
	case err != nil:
		t.Fatalf("gateway not ready in 30s\n%s", p.logs())
	}
	return p
}

func (p *process) logs() string { return p.stderr.String() }

// TestKilledAfterSettleIsResolvedByRestartedGateway runs the real gateway binary against a real
// Postgres and the simulated chain (served over JSON-RPC), kills it with SIGKILL right after it
// has broadcast a settlement, restarts it, and expects the restarted process to find the
// settling row and record the settlement from the chain.
func TestKilledAfterSettleIsResolvedByRestartedGateway(t *testing.T) {
	killedAfterSettle(t, func(db *pgtest.Database) string { return db.URL })
}

// TestGatewayRoleWithOnlyTheLedgerGrants runs the same path (settle, kill, resolve on restart,
// serve the retry) with the gateway connected as a role that holds only ledger.GatewayAccess on
// a ledger the operator's role migrated: no DDL, no other table.
func TestGatewayRoleWithOnlyTheLedgerGrants(t *testing.T) {
	killedAfterSettle(t, func(db *pgtest.Database) string {
		if _, err := ledger.Migrate(context.Background(), db.Pool(t), ledger.Options{}); err != nil {
			t.Fatal(err)
		}
		role := "gw_" + db.Name
		grants, err := ledger.GatewayAccess(ledger.Options{}, role)
		if err != nil {
			t.Fatal(err)
		}
		db.Exec(t, "CREATE ROLE "+role+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE; "+
			"REVOKE CREATE ON SCHEMA public FROM PUBLIC; "+strings.Join(grants, "; "))
		t.Cleanup(func() { db.Exec(t, "DROP OWNED BY "+role+"; DROP ROLE "+role) })
		u, err := url.Parse(db.URL)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.User(role)
		// The role really cannot change the schema.
		conn, err := pgx.Connect(context.Background(), u.String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "CREATE TABLE public.probe (id int)"); err == nil {
			t.Fatal("the gateway role can create tables")
		}
		if _, err := conn.Exec(context.Background(), "ALTER TABLE x402_payments ADD COLUMN probe int"); err == nil {
			t.Fatal("the gateway role can alter the ledger")
		}
		return u.String()
	})
}

// killedAfterSettle is the kill-and-resolve path with the gateway connecting through the URL
// gatewayURL returns for the test's database.
func killedAfterSettle(t *testing.T, gatewayURL func(*pgtest.Database) string) {
	bin := buildGateway(t)
	relayer := evmtest.NewAccount(t)
	chain := evmtest.New(t, relayer.Address)
	token := chain.DeployToken(t, "Global Dollar", "1")
	merchant := evmtest.NewAccount(t)
	payerAcct := evmtest.NewAccount(t)
	const price = 10_000
	token.Mint(t, payerAcct.Address, big.NewInt(3*price))
	chain.AutoCommit(t, 20*time.Millisecond)
	// The simulated client embeds *ethclient.Client in a field named Client, which hides the
	// embedded type's Client() method; reach the field by reflection.
	rc := reflect.ValueOf(chain.Client).FieldByName("Client").Interface().(*ethclient.Client).Client()
	bridge := rpcbridge.New(t, rc)

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"forecast":"sunny","payer":%q}`, r.Header.Get(config.DefaultPayerHeader))
	}))
	t.Cleanup(upstream.Close)
	db := pgtest.NewDatabase(t)

	dataAddr, adminAddr := freeport.MustAddr(t), freeport.MustAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "config.json")
	cfgJSON := fmt.Sprintf(`{"route": "shop/weather", "listen": %q, "adminListen": %q, "upstream": %q, "network": %q,
	  "asset": {"address": %q, "decimals": 6, "eip712Name": "Global Dollar", "eip712Version": "1"},
	  "payTo": %q, "maxTimeoutSeconds": 300, "routes": [{"path": "/weather", "price": "0.01"}],
	  "facilitator": {"kind": "onchain", "onchain": {"rpcURL": %q}},
	  "ledger": {"migrate": true},
	  "gateway": {"settleTimeout": "5s", "spoolDir": %q},
	  "resolver": {"interval": "100ms", "minAge": "6s"}}`,
		dataAddr, adminAddr, upstream.URL, evmtest.Network, token.Address.Hex(), merchant.Address.Hex(), bridge.URL,
		filepath.Join(t.TempDir(), "spool"))
	if err := os.WriteFile(cfgPath, []byte(cfgJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		config.EnvDatabaseURL+"="+gatewayURL(db),
		config.EnvRelayerKey+"="+common.Bytes2Hex(relayerKeyBytes(relayer)))

	gw := startGateway(t, bin, cfgPath, env, adminAddr)

	// Fetch the challenge over HTTP, as a client would, and sign it.
	resp, err := http.Get("http://" + dataAddr + "/weather")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil || resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("challenge: %d %v", resp.StatusCode, err)
	}
	signer := eip3009.NewSigner(payerAcct.Key)
	payload, err := signer.Sign(pr.Accepts[0], pr.Resource)
	if err != nil {
		t.Fatal(err)
	}
	header, _ := x402.EncodePaymentSignature(payload)

	sent := make(chan string, 1)
	bridge.SetAfterSend(func(hash string) {
		gw.Kill()
		sent <- hash
	})
	req, _ := http.NewRequest(http.MethodGet, "http://"+dataAddr+"/weather", nil)
	req.Header.Set(x402.HeaderPaymentSignature, header)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("the killed gateway answered %d %s\n%s", resp.StatusCode, b, gw.logs())
	}
	var txHash string
	select {
	case txHash = <-sent:
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway never broadcast the settlement")
	}
	bridge.SetAfterSend(nil)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var status string
	if err := conn.QueryRow(ctx, `SELECT status FROM x402_payments`).Scan(&status); err != nil || status != "settling" {
		t.Fatalf("after the kill: status %q, %v", status, err)
	}

	// Restart: the new process's resolver must settle the row from the chain.
	gw2 := startGateway(t, bin, cfgPath, env, adminAddr)
	var got string
	for {
		err := conn.QueryRow(ctx, `SELECT status, coalesce(tx_hash, '') FROM x402_payments`).Scan(&status, &got)
		if err == nil && status == "settled" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("not resolved: status %q tx %q\n%s", status, got, gw2.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.EqualFold(got, txHash) {
		t.Errorf("recorded tx %s, broadcast %s", got, txHash)
	}
	if b := token.BalanceOf(t, merchant.Address).Int64(); b != price {
		t.Errorf("merchant balance %d, want %d", b, price)
	}
	// The payer's retry with the same payment gets the content, without a second charge.
	resp, err = http.DefaultClient.Do(req.Clone(ctx))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "sunny") {
		t.Fatalf("retry: %d %s", resp.StatusCode, body)
	}
	if b := token.BalanceOf(t, payerAcct.Address).Int64(); b != 2*price {
		t.Errorf("payer balance %d, want %d", b, 2*price)
	}
	// Metrics are served, and SIGTERM shuts down cleanly.
	mresp, err := http.Get("http://" + adminAddr + config.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(mbody), `x402_gateway_requests_total{outcome="replay_settled"`) ||
		!strings.Contains(string(mbody), `x402_gateway_resolved_total{status="settled"} 1`) {
		t.Errorf("metrics lack the replay or the resolution:\n%s", grep(string(mbody), "x402_gateway_re"))
	}
	switch err := gw2.Stop(syscall.SIGTERM, 30*time.Second); {
	case errors.Is(err, proc.ErrKilled):
		t.Error("gateway did not stop after SIGTERM")
	case err != nil:
		t.Errorf("gateway exit after SIGTERM: %v\n%s", err, gw2.logs())
	}
	if logs := gw.logs() + gw2.logs(); strings.Contains(logs, common.Bytes2Hex(relayerKeyBytes(relayer))) || strings.Contains(logs, db.URL) {
		t.Error("a secret appears in the gateway's logs")
	}
}

func grep(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func relayerKeyBytes(a evmtest.Account) []byte { return a.Key.D.FillBytes(make([]byte, 32)) }
