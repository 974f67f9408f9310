// Command exchange is the managed token exchange the AuthIntegration controller runs as a
// Deployment:
//
//	exchange --config /etc/insforge-exchange/config.json
//
// It takes a provider's token (Clerk, Auth0, WorkOS, Kinde, Stytch, Better Auth), verifies it
// against the provider's published keys, and answers with a short-lived HS256 InsForge token
// signed with the key mounted at the config's signingKeyFile. It serves /token and /exchange on
// the configured listen address and /healthz, /readyz and /metrics on the admin address, and
// shuts down gracefully on SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/insforge/integrations-operator/internal/tokenexchange/app"
	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

// run is the command with its arguments and log output: 0 after a clean shutdown, 1 when
// serving failed, 2 for bad flags or configuration.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("exchange", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", config.DefaultConfigPath, "path of the exchange configuration file (JSON)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "exchange: --log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv}))
	cfg, err := config.Load(*path)
	if err != nil {
		log.Error("configuration rejected", "error", err.Error())
		return 2
	}
	if err := app.Run(ctx, cfg, log, app.Options{}); err != nil {
		log.Error("exchange failed", "error", err)
		return 1
	}
	return 0
}
