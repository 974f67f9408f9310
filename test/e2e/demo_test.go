//go:build e2e

package e2e

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/proc"
)

// TestDemo runs `make demo`'s program non-interactively and checks that it shows what the README
// promises, so that the demo cannot rot unnoticed, and that it removes what it created.
func TestDemo(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bins := buildBinaries(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.Demo, "-exit-after-ready")
	cmd.Dir = root
	var out proc.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	output := out.String()
	if err != nil {
		t.Fatalf("the demo failed: %v\n%s", err, output)
	}

	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`402 Payment Required; PAYMENT-REQUIRED decoded`),
		regexp.MustCompile(`"amount": "250000"`),
		regexp.MustCompile(`(?m)^\s+status: 200$`),
		regexp.MustCompile(`(?m)^\s+success: true$`),
		regexp.MustCompile(`(?m)^\s+transaction: 0x[0-9a-f]{64}$`),
		regexp.MustCompile(`public\.todos: owner inserted 1 row and sees 1; another user sees 0 and updates 0 → isolated`),
		regexp.MustCompile(`(?m)^\s+authintegration\.integrations\.insforge\.dev/clerk\s+clerk\s+apply\s+True\s`),
		regexp.MustCompile(`(?m)^\s+paymentroute\.integrations\.insforge\.dev/reports-onchain\s+eip155:1337\s+True\s+0\.25\s+USDG\s+1\s`),
		regexp.MustCompile(`(?m)^demo ready$`),
		regexp.MustCompile(`(?m)^\s+kubeconfig\s+/\S+/kubeconfig$`),
		regexp.MustCompile(`(?m)^\s+gateway\s+http://127\.0\.0\.1:\d+/reports/weekly$`),
	} {
		if !want.MatchString(output) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`(?m)^==> work dir (\S+)$`).FindStringSubmatch(output); m == nil {
		t.Error("the demo did not print its work dir")
	} else if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo's work dir %s is still there after exit (stat: %v)", m[1], err)
	}
	// Nothing it started still listens: the gateway, the dev chain and PostgreSQL are gone.
	for _, re := range []string{
		`(?m)^\s+gateway\s+http://(127\.0\.0\.1:\d+)/`,
		`(?m)^\s+dev chain\s+http://(127\.0\.0\.1:\d+)$`,
		`(?m)^\s+PostgreSQL\s+postgres://[^@]*@(127\.0\.0\.1:\d+)/`,
	} {
		m := regexp.MustCompile(re).FindStringSubmatch(output)
		if m == nil {
			t.Errorf("the demo's output lacks an address matching %s", re)
			continue
		}
		if conn, err := net.DialTimeout("tcp", m[1], 2*time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after the demo exited", m[1])
		}
	}
	if strings.Contains(output, "X402_PAY_KEY=0x") {
		t.Error("the demo printed the payer's key")
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", output)
	}
}
