// Command x402ref serves one priced route behind the reference x402 Go middleware
// (coinbase/x402, go/http/nethttp), for side-by-side load tests with the gateway's benchmark.
//
// GET /paid costs 0.01 of a 6-decimal EIP-3009 token on eip155:196 (the gateway benchmark's
// config), paid to 0x1111…1111; behind the middleware a handler writes 256 bytes of JSON, as the
// benchmark's upstream does. The facilitator is a fake that answers verify valid and settle
// success without checking anything: in process by default (an x402.FacilitatorClient, as the
// reference's own middleware tests wire it), or with -facilitator http over loopback HTTP
// through the reference's HTTPFacilitatorClient. It prints nothing but errors.
//
// With -database URL, every successful settle is recorded the way InsForge's x402 guide does it:
// one INSERT into its x402_payments table (created at start with the guide's DDL, without the
// realtime trigger, which needs InsForge's realtime schema), a durable commit per payment, the
// settle's answer returned only after it. That is the (d-ref+insert) case of the load test.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	x402 "github.com/x402-foundation/x402/go"
	x402http "github.com/x402-foundation/x402/go/http"
	"github.com/x402-foundation/x402/go/http/nethttp"
	evm "github.com/x402-foundation/x402/go/mechanisms/evm/exact/server"
)

const (
	network = "eip155:196"
	asset   = "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8"
	payTo   = "0x1111111111111111111111111111111111111111"
	payer   = "0x2222222222222222222222222222222222222222"
	txHash  = "0x" + "ab" + "00000000000000000000000000000000000000000000000000000000000000"
)

// fakeFacilitator answers every verify valid and every settle successful, checking nothing.
type fakeFacilitator struct{}

func (fakeFacilitator) Verify(context.Context, []byte, []byte) (*x402.VerifyResponse, error) {
	return &x402.VerifyResponse{IsValid: true, Payer: payer}, nil
}

func (fakeFacilitator) Settle(context.Context, []byte, []byte) (*x402.SettleResponse, error) {
	return &x402.SettleResponse{Success: true, Transaction: txHash, Network: network, Payer: payer, Amount: "10000"}, nil
}

func (fakeFacilitator) GetSupported(context.Context) (x402.SupportedResponse, error) {
	return x402.SupportedResponse{
		Kinds:      []x402.SupportedKind{{X402Version: 2, Scheme: "exact", Network: network}},
		Extensions: []string{},
		Signers:    map[string][]string{},
	}, nil
}

// guideDDL is InsForge's x402 guide's table, indexes and RLS, without the realtime channel and
// trigger (InsForge-only) and without the public_read policy (reads are not measured).
const guideDDL = `create table if not exists x402_payments (
  id uuid default gen_random_uuid() primary key,
  payer_address text not null,
  endpoint text not null,
  amount text not null,
  tx_hash text not null unique,
  chain text default 'xlayer',
  status text default 'settled',
  response_summary text,
  created_at timestamptz default now());
create index if not exists idx_x402_payments_payer on x402_payments (payer_address);
create index if not exists idx_x402_payments_created on x402_payments (created_at desc);
alter table x402_payments enable row level security;`

// recordingFacilitator records each successful settle with the guide's INSERT before answering.
type recordingFacilitator struct {
	x402.FacilitatorClient
	pool *pgxpool.Pool
}

func (f recordingFacilitator) Settle(ctx context.Context, payload, requirements []byte) (*x402.SettleResponse, error) {
	res, err := f.FacilitatorClient.Settle(ctx, payload, requirements)
	if err != nil || !res.Success {
		return res, err
	}
	// The fake's transaction hash is constant; the guide's tx_hash is unique, so each payment
	// gets the hash of its own signed payload (which holds its nonce).
	sum := sha256.Sum256(payload)
	tx := "0x" + hex.EncodeToString(sum[:])
	if _, err := f.pool.Exec(ctx, `insert into x402_payments (payer_address, endpoint, amount, tx_hash, chain, status, response_summary)
values ($1, $2, $3, $4, 'xlayer', 'settled', $5)`, res.Payer, "/paid", res.Amount, tx, "200 OK"); err != nil {
		return nil, fmt.Errorf("recording the payment: %w", err)
	}
	res.Transaction = tx
	return res, nil
}

// serveFakeFacilitator serves the same answers over HTTP on a loopback port and returns its URL.
func serveFakeFacilitator() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	var f fakeFacilitator
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /supported", func(w http.ResponseWriter, r *http.Request) {
		s, _ := f.GetSupported(r.Context())
		reply(w, s)
	})
	mux.HandleFunc("POST /verify", func(w http.ResponseWriter, r *http.Request) {
		v, _ := f.Verify(r.Context(), nil, nil)
		reply(w, v)
	})
	mux.HandleFunc("POST /settle", func(w http.ResponseWriter, r *http.Request) {
		s, _ := f.Settle(r.Context(), nil, nil)
		reply(w, s)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8402", "address to serve on")
	facKind := flag.String("facilitator", "inproc", "fake facilitator: inproc (an x402.FacilitatorClient) or http (loopback HTTP)")
	database := flag.String("database", "", "PostgreSQL URL: record every settled payment with the x402 guide's INSERT")
	flag.Parse()
	if err := run(*listen, *facKind, *database); err != nil {
		fmt.Fprintln(os.Stderr, "x402ref:", err)
		os.Exit(1)
	}
}

func run(listen, facKind, database string) error {
	var fac x402.FacilitatorClient
	switch facKind {
	case "inproc":
		fac = fakeFacilitator{}
	case "http":
		u, err := serveFakeFacilitator()
		if err != nil {
			return fmt.Errorf("fake facilitator: %w", err)
		}
		fac = x402http.NewHTTPFacilitatorClient(&x402http.FacilitatorConfig{URL: u})
	default:
		return fmt.Errorf("-facilitator %q: want inproc or http", facKind)
	}
	if database != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pool, err := pgxpool.New(ctx, database)
		if err != nil {
			return fmt.Errorf("-database: %w", err)
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, guideDDL); err != nil {
			return fmt.Errorf("creating the guide's table: %w", err)
		}
		fac = recordingFacilitator{FacilitatorClient: fac, pool: pool}
	}

	// The price is money ("$0.01"), turned into the token's atomic amount by a money parser: the
	// reference's evm scheme knows no default token on eip155:196, and this is how it takes a
	// custom one. name/version are the token's EIP-712 domain, which the payer signs over.
	scheme := evm.NewExactEvmScheme().RegisterMoneyParser(func(amount float64, n x402.Network) (*x402.AssetAmount, error) {
		if n != network {
			return nil, nil
		}
		return &x402.AssetAmount{
			Asset:  asset,
			Amount: fmt.Sprintf("%.0f", amount*1e6),
			Extra:  map[string]any{"name": "Global Dollar", "version": "1"},
		}, nil
	})
	routes := x402http.RoutesConfig{
		"GET /paid": {
			Accepts: x402http.PaymentOptions{{
				Scheme: "exact", Network: network, PayTo: payTo, Price: "$0.01", MaxTimeoutSeconds: 300,
			}},
			Description: "load test route",
			MimeType:    "application/json",
		},
	}
	server := x402http.Newx402HTTPResourceServer(routes, x402.WithFacilitatorClient(fac))
	server.Register(network, scheme)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Initialized here rather than by the middleware, which only prints a warning on failure.
	if err := server.Initialize(ctx); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	mw := nethttp.PaymentMiddlewareFromHTTPServer(server, nethttp.WithSyncFacilitatorOnStart(false))

	body := []byte(strings.Repeat("x", 256))
	upstream := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mw(upstream), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	return srv.Serve(ln)
}
