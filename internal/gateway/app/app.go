// Package app wires the gateway process: database pool, ledger, spool, facilitator, the data
// plane and admin servers, the resolver and spool replay, and graceful shutdown. cmd/gateway is
// a thin entrypoint around Run.
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

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/insforge/integrations-operator/internal/gateway"
	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
)

// Intervals of background work.
const (
	replayInterval = 5 * time.Second
	gaugeInterval  = 15 * time.Second
)

// Run serves the gateway until ctx ends, then shuts down gracefully: readiness fails at once,
// in-flight requests (and their settlements) finish within ShutdownTimeout, and the background
// work stops. It returns nil after a clean shutdown.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	pcfg, err := pgxpool.ParseConfig(cfg.Secrets.DatabaseURL)
	if err != nil {
		return errors.New("ledger database: " + config.EnvDatabaseURL + " cannot be parsed") // the error would quote the URL
	}
	pcfg.MaxConns = int32(cfg.Ledger.MaxConns)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("ledger database: %w", err)
	}
	defer pool.Close()
	lopts := ledger.Options{Schema: cfg.Ledger.Schema, Table: cfg.Ledger.Table}
	if cfg.Ledger.Migrate {
		mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := ledger.Migrate(mctx, pool, lopts)
		cancel()
		if err != nil {
			return err
		}
		if res.Changed() {
			log.Info("ledger schema migrated", "from", res.From, "to", res.To)
		}
	}
	led, err := ledger.New(pool, lopts)
	if err != nil {
		return err
	}
	spool, err := ledger.OpenSpool(cfg.Gateway.SpoolDir)
	if err != nil {
		return err
	}
	defer spool.Close()
	facs, err := NewFacilitators(ctx, cfg)
	if err != nil {
		return err
	}
	defer facs.Close()

	reg := prometheus.NewRegistry()
	metrics := gateway.NewMetrics(reg)
	h, err := gateway.New(gateway.Options{
		Config: cfg, Facilitator: facs.Facilitator, Ledger: led, Spool: spool, Metrics: metrics, Logger: log,
		RecoverCache: facs.RecoverCache,
	})
	if err != nil {
		return err
	}

	var stopping atomic.Bool
	// No WriteTimeout: it would cut long streams; the handler bounds each write instead
	// (gateway.writeIdleTimeout). ReadTimeout bounds reading the request, and net/http lifts
	// it once the body is read, so it does not limit how long an answer may take.
	data := &http.Server{
		Addr: cfg.Listen, Handler: h,
		ReadHeaderTimeout: cfg.Gateway.ReadHeaderTimeout.Duration, IdleTimeout: cfg.Gateway.IdleTimeout.Duration,
		ReadTimeout:    cfg.Gateway.ReadTimeout.Duration,
		MaxHeaderBytes: cfg.Gateway.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	admin := &http.Server{
		Addr: cfg.AdminListen, Handler: AdminHandler(reg, pool, &stopping),
		ReadHeaderTimeout: 5 * time.Second,
	}
	rawDataLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	dataLn := newLimitListener(rawDataLn, cfg.Gateway.MaxConnections)
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		dataLn.Close()
		return fmt.Errorf("listen %s: %w", cfg.AdminListen, err)
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = led.RunResolver(bg, ledger.ResolverConfig{
			Route:    cfg.Route,
			Resolver: gateway.Resolver{Facilitator: facs.Facilitator, Chain: facs.Chain},
			Interval: cfg.Resolver.Interval.Duration, MinAge: cfg.Resolver.MinAge.Duration,
			AbandonAfter: max(10*time.Minute, 2*(cfg.Gateway.UpstreamTimeout.Duration+cfg.Gateway.SettleTimeout.Duration)),
			OnLeadership: func(leading bool) { metrics.ResolverLeader.Set(b2f(leading)) },
			OnResolved: func(p ledger.Payment, o ledger.Outcome) {
				metrics.Resolved(string(o.Status))
				log.Info("payment resolved", "id", p.ID, "payer", p.Payer, "status", o.Status, "tx", o.TxHash)
			},
			Logger: log,
		})
	})
	wg.Go(func() { _ = spool.RunReplay(bg, led, replayInterval, log) })
	wg.Go(func() { updateGauges(bg, led, spool, cfg.Route, metrics, log) })

	errc := make(chan error, 2)
	go func() { errc <- serve(data, dataLn) }()
	go func() { errc <- serve(admin, adminLn) }()
	log.Info("gateway serving", "listen", dataLn.Addr().String(), "admin", adminLn.Addr().String(),
		"route", cfg.Route, "facilitator", cfg.Facilitator.Kind, "routes", len(cfg.Routes), "upstream", cfg.Upstream)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	stopping.Store(true)
	log.Info("gateway shutting down; finishing in-flight requests", "timeout", cfg.Gateway.ShutdownTimeout.Duration)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Gateway.ShutdownTimeout.Duration)
	defer cancel()
	if err := data.Shutdown(sctx); err != nil {
		log.Error("in-flight requests did not finish in time; their settling rows are left to the resolver", "error", err)
	}
	stopBG()
	wg.Wait()
	// One last replay so that spooled outcomes reach the database if it is back.
	if n, _ := spool.Len(); n > 0 {
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = spool.Replay(rctx, led)
		rcancel()
	}
	_ = admin.Shutdown(sctx)
	log.Info("gateway stopped")
	return runErr
}

func serve(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// updateGauges refreshes the pending and spool gauges.
func updateGauges(ctx context.Context, led *ledger.Ledger, spool *ledger.Spool, route string, m *gateway.Metrics, log *slog.Logger) {
	t := time.NewTicker(gaugeInterval)
	defer t.Stop()
	for {
		if n, err := led.Unfinished(ctx, route); err == nil {
			m.Pending.Set(float64(n))
		} else if ctx.Err() == nil {
			log.Debug("reading the unfinished payments for the pending gauge failed", "error", err)
		}
		if n, err := spool.Len(); err == nil {
			m.Spooled.Set(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// AdminHandler serves /healthz (the process runs), /readyz (not shutting down, database
// reachable; the facilitator was configured at start) and /metrics from reg.
func AdminHandler(reg *prometheus.Registry, pool *pgxpool.Pool, stopping *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+config.PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+config.PathReadyz, func(w http.ResponseWriter, r *http.Request) {
		if stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := pool.Ping(ctx); err != nil {
			http.Error(w, "ledger database unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET "+config.PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}
