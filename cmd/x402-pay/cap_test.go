package main

import (
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/x402"
)

func TestDefaultCapIsPointOneTokenUnits(t *testing.T) {
	// At the cap: paid.
	p := &payee{version: x402.Version2, offers: []payeeOffer{exactOffer("eip155:196", "100000")}}
	srv := newPayee(t, p)
	code, out, errOut, payer := runPay(t, srv.URL+"/report")
	if code != 0 || out != "paid by "+payer {
		t.Fatalf("exit %d out %q\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"paying 0.1 (100000 atomic units) of " + testAsset,
		"cap 0.1 (100000 atomic units; the default, at 6 decimals)",
		"amount: 0.1 (100000 atomic units)\n",
		"transaction: " + testTx + "\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("output lacks %q:\n%s", want, errOut)
		}
	}

	// One atomic unit above: refused before anything is signed or sent.
	p = &payee{version: x402.Version2, offers: []payeeOffer{exactOffer("eip155:196", "100001")}}
	srv = newPayee(t, p)
	code, out, errOut, _ = runPay(t, srv.URL+"/report")
	want := "the price 0.100001 (100001 atomic units) is above the spending cap 0.1 (100000 atomic units; the default, at 6 decimals); raise the cap with -max or -max-atomic"
	if code != 1 || out != "" || !strings.Contains(errOut, want) {
		t.Errorf("exit %d out %q err %q", code, out, errOut)
	}
	if got, _ := p.paid(); len(got) != 0 {
		t.Errorf("a payment was sent above the cap: %v", got)
	}
}

func TestMaxRaisesOrLowersTheCapInTokenUnits(t *testing.T) {
	p := &payee{version: x402.Version2, offers: []payeeOffer{exactOffer("eip155:196", "250000")}}
	srv := newPayee(t, p)

	code, _, errOut, _ := runPay(t, "-max", "0.249999", srv.URL+"/r")
	if code != 1 || !strings.Contains(errOut, "the price 0.25 (250000 atomic units) is above the spending cap 0.249999 (249999 atomic units; -max, at 6 decimals)") {
		t.Errorf("-max 0.249999: exit %d\n%s", code, errOut)
	}
	if got, _ := p.paid(); len(got) != 0 {
		t.Fatalf("paid above -max: %v", got)
	}

	code, out, errOut, payer := runPay(t, "-max", "0.25", srv.URL+"/r")
	if code != 0 || out != "paid by "+payer || !strings.Contains(errOut, "amount: 0.25 (250000 atomic units)") {
		t.Errorf("-max 0.25: exit %d out %q\n%s", code, out, errOut)
	}

	// -decimals changes what a token unit is: 0.00000000000025 at 18 decimals is 250000.
	code, _, errOut, _ = runPay(t, "-decimals", "18", "-max", "0.00000000000025", srv.URL+"/r")
	if code != 0 || !strings.Contains(errOut, "paying 0.00000000000025 (250000 atomic units)") {
		t.Errorf("-decimals 18: exit %d\n%s", code, errOut)
	}
	if got, refused := p.paid(); len(got) != 2 || len(refused) != 0 {
		t.Errorf("payments %d, refused %v", len(got), refused)
	}
}

func TestMaxAtomicSetsTheCapInAtomicUnits(t *testing.T) {
	p := &payee{version: x402.Version2, offers: []payeeOffer{exactOffer("eip155:196", "50000000")}}
	srv := newPayee(t, p)
	code, out, errOut, payer := runPay(t, "-max-atomic", "50000000", srv.URL+"/r")
	if code != 0 || out != "paid by "+payer || !strings.Contains(errOut, "paying 50 (50000000 atomic units)") ||
		!strings.Contains(errOut, "cap 50 (50000000 atomic units; -max-atomic, at 6 decimals)") {
		t.Errorf("exit %d out %q\n%s", code, out, errOut)
	}
}

func TestPicksTheFirstOfferWithinTheCap(t *testing.T) {
	dear := exactOffer("eip155:196", "5000000")
	cheap := exactOffer("eip155:196", "20000")
	cheap.req.Asset = "0x2222222222222222222222222222222222222222"
	p := &payee{version: x402.Version2, offers: []payeeOffer{dear, cheap}}
	srv := newPayee(t, p)
	code, _, errOut, _ := runPay(t, srv.URL+"/r")
	if code != 0 || !strings.Contains(errOut, "paying 0.02 (20000 atomic units) of "+cheap.req.Asset) {
		t.Errorf("exit %d\n%s", code, errOut)
	}
}

func TestBadCapFlagsAreRefusedBeforeAnyRequest(t *testing.T) {
	p := &payee{version: x402.Version2, offers: []payeeOffer{exactOffer("eip155:196", "1")}}
	srv := newPayee(t, p)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-max", "0.1", "-max-atomic", "100000"}, "set -max (token units) or -max-atomic (atomic units), not both"},
		{[]string{"-max", "0.1234567"}, `-max: decimal amount "0.1234567" has 7 fractional digits, the token has 6 decimals`},
		{[]string{"-decimals", "2", "-max", "0.001"}, "the token has 2 decimals"},
		{[]string{"-max", "1e-3"}, "-max: decimal amount"},
		{[]string{"-max", "-1"}, "-max: decimal amount"},
		{[]string{"-max", ""}, "-max: decimal amount"},
		{[]string{"-max-atomic", "0.5"}, `-max-atomic: amount "0.5" is not a non-negative integer`},
		{[]string{"-max-atomic", ""}, "-max-atomic: amount is empty"},
		{[]string{"-decimals", "78"}, "-decimals 78 is more than 77"},
	} {
		code, out, errOut, _ := runPay(t, append(tc.args, srv.URL+"/r")...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d out %q err %q, want exit 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if n := p.requestCount(); n != 0 {
		t.Errorf("%d requests sent with bad flags", n)
	}
}
