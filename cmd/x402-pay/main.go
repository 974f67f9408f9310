// Command x402-pay pays for an x402-priced URL: it fetches the 402 challenge, signs an EIP-3009
// authorization for it, retries with PAYMENT-SIGNATURE, and prints the receipt (status,
// transaction, payer) to stderr and the body to stdout.
//
//	X402_PAY_KEY=<hex private key> x402-pay [-max 0.05] [-X POST -d '{"q":1}'] https://gw.example.com/weather
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
