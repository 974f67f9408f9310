// Package app wires the token exchange process: the exchanger, its background work (key set
// refreshes, signing key polling), the exchange and admin servers, and graceful shutdown.
// cmd/exchange is a thin entrypoint around Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/insforge/integrations-operator/internal/tokenexchange"
	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

// Server limits of the exchange listener. A request is one small form or one header; nothing
// streams, so every phase is bounded.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	idleTimeout       = 60 * time.Second
	// maxHeaderBytes leaves room for a bearer token of MaxTokenBytes and the browser's headers.
	maxHeaderBytes = 32 << 10
)

// Options are the process's injectable parts.
type Options struct {
	// HTTPClient fetches the providers' key sets (nil: a client with bounded timeouts).
	HTTPClient *http.Client
	// Listening, if set, is called with the bound addresses once both servers listen.
	Listening func(data, admin net.Addr)
	// KeyPollInterval overrides how often the signing key file is reread (0: 2 s).
	KeyPollInterval time.Duration
}

// Run serves the exchange until ctx ends, then shuts down gracefully: readiness fails at once,
// in-flight exchanges finish within ShutdownTimeout. It returns nil after a clean shutdown.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, o Options) error {
	client := o.HTTPClient
	if client == nil {
		client = jwksClient(cfg.JWKS.FetchTimeout.Duration)
	}
	reg := prometheus.NewRegistry()
	ex, err := tokenexchange.New(tokenexchange.Options{
		Config: cfg, HTTPClient: client, Metrics: tokenexchange.NewMetrics(reg), Logger: log,
		KeyPollInterval: o.KeyPollInterval,
	})
	if err != nil {
		return err
	}
	var stopping atomic.Bool
	data := &http.Server{
		Addr: cfg.Listen, Handler: ex.Handler(),
		ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, IdleTimeout: idleTimeout,
		// An exchange may wait for one key set fetch.
		WriteTimeout:   cfg.JWKS.FetchTimeout.Duration + 10*time.Second,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	admin := &http.Server{
		Addr: cfg.AdminListen, Handler: AdminHandler(reg, ex, &stopping),
		ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	dataLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		dataLn.Close()
		return fmt.Errorf("listen %s: %w", cfg.AdminListen, err)
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	var wg sync.WaitGroup
	wg.Go(func() { ex.Run(bg) })

	errc := make(chan error, 2)
	go func() { errc <- serve(data, dataLn) }()
	go func() { errc <- serve(admin, adminLn) }()
	providers := make([]string, len(cfg.Issuers))
	for i, is := range cfg.Issuers {
		providers[i] = is.Provider
	}
	log.Info("exchange serving", "listen", dataLn.Addr().String(), "admin", adminLn.Addr().String(),
		"providers", providers, "signingKey", ex.KeyFile().Fingerprint())
	if o.Listening != nil {
		o.Listening(dataLn.Addr(), adminLn.Addr())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	stopping.Store(true)
	log.Info("exchange shutting down; finishing in-flight requests", "timeout", cfg.ShutdownTimeout.Duration)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
	defer cancel()
	if err := data.Shutdown(sctx); err != nil {
		log.Error("in-flight requests did not finish in time", "error", err)
	}
	stopBG()
	wg.Wait()
	_ = admin.Shutdown(sctx)
	log.Info("exchange stopped")
	return runErr
}

func serve(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// jwksClient fetches key sets: every phase bounded, few idle connections (a handful of hosts,
// fetched minutes apart), proxies from the environment as usual.
func jwksClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSHandshakeTimeout = timeout
	tr.ResponseHeaderTimeout = timeout
	tr.MaxIdleConnsPerHost = 2
	tr.MaxResponseHeaderBytes = 64 << 10
	return &http.Client{Transport: tr, Timeout: timeout}
}

// AdminHandler serves /healthz (the process runs), /readyz (not shutting down, a signing key
// loaded, every issuer's keys fetched) and /metrics from reg.
func AdminHandler(reg *prometheus.Registry, ex *tokenexchange.Exchanger, stopping *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+config.PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+config.PathReadyz, func(w http.ResponseWriter, _ *http.Request) {
		if stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if err := ex.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET "+config.PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}
