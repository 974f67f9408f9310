package eip3009

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/x402"
)

var testNow = time.Unix(1_750_000_000, 0)

func testRequirements() x402.PaymentRequirements {
	return x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: "eip155:196", Amount: "10000", Asset: usdg, PayTo: merchant,
		MaxTimeoutSeconds: 300, Extra: map[string]any{"name": "Global Dollar", "version": "1"},
	}
}

func testSigner(t testing.TB) *Signer {
	t.Helper()
	s := NewSigner(devKey(t))
	s.Now = func() time.Time { return testNow }
	s.Rand = bytes.NewReader(bytes.Repeat([]byte{7}, 1<<16))
	return s
}

// setExact rewrites the exact payload of p.
func setExact(t *testing.T, p *x402.PaymentPayload, f func(*x402.ExactEVMPayload)) {
	t.Helper()
	e, err := p.ExactEVM()
	if err != nil {
		t.Fatal(err)
	}
	f(&e)
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	p.Payload = raw
}

func TestVerifyLocalAccepts(t *testing.T) {
	s := testSigner(t)
	req := testRequirements()
	p, err := s.Sign(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := VerifyLocal(p, req, testNow)
	if err != nil {
		t.Fatalf("VerifyLocal: %v", err)
	}
	if v.Payer != s.Address() || v.Authorization.Value.Int64() != 10000 || v.Domain.ChainID.Int64() != 196 {
		t.Fatalf("verified = %+v", v)
	}
	if sb := v.SignatureBytes(); sb[64] != 27 && sb[64] != 28 {
		t.Fatalf("SignatureBytes v = %d", sb[64])
	}
	// Checksummed vs lower-case payTo in the server's requirements names the same account.
	req.PayTo = strings.ToLower(req.PayTo)
	p.Accepted.PayTo = req.PayTo
	if _, err := VerifyLocal(p, req, testNow); err != nil {
		t.Fatalf("lower-case payTo: %v", err)
	}
}

func TestVerifyLocalReasons(t *testing.T) {
	other, err := crypto.HexToECDSA("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
	if err != nil {
		t.Fatal(err)
	}
	halfN := new(big.Int).Rsh(crypto.S256().Params().N, 1)
	tests := []struct {
		name   string
		build  func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload
		reason x402.Reason
	}{
		{"version", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			p.X402Version = 1
			return p
		}, x402.ReasonInvalidX402Version},
		{"scheme", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			p.Accepted.Scheme = "upto"
			return p
		}, x402.ReasonUnsupportedScheme},
		{"network", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			p.Accepted.Network = "eip155:1"
			return p
		}, x402.ReasonInvalidNetwork},
		{"accepted amount differs", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			p.Accepted.Amount = "1"
			return p
		}, x402.ReasonNoMatchingRequirement},
		{"server domain missing", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			req.Extra = nil
			return p
		}, x402.ReasonMissingEIP712Domain},
		{"missing signature", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			setExact(t, &p, func(e *x402.ExactEVMPayload) { e.Signature = "" })
			return p
		}, x402.ReasonMissingSignature},
		{"bad nonce", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			setExact(t, &p, func(e *x402.ExactEVMPayload) { e.Authorization.Nonce = "0x1234" })
			return p
		}, x402.ReasonInvalidPayload},
		{"bad from", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			setExact(t, &p, func(e *x402.ExactEVMPayload) { e.Authorization.From = "0xzz" })
			return p
		}, x402.ReasonInvalidPayload},
		{"value not canonical", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			setExact(t, &p, func(e *x402.ExactEVMPayload) { e.Authorization.Value = "010000" })
			return p
		}, x402.ReasonInvalidPayload},
		{"recipient", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			r := *req
			r.PayTo = "0x3333333333333333333333333333333333333333"
			p := mustSign(t, s, r)
			p.Accepted = *req
			return p
		}, x402.ReasonRecipientMismatch},
		{"value above price", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			r := *req
			r.Amount = "10001"
			p := mustSign(t, s, r)
			p.Accepted = *req
			return p
		}, x402.ReasonValueMismatch},
		{"value below price", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			r := *req
			r.Amount = "9999"
			p := mustSign(t, s, r)
			p.Accepted = *req
			return p
		}, x402.ReasonValueMismatch},
		{"not yet valid", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			a := mustAuthorize(t, s, *req)
			a.ValidAfter = big.NewInt(testNow.Unix() + 1)
			return mustSignWith(t, s, *req, a)
		}, x402.ReasonValidAfter},
		{"expired", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			a := mustAuthorize(t, s, *req)
			a.ValidBefore = big.NewInt(testNow.Unix() - 1)
			return mustSignWith(t, s, *req, a)
		}, x402.ReasonValidBefore},
		{"expires within buffer", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			a := mustAuthorize(t, s, *req)
			a.ValidBefore = big.NewInt(testNow.Add(DefaultValidBeforeBuffer).Unix() - 1)
			return mustSignWith(t, s, *req, a)
		}, x402.ReasonValidBefore},
		{"valid for 50 years", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			a := mustAuthorize(t, s, *req)
			a.ValidBefore = big.NewInt(testNow.AddDate(50, 0, 0).Unix())
			return mustSignWith(t, s, *req, a)
		}, x402.ReasonValidBefore},
		{"valid just past maxTimeoutSeconds and the skew", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			a := mustAuthorize(t, s, *req)
			a.ValidBefore = big.NewInt(testNow.Add(time.Duration(req.MaxTimeoutSeconds)*time.Second+ValiditySkew).Unix() + 1)
			return mustSignWith(t, s, *req, a)
		}, x402.ReasonValidBefore},
		{"validAfter not before validBefore", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			a := mustAuthorize(t, s, *req)
			a.ValidAfter = new(big.Int).Set(a.ValidBefore)
			return mustSignWith(t, s, *req, a)
		}, x402.ReasonValidAfter},
		{"signature 64 bytes", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			setExact(t, &p, func(e *x402.ExactEVMPayload) { e.Signature = e.Signature[:130] })
			return p
		}, x402.ReasonSignature},
		{"signature not hex", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			setExact(t, &p, func(e *x402.ExactEVMPayload) { e.Signature = "0x" + strings.Repeat("zz", 65) })
			return p
		}, x402.ReasonSignature},
		{"bad v", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			setExact(t, &p, func(e *x402.ExactEVMPayload) { e.Signature = e.Signature[:130] + "1d" })
			return p
		}, x402.ReasonSignature},
		{"high s", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			p := mustSign(t, s, *req)
			setExact(t, &p, func(e *x402.ExactEVMPayload) {
				// The malleable twin (r, n-s, v^1) recovers the same signer; it must still be refused.
				sig := hexutil.MustDecode(e.Signature)
				sv := new(big.Int).SetBytes(sig[32:64])
				if sv.Cmp(halfN) > 0 {
					t.Fatal("signer produced high-s")
				}
				new(big.Int).Sub(crypto.S256().Params().N, sv).FillBytes(sig[32:64])
				sig[64] ^= 1
				e.Signature = hexutil.Encode(sig)
			})
			return p
		}, x402.ReasonSignature},
		{"wrong signer", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			a := mustAuthorize(t, s, *req)
			o := NewSigner(other)
			return mustSignWith(t, o, *req, a) // from = s, signed by o
		}, x402.ReasonSignature},
		{"wrong domain version", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			r := *req
			r.Extra = map[string]any{"name": "Global Dollar", "version": "2"}
			p := mustSign(t, s, r)
			p.Accepted = *req
			return p
		}, x402.ReasonSignature},
		{"tampered value after signing", func(t *testing.T, s *Signer, req *x402.PaymentRequirements) x402.PaymentPayload {
			r := *req
			r.Amount = "1"
			p := mustSign(t, s, r)
			setExact(t, &p, func(e *x402.ExactEVMPayload) { e.Authorization.Value = "10000" })
			p.Accepted = *req
			return p
		}, x402.ReasonSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := testRequirements()
			p := tt.build(t, testSigner(t), &req)
			_, err := VerifyLocal(p, req, testNow)
			if got := x402.ReasonOf(err); got != tt.reason {
				t.Fatalf("reason = %q (err %v), want %q", got, err, tt.reason)
			}
		})
	}
}

func TestVerifierBuffer(t *testing.T) {
	s := testSigner(t)
	req := testRequirements()
	req.MaxTimeoutSeconds = 30
	p := mustSign(t, s, req)
	if _, err := (Verifier{ValidBeforeBuffer: 29 * time.Second}).Verify(p, req, testNow); err != nil {
		t.Fatalf("29s buffer: %v", err)
	}
	if _, err := (Verifier{ValidBeforeBuffer: 31 * time.Second}).Verify(p, req, testNow); x402.ReasonOf(err) != x402.ReasonValidBefore {
		t.Fatalf("31s buffer: %v", err)
	}
}

// TestValidityUpToMaxTimeoutAndSkewIsAccepted: the upper bound leaves room for a payer's clock
// running ahead by up to ValiditySkew.
func TestValidityUpToMaxTimeoutAndSkewIsAccepted(t *testing.T) {
	s := testSigner(t)
	req := testRequirements()
	a := mustAuthorize(t, s, req)
	a.ValidBefore = big.NewInt(testNow.Add(time.Duration(req.MaxTimeoutSeconds)*time.Second + ValiditySkew).Unix())
	if _, err := VerifyLocal(mustSignWith(t, s, req, a), req, testNow); err != nil {
		t.Fatalf("validBefore at the bound: %v", err)
	}
}

func TestSignerWindowAndNonce(t *testing.T) {
	s := NewSigner(devKey(t))
	s.Now = func() time.Time { return testNow }
	req := testRequirements()
	a1, err := s.Authorize(req)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := s.Authorize(req)
	if a1.Nonce == a2.Nonce {
		t.Fatal("two authorizations share a nonce")
	}
	if a1.ValidAfter.Int64() != testNow.Unix()-60 || a1.ValidBefore.Int64() != testNow.Unix()+300 {
		t.Fatalf("window = [%s, %s]", a1.ValidAfter, a1.ValidBefore)
	}
	if a1.To != common.HexToAddress(merchant) || a1.From != s.Address() {
		t.Fatalf("authorization = %+v", a1)
	}
	if strings.Contains(s.String(), devKeyHex) || strings.Contains(s.GoString(), devKeyHex) {
		t.Fatal("signer string exposes the key")
	}
	if _, err := s.Authorize(x402.PaymentRequirements{Amount: "x", PayTo: merchant}); err == nil {
		t.Fatal("bad amount accepted")
	}
}

func mustSign(t *testing.T, s *Signer, req x402.PaymentRequirements) x402.PaymentPayload {
	t.Helper()
	p, err := s.Sign(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustAuthorize(t *testing.T, s *Signer, req x402.PaymentRequirements) Authorization {
	t.Helper()
	a, err := s.Authorize(req)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustSignWith(t *testing.T, s *Signer, req x402.PaymentRequirements, a Authorization) x402.PaymentPayload {
	t.Helper()
	d, err := DomainFor(req)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.SignWith(req, nil, d, a)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
