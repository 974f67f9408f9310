//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/testutil/proc"
)

// process is a command under test whose output goes to a log file that is printed when the test
// fails.
type process struct {
	*proc.Process
	logPath string
}

// startProcess starts bin with args (and env on top of ours) and stops it with SIGTERM when the
// test ends.
func startProcess(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started, err := proc.Start(cmd)
	f.Close() // the child has its own descriptor
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{Process: started, logPath: logPath}
	t.Cleanup(func() {
		_ = p.Stop(syscall.SIGTERM, 30*time.Second)
		if t.Failed() {
			t.Logf("=== %s log ===\n%s", name, p.log())
		}
	})
	return p
}

func (p *process) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// kubectlRunner runs kubectl against one kubeconfig and namespace.
type kubectlRunner struct {
	t          *testing.T
	kubeconfig string
	namespace  string
	dir        string
}

// run runs kubectl and fails the test on error.
func (k kubectlRunner) run(ctx context.Context, stdin string, args ...string) string {
	k.t.Helper()
	out, err := k.try(ctx, stdin, args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// try runs kubectl and returns its combined output and error.
func (k kubectlRunner) try(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", k.kubeconfig, "--namespace", k.namespace}, args...)...)
	cmd.Dir = k.dir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}
