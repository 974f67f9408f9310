package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/testutil/devchain"
	"github.com/insforge/integrations-operator/internal/testutil/gatewayrun"
	"github.com/insforge/integrations-operator/internal/testutil/rlscheck"
	"github.com/insforge/integrations-operator/internal/testutil/sampleoverlay"
	"github.com/insforge/integrations-operator/internal/x402"
)

// apply creates the Secrets a user would create and applies the two samples through an overlay
// that points them at the local database, chain and upstream.
func (d *demo) apply(ctx context.Context) error {
	for name, data := range map[string]map[string]string{
		"insforge-db":  {"uri": d.dbURL},
		"x402-relayer": {"privateKey": d.relayer.KeyHex()},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace,
			Labels: map[string]string{integrationsv1alpha1.LabelSecretAccess: "true"}}, StringData: data}
		if err := d.kube.Client.Create(ctx, s); err != nil {
			return fmt.Errorf("creating Secret %s: %w", name, err)
		}
	}
	overlay := sampleoverlay.Overlay{
		SamplesDir: filepath.Join(d.root, "config", "samples"),
		Namespace:  namespace,
		Samples:    []string{sampleAuth, sampleRoute},
		Patches: []sampleoverlay.Patch{sampleoverlay.OnchainRoute(routeName, sampleoverlay.Local{
			Upstream: d.upstream, RPCURL: d.chain.RPCURL, Network: devchain.Network,
			Token: d.token.Address.Hex(), PayTo: d.merchant.Address.Hex(),
		})},
	}
	dir := filepath.Join(d.dir, "overlay")
	manifests, err := overlay.Build(ctx, filepath.Join(d.root, "bin", kustomizeFile), dir)
	if err != nil {
		return err
	}
	out, err := d.kubectl(ctx, string(manifests), "apply", "-f", "-")
	if err != nil {
		return err
	}
	d.indent(out)
	d.say("   overlay: %s", filepath.Join(dir, "kustomization.yaml"))
	return nil
}

func (d *demo) auth(ctx context.Context) error {
	key := client.ObjectKey{Namespace: namespace, Name: authName}
	err := poll(ctx, 2*time.Minute, "AuthIntegration "+authName+" to be Ready", func() (bool, error) {
		var a integrationsv1alpha1.AuthIntegration
		if err := d.kube.Client.Get(ctx, key, &a); err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(a.Status.Conditions, integrationsv1alpha1.ConditionReady), nil
	})
	if err != nil {
		return err
	}
	for _, table := range []string{"todos", "notes"} {
		res, err := rlscheck.Check(ctx, d.dbURL, "public", table, "user_id", "user_2xAlice", "auth0|bob")
		if err != nil {
			return err
		}
		d.say("   RLS as authenticated: %s", res)
		d.summary = append(d.summary, "RLS check       "+res.String())
		if !res.Isolated() {
			return fmt.Errorf("row-level security does not isolate users on %s", table)
		}
	}
	return nil
}

func (d *demo) runGateway(ctx context.Context) error {
	log, err := d.logFile("gateway")
	if err != nil {
		return err
	}
	dir := filepath.Join(d.dir, "gateway")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	gw, err := gatewayrun.Start(ctx, gatewayrun.Options{
		Client: d.kube.Client, Route: client.ObjectKey{Namespace: namespace, Name: routeName},
		Binary: d.bins.gateway, Dir: dir, Log: log,
	})
	if err != nil {
		return err
	}
	d.gateway = gw
	d.defer_(func() { _ = gw.Stop() })
	d.say("   gateway %s (from Deployment %s/%s, command %v)", gw.URL, namespace, gw.Deployment.Name,
		gw.Deployment.Spec.Template.Spec.Containers[0].Command)
	key := client.ObjectKey{Namespace: namespace, Name: routeName}
	return poll(ctx, 2*time.Minute, "PaymentRoute "+routeName+" to be Ready", func() (bool, error) {
		var r integrationsv1alpha1.PaymentRoute
		if err := d.kube.Client.Get(ctx, key, &r); err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(r.Status.Conditions, integrationsv1alpha1.ConditionReady), nil
	})
}

// pay shows the challenge a client gets, then pays with the CLI and shows its receipt.
func (d *demo) pay(ctx context.Context) error {
	url := d.gateway.URL + pricedPath
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		return fmt.Errorf("GET %s answered %s without a valid challenge: %w", url, resp.Status, err)
	}
	pretty, _ := json.MarshalIndent(pr, "", "  ")
	d.say("   GET %s without payment → %s; %s decoded:", pricedPath, resp.Status, x402.HeaderPaymentRequired)
	d.indent(string(pretty))

	cmd := exec.CommandContext(ctx, d.bins.pay, "-max-atomic", "250000", url)
	cmd.Env = []string{"X402_PAY_KEY=" + d.payer.KeyHex()}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	d.say("   x402-pay %s", url)
	d.indent(stderr.String())
	d.say("   body:")
	d.indent(stdout.String())
	if err != nil {
		return fmt.Errorf("x402-pay: %w", err)
	}
	bal, err := d.token.BalanceOf(ctx, d.merchant.Address)
	if err != nil {
		return err
	}
	d.say("   merchant %s now holds %s atomic units on chain", d.merchant.Address.Hex(), bal)
	return nil
}

// totals waits for the operator to report the payment and prints `kubectl get`.
func (d *demo) totals(ctx context.Context) error {
	key := client.ObjectKey{Namespace: namespace, Name: routeName}
	err := poll(ctx, time.Minute, "status.settled to count the payment", func() (bool, error) {
		var r integrationsv1alpha1.PaymentRoute
		if err := d.kube.Client.Get(ctx, key, &r); err != nil {
			return false, err
		}
		return r.Status.Settled.Count >= 1, nil
	})
	if err != nil {
		return err
	}
	out, err := d.kubectl(ctx, "", "get", "authintegrations,paymentroutes")
	if err != nil {
		return err
	}
	d.say("   kubectl get authintegrations,paymentroutes -n %s", namespace)
	d.indent(out)
	return nil
}

func (d *demo) printReady() {
	fmt.Fprintf(d.out, "\n%s\n", readyLine)
	fmt.Fprintf(d.out, "  kubeconfig      %s\n", d.kubeconfig)
	fmt.Fprintf(d.out, "  gateway         %s%s\n", d.gateway.URL, pricedPath)
	for _, s := range d.summary {
		fmt.Fprintf(d.out, "  %s\n", s)
	}
	fmt.Fprintf(d.out, "  logs            %s\n", strings.Join(d.logs, " "))
	fmt.Fprintf(d.out, "\nTry:\n")
	fmt.Fprintf(d.out, "  kubectl --kubeconfig %s -n %s get authintegrations,paymentroutes,deployments,secrets\n", d.kubeconfig, namespace)
	fmt.Fprintf(d.out, "  curl -i %s%s\n", d.gateway.URL, pricedPath)
	fmt.Fprintf(d.out, "  X402_PAY_KEY=$(cat %s) %s %s%s\n", filepath.Join(d.dir, "payer.key"), d.bins.pay, d.gateway.URL, pricedPath)
	fmt.Fprintf(d.out, "Press Ctrl-C to stop and remove everything.\n")
}

// kubectl runs kubectl in the demo namespace with the demo's kubeconfig.
func (d *demo) kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", d.kubeconfig, "--namespace", namespace}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (d *demo) indent(s string) {
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		fmt.Fprintf(d.out, "      %s\n", line)
	}
}
