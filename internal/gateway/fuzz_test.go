package gateway

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/insforge/integrations-operator/internal/facilitator/mock"
	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/ledger"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// FuzzPaymentHeaders sends arbitrary PAYMENT-SIGNATURE, X-PAYMENT and X-Forwarded-Host values
// through the whole handler (real ledger, mock facilitator): it must never panic, and it must
// answer 400 or 402, or 200 only for a validly signed payment.
func FuzzPaymentHeaders(f *testing.F) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer up.Close()
	db := pgtest.NewDatabase(f)
	raw := fmt.Sprintf(`{"route": "fuzz/route", "upstream": %q, "network": "eip155:196",
	  "asset": {"address": "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8", "decimals": 6, "eip712Name": "Global Dollar", "eip712Version": "1"},
	  "payTo": "0x1111111111111111111111111111111111111111", "maxTimeoutSeconds": 60,
	  "routes": [{"path": "/paid", "price": "0.01"}], "facilitator": {"kind": "mock"}}`, up.URL)
	cfg, err := config.Parse([]byte(raw), config.Env{config.EnvDatabaseURL: db.URL})
	if err != nil {
		f.Fatal(err)
	}
	pool := db.Pool(f)
	if _, err := ledger.Migrate(context.Background(), pool, ledger.Options{}); err != nil {
		f.Fatal(err)
	}
	l, _ := ledger.New(pool, ledger.Options{})
	sp, _ := ledger.OpenSpool(filepath.Join(f.TempDir(), "spool"))
	h, err := New(Options{Config: cfg, Facilitator: mock.New(mock.Config{}), Ledger: l, Spool: sp, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		f.Fatal(err)
	}
	key, _ := crypto.GenerateKey()
	valid, err := eip3009.NewSigner(key).Sign(h.routes.match("GET", "/paid").req, nil)
	if err != nil {
		f.Fatal(err)
	}
	enc, _ := x402.EncodePaymentSignature(valid)
	v1, _ := x402.EncodeXPayment(x402.PaymentPayloadV1{X402Version: 1, Scheme: "exact", Network: "eip155:196", Payload: valid.Payload})

	f.Add(enc, "", "")
	f.Add("", v1, "evil.example")
	f.Add(enc[:len(enc)/2], "", "a b")
	f.Add("e30=", "e30=", "")
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"accepted":{},"payload":{}}`)), "", "")
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:196","amount":"10000","asset":"0x4ae46a509f6b1d9056937ba4500cb143933d2dc8","payTo":"0x1111111111111111111111111111111111111111"},"payload":{"signature":"0x00","authorization":{"from":"x","to":"y","value":"1","validAfter":"0","validBefore":"1","nonce":"0x"}}}`)), "", "")
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":1,"scheme":"exact","network":"eip155:196","payload":[]}`)), "", "")

	f.Fuzz(func(t *testing.T, sig, xpay, fwdHost string) {
		req := httptest.NewRequest(http.MethodGet, "/paid", nil)
		if sig != "" && validHeaderValue(sig) {
			req.Header.Set(x402.HeaderPaymentSignature, sig)
		}
		if xpay != "" && validHeaderValue(xpay) {
			req.Header.Set(x402.HeaderXPayment, xpay)
		}
		if validHeaderValue(fwdHost) {
			req.Header.Set("X-Forwarded-Host", fwdHost)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusBadRequest, http.StatusPaymentRequired:
		case http.StatusOK:
			// Only a validly signed payment may be served (fuzz workers sign their own seeds).
			if _, perr := h.decodePayment(req, h.routes.match("GET", "/paid"), time.Now()); perr != nil {
				t.Fatalf("200 for a payment the local checks refuse (%v): sig=%q xpay=%q", perr, sig, xpay)
			}
		default:
			t.Fatalf("status %d for sig=%q xpay=%q host=%q: %s", rec.Code, sig, xpay, fwdHost, rec.Body.String())
		}
	})
}

// validHeaderValue reports whether net/http would send v as a header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
