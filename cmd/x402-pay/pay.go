package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// EnvKey names the variable that may hold the payer's private key instead of -key (which shows
// up in the process list).
const EnvKey = "X402_PAY_KEY"

type options struct {
	url     string
	key     *ecdsa.PrivateKey
	method  string
	data    string
	headers []string
	maxAtom string // refuse to pay more than this many atomic units; "" means no limit
	wait    time.Duration
	timeout time.Duration
}

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("x402-pay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var keyHex, maxAtomic string
	var hs headerFlags
	fs.StringVar(&keyHex, "key", "", "payer private key as hex (prefer the "+EnvKey+" environment variable)")
	fs.StringVar(&o.method, "X", http.MethodGet, "HTTP method")
	fs.StringVar(&o.data, "d", "", "request body")
	fs.Var(&hs, "H", "extra request header 'Name: value' (repeatable)")
	fs.StringVar(&maxAtomic, "max-atomic", "", "refuse to pay more than this amount in atomic units")
	fs.DurationVar(&o.wait, "wait", 2*time.Minute, "how long to keep retrying a payment whose settlement is pending")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "timeout of each HTTP request")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 1 {
		return o, errors.New("usage: x402-pay [flags] URL")
	}
	o.url, o.headers, o.maxAtom = fs.Arg(0), hs, maxAtomic
	if keyHex == "" {
		keyHex = getenv(EnvKey)
	}
	if keyHex == "" {
		return o, fmt.Errorf("no key: set %s or pass -key", EnvKey)
	}
	key, err := crypto.HexToECDSA(strings.TrimPrefix(strings.TrimSpace(keyHex), "0x"))
	if err != nil {
		return o, errors.New("the key is not a hex secp256k1 private key") // never echo it
	}
	o.key = key
	return o, nil
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "x402-pay:", err)
		return 2
	}
	if err := pay(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "x402-pay:", err)
		return 1
	}
	return 0
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func send(ctx context.Context, o options, payment string) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var body io.Reader
	if o.data != "" {
		body = strings.NewReader(o.data)
	}
	req, err := http.NewRequestWithContext(ctx, o.method, o.url, body)
	if err != nil {
		return reply{}, err
	}
	for _, h := range o.headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return reply{}, fmt.Errorf("header %q is not 'Name: value'", h)
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if payment != "" {
		req.Header.Set(x402.HeaderPaymentSignature, payment)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func pay(ctx context.Context, o options, stdout, stderr io.Writer) error {
	first, err := send(ctx, o, "")
	if err != nil {
		return err
	}
	if first.status != http.StatusPaymentRequired {
		fmt.Fprintf(stderr, "status: %d (no payment asked)\n", first.status)
		_, _ = stdout.Write(first.body)
		return nil
	}
	pr, err := challengeOf(first)
	if err != nil {
		return err
	}
	req, err := choose(pr, o.maxAtom)
	if err != nil {
		return err
	}
	signer := eip3009.NewSigner(o.key)
	payload, err := signer.Sign(req, pr.Resource)
	if err != nil {
		return err
	}
	header, err := x402.EncodePaymentSignature(payload)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "paying %s atomic units of %s on %s to %s from %s\n", req.Amount, req.Asset, req.Network, req.PayTo, signer.Address().Hex())
	deadline := time.Now().Add(o.wait)
	for {
		r, err := send(ctx, o, header)
		if err != nil {
			// The payment may have been taken: retrying the same signed payment is safe.
			if time.Now().Before(deadline) && ctx.Err() == nil {
				fmt.Fprintf(stderr, "request failed (%v); retrying the same payment\n", err)
				if sleep(ctx, 2*time.Second) {
					continue
				}
			}
			return err
		}
		sr, hasReceipt := receiptOf(r.header)
		if r.status == http.StatusPaymentRequired && hasReceipt && sr.ErrorReason == string(x402.ReasonSettlementPending) && time.Now().Before(deadline) {
			wait := retryAfter(r.header)
			fmt.Fprintf(stderr, "settlement pending (tx %q); retrying the same payment in %s\n", sr.Transaction, wait)
			if !sleep(ctx, min(wait, time.Until(deadline))) {
				return ctx.Err()
			}
			continue
		}
		fmt.Fprintf(stderr, "status: %d\n", r.status)
		if hasReceipt {
			fmt.Fprintf(stderr, "success: %t\ntransaction: %s\nnetwork: %s\npayer: %s\n", sr.Success, sr.Transaction, sr.Network, sr.Payer)
			if sr.ErrorReason != "" {
				fmt.Fprintf(stderr, "reason: %s\n", sr.ErrorReason)
			}
		}
		_, _ = stdout.Write(r.body)
		if r.status >= 300 {
			return fmt.Errorf("not served: HTTP %d", r.status)
		}
		return nil
	}
}

func challengeOf(r reply) (x402.PaymentRequired, error) {
	if h := r.header.Get(x402.HeaderPaymentRequired); h != "" {
		return x402.DecodePaymentRequired(h)
	}
	var pr x402.PaymentRequired
	if err := json.Unmarshal(bytes.TrimSpace(r.body), &pr); err != nil || pr.X402Version != x402.Version2 {
		return pr, errors.New("the 402 answer has no x402 v2 challenge")
	}
	return pr, nil
}

// choose picks the first exact EVM requirement within the spending limit.
func choose(pr x402.PaymentRequired, maxAtomic string) (x402.PaymentRequirements, error) {
	for _, a := range pr.Accepts {
		if a.Scheme != x402.SchemeExact || !strings.HasPrefix(a.Network, "eip155:") {
			continue
		}
		if maxAtomic != "" && !notAbove(a.Amount, maxAtomic) {
			return a, fmt.Errorf("the price %s atomic units is above -max-atomic %s", a.Amount, maxAtomic)
		}
		return a, nil
	}
	return x402.PaymentRequirements{}, errors.New("no exact EVM payment option offered")
}

func notAbove(a, limit string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(limit, 10, 64)
	return err1 == nil && err2 == nil && x <= y
}

func receiptOf(h http.Header) (x402.SettleResponse, bool) {
	if v := h.Get(x402.HeaderPaymentResponse); v != "" {
		sr, err := x402.DecodePaymentResponse(v)
		return sr, err == nil
	}
	return x402.SettleResponse{}, false
}

func retryAfter(h http.Header) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 5 * time.Second
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
