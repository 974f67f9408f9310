package x402

import "testing"

// Each decoder must never panic, and whatever it accepts must survive re-encoding.

func FuzzDecodePaymentSignature(f *testing.F) {
	f.Add("")
	f.Add(b64(`{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:196","amount":"1","asset":"a","payTo":"p"},"payload":{}}`))
	f.Fuzz(func(t *testing.T, h string) {
		p, err := DecodePaymentSignature(h)
		if err != nil {
			return
		}
		again, err := EncodePaymentSignature(p)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodePaymentSignature(again); err != nil {
			t.Fatalf("decode of re-encoded payment: %v", err)
		}
		_, _ = p.ExactEVM()
	})
}

func FuzzDecodePaymentRequired(f *testing.F) {
	f.Add(b64(`{"x402Version":2,"accepts":[]}`))
	f.Fuzz(func(t *testing.T, h string) {
		pr, err := DecodePaymentRequired(h)
		if err != nil {
			return
		}
		again, err := EncodePaymentRequired(pr)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodePaymentRequired(again); err != nil {
			t.Fatalf("decode of re-encoded challenge: %v", err)
		}
	})
}

func FuzzDecodePaymentResponse(f *testing.F) {
	f.Add(b64(`{"success":true,"transaction":"0x1","network":"eip155:196"}`))
	f.Fuzz(func(t *testing.T, h string) {
		r, err := DecodePaymentResponse(h)
		if err != nil {
			return
		}
		again, err := EncodePaymentResponse(r)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodePaymentResponse(again); err != nil {
			t.Fatalf("decode of re-encoded response: %v", err)
		}
	})
}

func FuzzDecodeXPayment(f *testing.F) {
	f.Add(b64(`{"x402Version":1,"scheme":"exact","network":"xlayer","payload":{}}`))
	f.Fuzz(func(t *testing.T, h string) {
		p, err := DecodeXPayment(h)
		if err != nil {
			return
		}
		again, err := EncodeXPayment(p)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodeXPayment(again); err != nil {
			t.Fatalf("decode of re-encoded payment: %v", err)
		}
		_, _ = p.ExactEVM()
	})
}

func FuzzDecodeXPaymentResponse(f *testing.F) {
	f.Add(b64(`{"success":false,"errorReason":"x","transaction":"","network":"xlayer","payer":"0x"}`))
	f.Fuzz(func(t *testing.T, h string) {
		r, err := DecodeXPaymentResponse(h)
		if err != nil {
			return
		}
		again, err := EncodeXPaymentResponse(r)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodeXPaymentResponse(again); err != nil {
			t.Fatalf("decode of re-encoded response: %v", err)
		}
	})
}
