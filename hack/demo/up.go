package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/insforge/integrations-operator/internal/testutil/devchain"
	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/gatewayrun"
	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/testutil/proc"
)

// What the demo applies and pays for.
const (
	namespace     = "demo"
	sampleAuth    = "integrations_v1alpha1_authintegration_clerk.yaml"
	sampleRoute   = "integrations_v1alpha1_paymentroute_onchain.yaml"
	authName      = "clerk"
	routeName     = "reports-onchain"
	pricedPath    = "/reports/weekly"
	tokenName     = "Global Dollar" // the sample's asset.eip712, so the route needs no patch there
	tokenVersion  = "1"
	databaseName  = "insforge"
	kustomizeFile = "kustomize-v5.8.2"
)

// demo holds everything that was started, so that cleanup can stop it in reverse order.
type demo struct {
	out      io.Writer
	root     string
	dir      string // work dir: binaries, logs, kubeconfig, payer key
	bins     struct{ manager, gateway, pay string }
	cleanups []func()

	kube       *kubetest.Env
	kubeconfig string
	dbURL      string
	chain      *devchain.Chain
	token      *devchain.Token
	payer      devchain.Account
	relayer    devchain.Account
	merchant   devchain.Account
	upstream   string
	gateway    *gatewayrun.Gateway
	logs       []string // paths of process logs, printed on failure
	summary    []string // what the ready banner repeats
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "==> "+format+"\n", args...)
}

func (d *demo) defer_(f func()) { d.cleanups = append(d.cleanups, f) }

// cleanup stops everything, last started first.
func (d *demo) cleanup() {
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		d.cleanups[i]()
	}
	d.cleanups = nil
}

func (d *demo) up(ctx context.Context) error {
	var err error
	if d.root, err = kubetest.RepoRoot(); err != nil {
		return err
	}
	if d.dir, err = os.MkdirTemp("", "insforge-demo-"); err != nil {
		return fmt.Errorf("creating the work dir: %w", err)
	}
	d.defer_(func() { _ = os.RemoveAll(d.dir); d.say("removed %s", d.dir) })
	d.say("work dir %s", d.dir)

	steps := []struct {
		what string
		run  func(context.Context) error
	}{
		{"building the manager, the gateway and the payer CLI", d.build},
		{"starting the Kubernetes control plane (envtest: kube-apiserver + etcd)", d.controlPlane},
		{"starting PostgreSQL with InsForge's roles and the app's tables", d.postgres},
		{"starting a geth dev chain and deploying the test token", d.devChain},
		{"starting the example upstream (a JSON API)", d.startUpstream},
		{"starting the operator", d.operator},
		{"applying the samples with kubectl (through a kustomize overlay)", d.apply},
		{"waiting for the AuthIntegration and checking row-level security", d.auth},
		{"running the gateway from the Deployment the operator rendered", d.runGateway},
		{"paying for " + pricedPath + " with x402-pay", d.pay},
		{"reading the settled total", d.totals},
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.say("%s...", s.what)
		start := time.Now()
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		d.say("   done in %s", time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

func (d *demo) build(ctx context.Context) error {
	// bin/demo persists, so a warm run relinks nothing (go build skips up-to-date outputs).
	bin := filepath.Join(d.root, "bin", "demo")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin+string(filepath.Separator),
		"./cmd/manager", "./cmd/gateway", "./cmd/x402-pay")
	cmd.Dir = d.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	d.bins.manager = filepath.Join(bin, "manager")
	d.bins.gateway = filepath.Join(bin, "gateway")
	d.bins.pay = filepath.Join(bin, "x402-pay")
	return nil
}

func (d *demo) controlPlane(ctx context.Context) error {
	env, err := kubetest.Start()
	if err != nil {
		return err
	}
	d.kube = env
	d.defer_(func() {
		if err := env.Stop(); err != nil {
			d.say("stopping the control plane: %v", err)
		}
	})
	d.kubeconfig = filepath.Join(d.dir, "kubeconfig")
	if err := env.WriteKubeconfig(d.kubeconfig); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := env.Client.Create(ctx, ns); err != nil {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	return nil
}

func (d *demo) postgres(ctx context.Context) error {
	srv, err := pgtest.Launch(pgtest.Options{})
	if err != nil {
		return err
	}
	d.defer_(func() { _ = srv.Stop(); srv.Remove() })
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+databaseName); err != nil {
		return fmt.Errorf("creating database %s: %w", databaseName, err)
	}
	d.dbURL = srv.URL(databaseName)
	if err := insforgetest.PrepareURL(ctx, d.dbURL, databaseName, insforgetest.Options{AuthJWT: true}); err != nil {
		return err
	}
	app, err := pgx.Connect(ctx, d.dbURL)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", databaseName, err)
	}
	defer app.Close(ctx)
	// The app's tables, as they exist before the operator is installed.
	_, err = app.Exec(ctx, insforgetest.AsProjectAdmin(`
CREATE TABLE public.todos (id bigserial PRIMARY KEY, title text);
CREATE TABLE public.notes (id bigserial PRIMARY KEY, body text)`))
	if err != nil {
		return fmt.Errorf("creating the app's tables: %w", err)
	}
	d.summary = append(d.summary, "PostgreSQL      "+redact(d.dbURL))
	return nil
}

func (d *demo) devChain(ctx context.Context) error {
	log, err := d.logFile("geth")
	if err != nil {
		return err
	}
	c, err := devchain.Start(ctx, devchain.Options{Geth: filepath.Join(d.root, "bin", "geth"), Log: log})
	if err != nil {
		return err
	}
	d.chain = c
	d.defer_(c.Stop)
	if d.token, err = c.DeployToken(ctx, tokenName, tokenVersion, "USDG"); err != nil {
		return err
	}
	for _, a := range []*devchain.Account{&d.payer, &d.relayer, &d.merchant} {
		if *a, err = devchain.NewAccount(); err != nil {
			return err
		}
	}
	// The relayer sends the settlement transactions, so it needs gas.
	if err := c.Fund(ctx, d.relayer.Address, devchain.Ether(10)); err != nil {
		return err
	}
	if err := d.token.Mint(ctx, d.payer.Address, big.NewInt(10_000_000)); err != nil {
		return err
	}
	// The payer's key goes to a file, never to the terminal.
	if err := os.WriteFile(filepath.Join(d.dir, "payer.key"), []byte(d.payer.KeyHex()), 0o600); err != nil {
		return fmt.Errorf("writing the payer key: %w", err)
	}
	d.say("   chain %s (id %s), token %s at %s, payer %s holds 10 USDG",
		c.RPCURL, c.ChainID, tokenName, d.token.Address.Hex(), d.payer.Address.Hex())
	d.summary = append(d.summary, "dev chain       "+c.RPCURL)
	return nil
}

func (d *demo) startUpstream(ctx context.Context) error {
	srv, url, err := startUpstream()
	if err != nil {
		return err
	}
	d.upstream = url
	d.defer_(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	d.say("   upstream %s", url)
	return nil
}

func (d *demo) operator(ctx context.Context) error {
	log, err := d.logFile("manager")
	if err != nil {
		return err
	}
	probe, err := freeport.Addr()
	if err != nil {
		return err
	}
	cmd := exec.Command(d.bins.manager,
		"--kubeconfig", d.kubeconfig,
		"--health-probe-bind-address", probe,
		"--metrics-bind-address", "0",
		"--gateway-image", "integrations-operator:demo",
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	mgr, err := proc.Start(cmd)
	if err != nil {
		return fmt.Errorf("starting the manager: %w", err)
	}
	d.defer_(func() { _ = mgr.Stop(syscall.SIGTERM, 30*time.Second) })
	const timeout = 60 * time.Second
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch err := mgr.WaitReady(rctx, 250*time.Millisecond, proc.HTTPReady("http://"+probe+"/readyz")); {
	case errors.Is(err, proc.ErrExited):
		return fmt.Errorf("the manager exited: %v", cmd.ProcessState)
	case err != nil:
		return fmt.Errorf("timed out after %s waiting for the manager's /readyz", timeout)
	}
	return nil
}

// logFile creates a log in the work dir and remembers it for a failure report.
func (d *demo) logFile(name string) (*os.File, error) {
	path := filepath.Join(d.dir, name+".log")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	d.logs = append(d.logs, path)
	d.defer_(func() { _ = f.Close() })
	return f, nil
}

// dumpLogs prints the tail of every process log, for a failed start.
func (d *demo) dumpLogs() {
	for _, p := range d.logs {
		b, _ := os.ReadFile(p)
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		fmt.Fprintf(d.out, "\n--- %s (tail) ---\n%s\n", p, b)
	}
	if d.kubeconfig != "" {
		out, _ := d.kubectl(context.Background(), "", "get", "events", "--sort-by=.lastTimestamp")
		fmt.Fprintf(d.out, "\n--- kubectl get events ---\n%s\n", out)
	}
}
