// Command x402-pay pays for an x402-priced URL: it fetches the 402 challenge, signs an EIP-3009
// authorization for it, retries with PAYMENT-SIGNATURE (X-PAYMENT for an x402 v1 challenge), and
// prints the receipt (status, transaction, payer, amount) to stderr and the body to stdout.
//
//	X402_PAY_KEY=<hex private key> x402-pay [-max 0.25] [-X POST -d '{"q":1}'] https://gw.example.com/weather
//
// It refuses a price above its spending cap: 0.1 token units (DefaultCap) unless -max (token
// units, at -decimals, default 6) or -max-atomic raises or lowers it.
//
// A payment whose settlement is pending (402 settlement_pending) is retried unchanged after
// Retry-After until -wait passes; it is never re-signed, so it cannot be paid twice.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
