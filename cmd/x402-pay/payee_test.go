package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// payee is a small x402 server for tests: it answers 402 with a v1 or v2 challenge for its
// offers, checks a payment's envelope and EIP-3009 signature as a careful server would, and
// serves "paid" with a receipt. It records every payment header it received.
type payee struct {
	version int
	offers  []payeeOffer

	mu       sync.Mutex
	requests int
	payments []http.Header // payment headers of each paid attempt
	refused  []string      // why payments were refused
}

// payeeOffer is one way to pay; v1Network is the v1 spelling of req.Network ("" = the same).
type payeeOffer struct {
	req       x402.PaymentRequirements
	v1Network string
}

const (
	testAsset = "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8"
	testPayTo = "0x1111111111111111111111111111111111111111"
	testTx    = "0xab12000000000000000000000000000000000000000000000000000000000c0d"
)

func exactOffer(network, atomic string) payeeOffer {
	return payeeOffer{req: x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: network, Amount: atomic, Asset: testAsset, PayTo: testPayTo,
		MaxTimeoutSeconds: 60, Extra: map[string]any{"name": "Global Dollar", "version": "1"},
	}}
}

// newPayee starts p on 127.0.0.1.
func newPayee(t *testing.T, p *payee) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

func (p *payee) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests++
	p.mu.Unlock()
	sig, xpay := r.Header.Get(x402.HeaderPaymentSignature), r.Header.Get(x402.HeaderXPayment)
	if sig == "" && xpay == "" {
		p.challenge(w, r)
		return
	}
	p.mu.Lock()
	got := http.Header{}
	got.Set(x402.HeaderPaymentSignature, sig)
	got.Set(x402.HeaderXPayment, xpay)
	p.payments = append(p.payments, got)
	p.mu.Unlock()
	v, err := p.verify(sig, xpay)
	if err != nil {
		p.mu.Lock()
		p.refused = append(p.refused, err.Error())
		p.mu.Unlock()
		p.challenge(w, r)
		return
	}
	if p.version == x402.Version1 {
		enc, _ := x402.EncodeXPaymentResponse(x402.SettleResponseV1{Success: true, Payer: v.PayerHex, Transaction: testTx, Network: v.network})
		w.Header().Set(x402.HeaderXPaymentResponse, enc)
	} else {
		enc, _ := x402.EncodePaymentResponse(x402.SettleResponse{Success: true, Payer: v.PayerHex, Transaction: testTx, Network: v.network})
		w.Header().Set(x402.HeaderPaymentResponse, enc)
	}
	fmt.Fprint(w, "paid by "+v.PayerHex)
}

type verified struct {
	eip3009.Verified
	network string // as the payment named it
}

func (p *payee) verify(sig, xpay string) (verified, error) {
	if p.version == x402.Version1 {
		if sig != "" {
			return verified{}, fmt.Errorf("a v1 server got %s", x402.HeaderPaymentSignature)
		}
		pl, err := x402.DecodeXPayment(xpay)
		if err != nil {
			return verified{}, err
		}
		for _, o := range p.offers {
			if pl.Scheme == o.req.Scheme && pl.Network == o.v1Name() {
				v, err := eip3009.VerifyLocal(pl.ToV2(o.req, nil), o.req, time.Now())
				return verified{v, pl.Network}, err
			}
		}
		return verified{}, fmt.Errorf("no offer for %s on %s", pl.Scheme, pl.Network)
	}
	if xpay != "" {
		return verified{}, fmt.Errorf("a v2 server got %s", x402.HeaderXPayment)
	}
	pl, err := x402.DecodePaymentSignature(sig)
	if err != nil {
		return verified{}, err
	}
	var offered []x402.PaymentRequirements
	for _, o := range p.offers {
		offered = append(offered, o.req)
	}
	req, err := x402.Match(pl.Accepted, offered)
	if err != nil {
		return verified{}, err
	}
	v, err := eip3009.VerifyLocal(pl, req, time.Now())
	return verified{v, req.Network}, err
}

func (o payeeOffer) v1Name() string {
	if o.v1Network != "" {
		return o.v1Network
	}
	return o.req.Network
}

func (p *payee) challenge(w http.ResponseWriter, r *http.Request) {
	url := "http://" + r.Host + r.URL.Path
	w.Header().Set("Content-Type", "application/json")
	if p.version == x402.Version1 {
		// v1: the challenge is the JSON body only.
		body := x402.PaymentRequirementsResponseV1{X402Version: x402.Version1, Error: "payment required"}
		for _, o := range p.offers {
			v1 := o.req.ToV1(x402.ResourceInfo{URL: url, Description: "a test"})
			v1.Network = o.v1Name()
			body.Accepts = append(body.Accepts, v1)
		}
		w.WriteHeader(http.StatusPaymentRequired)
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	pr := x402.PaymentRequired{X402Version: x402.Version2, Resource: &x402.ResourceInfo{URL: url}}
	for _, o := range p.offers {
		pr.Accepts = append(pr.Accepts, o.req)
	}
	enc, _ := x402.EncodePaymentRequired(pr)
	w.Header().Set(x402.HeaderPaymentRequired, enc)
	w.WriteHeader(http.StatusPaymentRequired)
	_ = json.NewEncoder(w).Encode(pr)
}

// paid returns the payment headers received and the reasons of refusals.
func (p *payee) paid() ([]http.Header, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]http.Header(nil), p.payments...), append([]string(nil), p.refused...)
}

func (p *payee) requestCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// runPay runs the command with a fresh key given through the environment.
func runPay(t *testing.T, args ...string) (code int, stdout, stderr, payer string) {
	t.Helper()
	key, _ := crypto.GenerateKey()
	keyHex := hex.EncodeToString(crypto.FromECDSA(key))
	var out, errOut strings.Builder
	code = run(context.Background(), args, func(k string) string {
		if k == EnvKey {
			return keyHex
		}
		return ""
	}, &out, &errOut)
	if strings.Contains(out.String()+errOut.String(), keyHex) {
		t.Error("the key was printed")
	}
	return code, out.String(), errOut.String(), crypto.PubkeyToAddress(key.PublicKey).Hex()
}
