// Command gateway is the x402 payment gateway the PaymentRoute controller runs as a Deployment:
//
//	gateway --config /etc/x402-gateway/config.json
//
// Secrets come from the environment (see internal/gateway/config). It serves the paid data plane
// on the configured listen address and /healthz, /readyz and /metrics on the admin address, and
// shuts down gracefully on SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/insforge/integrations-operator/internal/gateway/app"
	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/pgpool"
)

func main() {
	path := flag.String("config", config.DefaultConfigPath, "path of the gateway configuration file (JSON)")
	level := flag.String("log-level", "info", "log level: debug, info, warn or error")
	flag.Parse()

	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "gateway: --log-level: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv, ReplaceAttr: redactErrors}))

	cfg, err := config.Load(*path, config.OSEnv())
	if err != nil {
		log.Error("configuration rejected", "error", err.Error())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("gateway failed", "error", err)
		os.Exit(1)
	}
}

// redactErrors logs every error through pgpool.Redact: what pgx quotes of the connection string
// (user and database, which a malformed value can fill with a password) stays out of the logs.
func redactErrors(_ []string, a slog.Attr) slog.Attr {
	if err, ok := a.Value.Any().(error); ok {
		return slog.String(a.Key, pgpool.Redact(err).Error())
	}
	return a
}
