//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// binaries are the commands under test, built once per test binary into one directory.
type binaries struct {
	Manager, Gateway, Pay, Demo string
}

// built is package state because building once for every test of the binary is the point.
var built struct {
	once sync.Once
	dir  string
	out  []byte
	err  error
}

// buildBinaries builds cmd/manager, cmd/gateway, cmd/x402-pay and hack/demo as users get them.
func buildBinaries(t *testing.T, root string) binaries {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "e2e-bin-")
		if built.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", built.dir+string(filepath.Separator),
			"./cmd/manager", "./cmd/gateway", "./cmd/x402-pay", "./hack/demo")
		cmd.Dir = root
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("building the binaries: %v\n%s", built.err, built.out)
	}
	return binaries{
		Manager: filepath.Join(built.dir, "manager"),
		Gateway: filepath.Join(built.dir, "gateway"),
		Pay:     filepath.Join(built.dir, "x402-pay"),
		Demo:    filepath.Join(built.dir, "demo"),
	}
}

// removeBinaries deletes the build directory; TestMain calls it.
func removeBinaries() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}
