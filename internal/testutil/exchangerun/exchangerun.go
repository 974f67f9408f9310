// Package exchangerun runs the token exchange (app.Run, real listeners on loopback) from a
// configuration the operator rendered, the way its pod would, with the signing key in a file
// that a test updates like the kubelet updates a mounted Secret.
package exchangerun

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/tokenexchange/app"
	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

// Exchange is a running exchange.
type Exchange struct {
	// URL serves /exchange and /token.
	URL     string
	keyPath string
	t       testing.TB
}

// Start runs the exchange with cfg (listeners moved to loopback, the key file to a temporary
// directory holding key) until the test ends. client fetches the providers' key sets.
func Start(t testing.TB, cfg config.Config, key string, client *http.Client) *Exchange {
	t.Helper()
	x := &Exchange{t: t, keyPath: filepath.Join(t.TempDir(), config.SigningKeyName)}
	x.SetKey(key)
	cfg.Listen, cfg.AdminListen, cfg.SigningKeyFile = "127.0.0.1:0", "127.0.0.1:0", x.keyPath
	cfg = cfg.WithDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cfg, slog.New(slog.DiscardHandler), app.Options{
			HTTPClient: client, KeyPollInterval: 20 * time.Millisecond,
			Listening: func(d, _ net.Addr) { addrs <- d },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("exchange: %v", err)
		}
	})
	select {
	case a := <-addrs:
		x.URL = "http://" + a.String()
	case err := <-done:
		t.Fatalf("exchange did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("exchange did not start within 30s")
	}
	return x
}

// SetKey replaces the signing key file atomically, as the kubelet swaps a Secret volume.
func (x *Exchange) SetKey(key string) {
	x.t.Helper()
	tmp := x.keyPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(key), 0o600); err != nil {
		x.t.Fatal(err)
	}
	if err := os.Rename(tmp, x.keyPath); err != nil {
		x.t.Fatal(err)
	}
}
