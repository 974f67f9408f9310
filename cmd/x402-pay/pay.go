package main

import (
	"context"
	"crypto/ecdsa"
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
	limit   spendCap // the most one payment may cost
	wait    time.Duration
	timeout time.Duration
}

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// flagValues are the flags as given, before they are checked.
type flagValues struct {
	keyHex    string
	maxTokens string
	maxAtomic string
	decimals  uint
	method    string
	data      string
	headers   headerFlags
	wait      time.Duration
	timeout   time.Duration
}

// newFlagSet defines the command's flags, bound to v. docs/gateway.md ("Paying from the command
// line") documents each of them; TestDocumentedFlagsMatch keeps the two in step.
func newFlagSet(v *flagValues, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("x402-pay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: x402-pay [flags] URL")
		fs.PrintDefaults()
	}
	fs.StringVar(&v.keyHex, "key", "", "payer private key as hex (prefer the "+EnvKey+" environment variable)")
	fs.StringVar(&v.maxTokens, "max", "", "refuse to pay more than this amount in token units, e.g. 0.25 (default "+DefaultCap+")")
	fs.StringVar(&v.maxAtomic, "max-atomic", "", "refuse to pay more than this amount in atomic units (instead of -max)")
	fs.UintVar(&v.decimals, "decimals", DefaultDecimals, "decimals of the token, for -max and to show amounts in token units")
	fs.StringVar(&v.method, "X", http.MethodGet, "HTTP method")
	fs.StringVar(&v.data, "d", "", "request body")
	fs.Var(&v.headers, "H", "extra request header 'Name: value' (repeatable)")
	fs.DurationVar(&v.wait, "wait", 2*time.Minute, "how long to keep retrying a payment whose settlement is pending")
	fs.DurationVar(&v.timeout, "timeout", 60*time.Second, "timeout of each HTTP request")
	return fs
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var v flagValues
	fs := newFlagSet(&v, stderr)
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() != 1 {
		return options{}, errors.New("usage: x402-pay [flags] URL")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	limit, err := newCap(v.maxTokens, v.maxAtomic, set["max"], set["max-atomic"], v.decimals)
	if err != nil {
		return options{}, err
	}
	o := options{url: fs.Arg(0), method: v.method, data: v.data, headers: v.headers, limit: limit, wait: v.wait, timeout: v.timeout}
	keyHex := v.keyHex
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

// send makes the request, with the payment header name: value when name is not "".
func send(ctx context.Context, o options, name, value string) (reply, error) {
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
	if name != "" {
		req.Header.Set(name, value)
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
	first, err := send(ctx, o, "", "")
	if err != nil {
		return err
	}
	if first.status != http.StatusPaymentRequired {
		fmt.Fprintf(stderr, "status: %d (no payment asked)\n", first.status)
		_, _ = stdout.Write(first.body)
		return nil
	}
	c, err := challengeOf(first)
	if err != nil {
		return err
	}
	chosen, price, err := choose(c, o.limit)
	if err != nil {
		return err
	}
	signer := eip3009.NewSigner(o.key)
	name, header, err := sign(signer, c, chosen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "paying %s of %s on %s to %s from %s (x402 v%d, cap %s)\n",
		o.limit.units(price), chosen.req.Asset, chosen.network, chosen.req.PayTo, signer.Address().Hex(), c.version, o.limit)
	deadline := time.Now().Add(o.wait)
	for {
		r, err := send(ctx, o, name, header)
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
			if sr.Success {
				fmt.Fprintf(stderr, "amount: %s\n", o.limit.units(price))
			}
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

// sign signs one payment for the chosen offer and returns its header: PAYMENT-SIGNATURE for a
// v2 challenge, X-PAYMENT for a v1 one. The EIP-3009 authorization is the same in both; only
// the envelope differs (v1 names scheme and network instead of repeating the requirements).
func sign(signer *eip3009.Signer, c challenge, chosen offer) (name, value string, err error) {
	payload, err := signer.Sign(chosen.req, c.resource)
	if err != nil {
		return "", "", err
	}
	if c.version == x402.Version1 {
		value, err = x402.EncodeXPayment(x402.PaymentPayloadV1{
			X402Version: x402.Version1, Scheme: chosen.req.Scheme, Network: chosen.network, Payload: payload.Payload,
		})
		return x402.HeaderXPayment, value, err
	}
	value, err = x402.EncodePaymentSignature(payload)
	return x402.HeaderPaymentSignature, value, err
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
