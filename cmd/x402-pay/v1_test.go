package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/insforge/integrations-operator/internal/x402"
)

func TestPaysAV1ChallengeWithXPayment(t *testing.T) {
	// A v1 server names the network the v1 way; the signature's domain must use its chain id.
	o := exactOffer("eip155:84532", "30000")
	o.v1Network = "base-sepolia"
	p := &payee{version: x402.Version1, offers: []payeeOffer{o}}
	srv := newPayee(t, p)
	code, out, errOut, payer := runPay(t, srv.URL+"/weather")
	if code != 0 || out != "paid by "+payer {
		t.Fatalf("exit %d out %q\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"paying 0.03 (30000 atomic units) of " + testAsset + " on base-sepolia to " + testPayTo + " from " + payer + " (x402 v1,",
		"status: 200\nsuccess: true\ntransaction: " + testTx + "\nnetwork: base-sepolia\npayer: " + payer + "\namount: 0.03 (30000 atomic units)\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("output lacks %q:\n%s", want, errOut)
		}
	}
	got, refused := p.paid()
	if len(got) != 1 || len(refused) != 0 {
		t.Fatalf("payments %v refused %v", got, refused)
	}
	pl, err := x402.DecodeXPayment(got[0].Get(x402.HeaderXPayment))
	if err != nil || pl.Network != "base-sepolia" || pl.Scheme != x402.SchemeExact {
		t.Errorf("X-PAYMENT = %+v, %v", pl, err)
	}
}

func TestRefusesAV1ChallengeAboveTheCap(t *testing.T) {
	p := &payee{version: x402.Version1, offers: []payeeOffer{exactOffer("eip155:196", "200000")}}
	srv := newPayee(t, p)
	code, out, errOut, _ := runPay(t, srv.URL+"/weather")
	if code != 1 || out != "" || !strings.Contains(errOut, "the price 0.2 (200000 atomic units) is above the spending cap 0.1 (100000 atomic units; the default") {
		t.Errorf("exit %d out %q err %q", code, out, errOut)
	}
	if got, _ := p.paid(); len(got) != 0 {
		t.Errorf("paid above the cap: %v", got)
	}
	code, _, errOut, _ = runPay(t, "-max", "0.2", srv.URL+"/weather")
	if code != 0 {
		t.Errorf("-max 0.2: exit %d\n%s", code, errOut)
	}
}

func TestV1ChallengeWithoutAnEVMNetworkIsRefused(t *testing.T) {
	o := exactOffer("eip155:196", "1000")
	o.v1Network = "solana-devnet"
	p := &payee{version: x402.Version1, offers: []payeeOffer{o}}
	srv := newPayee(t, p)
	code, _, errOut, _ := runPay(t, srv.URL+"/weather")
	if code != 1 || !strings.Contains(errOut, "no exact EVM payment option offered (offered: exact on solana-devnet)") {
		t.Errorf("exit %d err %q", code, errOut)
	}
}

// TestPaysTheGatewayAsAV1Client has the real gateway settle a v1 payment: a proxy in front of it
// turns its challenges into v1 bodies (no PAYMENT-REQUIRED header), as a v1 server sends them.
func TestPaysTheGatewayAsAV1Client(t *testing.T) {
	gw := newGateway(t)
	var sawXPayment atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(x402.HeaderPaymentSignature) != "" {
			http.Error(w, "this proxy speaks v1 only", http.StatusBadRequest)
			return
		}
		if r.Header.Get(x402.HeaderXPayment) != "" {
			sawXPayment.Store(true)
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, gw.URL+r.URL.Path, r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		if h := resp.Header.Get(x402.HeaderPaymentRequired); h != "" {
			pr, err := x402.DecodePaymentRequired(h)
			if err != nil {
				t.Error(err)
			}
			v1 := x402.PaymentRequirementsResponseV1{X402Version: x402.Version1, Error: pr.Error}
			for _, a := range pr.Accepts {
				v1.Accepts = append(v1.Accepts, a.ToV1(*pr.Resource))
			}
			w.WriteHeader(resp.StatusCode)
			_ = json.NewEncoder(w).Encode(v1)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body.Bytes())
	}))
	t.Cleanup(proxy.Close)

	code, out, errOut, payer := runPay(t, proxy.URL+"/report")
	if code != 0 || out != "report for "+payer {
		t.Fatalf("exit %d out %q\n%s", code, out, errOut)
	}
	for _, want := range []string{"(x402 v1,", "status: 200", "success: true", "transaction: 0x", "payer: " + payer, "amount: 0.05 (50000 atomic units)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("receipt lacks %q:\n%s", want, errOut)
		}
	}
	if !sawXPayment.Load() {
		t.Error("the payment did not travel in X-PAYMENT")
	}
}
