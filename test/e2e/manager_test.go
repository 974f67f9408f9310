//go:build e2e

// Package e2e runs the operator as a user meets it: the manager binary as a real process against
// a real control plane, driven with kubectl.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/testutil/proc"
)

func TestMain(m *testing.M) {
	// envtest logs through controller-runtime; the processes under test have their own logs.
	ctrllog.SetLogger(logr.Discard())
	code := m.Run()
	kubetest.Shutdown()
	pgtest.Shutdown()
	removeBinaries()
	os.Exit(code)
}

// TestManagerProcess builds cmd/manager, runs it with leader election against envtest, checks its
// probes and Lease, applies every sample with kubectl, and stops it with SIGTERM.
func TestManagerProcess(t *testing.T) {
	env := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	bin := buildBinaries(t, env.Root).Manager

	kubeconfig := env.Kubeconfig(t)
	ns := env.Namespace(t)
	probeAddr := freeport.MustAddr(t)
	mgr := startProcess(t, "manager", bin, nil,
		"--kubeconfig", kubeconfig,
		"--leader-elect", "--leader-election-namespace", ns,
		"--health-probe-bind-address", probeAddr,
		"--metrics-bind-address", "0",
	)

	waitFor(t, 60*time.Second, "the manager's /readyz to answer 200", func() bool {
		resp, err := http.Get("http://" + probeAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	waitFor(t, 60*time.Second, "the leader-election Lease to be held", func() bool {
		var lease coordinationv1.Lease
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "integrations-operator.insforge.dev"}, &lease)
		return err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != ""
	})

	kubectl := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", kubeconfig, "--namespace", ns}, args...)...)
		cmd.Dir = env.Root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	kubectl("apply", "-f", "config/samples/")
	if out := kubectl("get", "authintegrations", "--no-headers"); strings.Count(out, "\n") != 6 {
		t.Fatalf("want the six provider samples listed, got:\n%s", out)
	}
	if out := kubectl("get", "paymentroutes", "--no-headers"); strings.Count(out, "\n") != 2 {
		t.Fatalf("want the two PaymentRoute samples listed, got:\n%s", out)
	}

	select {
	case <-mgr.Exited():
		t.Fatalf("the manager exited before SIGTERM: %v", mgr.Err())
	default:
	}
	switch err := mgr.Stop(syscall.SIGTERM, 30*time.Second); {
	case errors.Is(err, proc.ErrKilled):
		t.Fatal("the manager did not stop within 30s of SIGTERM")
	case err != nil:
		t.Fatalf("the manager exited with %v after SIGTERM, want a clean exit", err)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal(fmt.Sprintf("timed out after %s waiting for %s", timeout, what))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
