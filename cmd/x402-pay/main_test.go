package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/insforge/integrations-operator/internal/facilitator/mock"
	"github.com/insforge/integrations-operator/internal/gateway"
	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newGateway runs the real gateway handler with the mock facilitator and a real ledger.
func newGateway(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "report for %s", r.Header.Get(config.DefaultPayerHeader))
	}))
	t.Cleanup(up.Close)
	db := pgtest.NewDatabase(t)
	raw := fmt.Sprintf(`{"route": "shop/report", "upstream": %q, "network": "eip155:196",
	  "asset": {"address": "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8", "decimals": 6, "eip712Name": "Global Dollar", "eip712Version": "1"},
	  "payTo": "0x1111111111111111111111111111111111111111", "maxTimeoutSeconds": 60,
	  "routes": [{"path": "/report", "price": "0.05"}], "facilitator": {"kind": "mock"}}`, up.URL)
	cfg, err := config.Parse([]byte(raw), config.Env{config.EnvDatabaseURL: db.URL})
	if err != nil {
		t.Fatal(err)
	}
	pool := db.Pool(t)
	ctx := context.Background()
	if _, err := ledger.Migrate(ctx, pool, ledger.Options{}); err != nil {
		t.Fatal(err)
	}
	l, _ := ledger.New(pool, ledger.Options{})
	sp, _ := ledger.OpenSpool(filepath.Join(t.TempDir(), "spool"))
	h, err := gateway.New(gateway.Options{Config: cfg, Facilitator: mock.New(mock.Config{}), Ledger: l, Spool: sp, Metrics: gateway.NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestPaysAndPrintsReceiptAndBody(t *testing.T) {
	srv := newGateway(t)
	key, _ := crypto.GenerateKey()
	keyHex := hex.EncodeToString(crypto.FromECDSA(key))
	addr := crypto.PubkeyToAddress(key.PublicKey).Hex()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{srv.URL + "/report"}, func(k string) string {
		if k == EnvKey {
			return keyHex
		}
		return ""
	}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	if out.String() != "report for "+addr {
		t.Errorf("body = %q", out.String())
	}
	for _, want := range []string{"status: 200", "success: true", "transaction: 0x", "payer: " + addr} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("receipt lacks %q:\n%s", want, errOut.String())
		}
	}
	if strings.Contains(errOut.String()+out.String(), keyHex) {
		t.Error("the key was printed")
	}
}

func TestRefusesAboveTheSpendingLimit(t *testing.T) {
	srv := newGateway(t)
	key, _ := crypto.GenerateKey()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-key", hex.EncodeToString(crypto.FromECDSA(key)), "-max-atomic", "49999", srv.URL + "/report"},
		func(string) string { return "" }, &out, &errOut)
	want := "the price 0.05 (50000 atomic units) is above the spending cap 0.049999 (49999 atomic units; -max-atomic, at 6 decimals)"
	if code != 1 || !strings.Contains(errOut.String(), want) || out.Len() != 0 {
		t.Errorf("exit %d out %q err %q", code, out.String(), errOut.String())
	}
}

func TestBadKeyIsNotEchoed(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-key", "zz-secret-zz", "http://127.0.0.1:1/x"}, func(string) string { return "" }, &out, &errOut)
	if code != 2 || strings.Contains(errOut.String(), "zz-secret-zz") {
		t.Errorf("exit %d err %q", code, errOut.String())
	}
}
