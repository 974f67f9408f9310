// Command demo is `make demo`: it brings up a Kubernetes control plane (envtest), PostgreSQL with
// InsForge's roles, a geth dev chain with a test token, the operator as a real process, an
// example upstream, applies one AuthIntegration and one PaymentRoute from config/samples/, runs
// the gateway from the Deployment the operator rendered, makes a paid request with the payer CLI
// and prints what happened. It then keeps everything running for kubectl until Ctrl-C, and
// removes everything on exit.
//
//	go run ./hack/demo [-exit-after-ready]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// readyLine starts the line printed once everything is up; the e2e test waits for it.
const readyLine = "demo ready"

func main() {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	exitAfterReady := fs.Bool("exit-after-ready", false, "clean up and exit once the paid request is shown (for tests and CI)")
	_ = fs.Parse(os.Args[1:])
	// envtest logs through controller-runtime; the demo prints its own progress instead.
	ctrllog.SetLogger(logr.Discard())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, *exitAfterReady, os.Stdout))
}

// run brings the demo up, waits, and always tears it down; it returns the exit code.
func run(ctx context.Context, exitAfterReady bool, out io.Writer) int {
	d := &demo{out: out}
	defer d.cleanup()
	if err := d.up(ctx); err != nil {
		if ctx.Err() != nil {
			d.say("interrupted; cleaning up")
			return 130
		}
		fmt.Fprintf(out, "\ndemo failed: %v\n", err)
		d.dumpLogs()
		return 1
	}
	d.printReady()
	if exitAfterReady {
		return 0
	}
	<-ctx.Done()
	d.say("Ctrl-C: stopping everything")
	return 0
}
