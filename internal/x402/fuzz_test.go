package x402

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

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

// The fast paths must agree with encoding/json on every input they accept.

func FuzzScanExactEVM(f *testing.F) {
	f.Add(`{"signature":"0x01","authorization":{"from":"a","to":"b","value":"1","validAfter":"0","validBefore":"9","nonce":"0x01"}}`)
	f.Add(` { "authorization" : { "nonce" : "n" } , "signature" : "s" , "authorization" : { "from" : "f" } } `)
	f.Add(`{"signature":"a","SIGNATURE":"b"}`)
	f.Add(`{"signature":"\u0061","authorization":null}`)
	f.Add(`{"signature":"é"}`)
	f.Add(`{"signature":"s"} x`)
	f.Fuzz(func(t *testing.T, raw string) {
		var fast ExactEVMPayload
		if !scanExactEVM([]byte(raw), &fast) {
			return
		}
		var slow ExactEVMPayload
		if err := json.Unmarshal([]byte(raw), &slow); err != nil {
			t.Fatalf("scanExactEVM accepted %q, json.Unmarshal did not: %v", raw, err)
		}
		if fast != slow {
			t.Fatalf("scanExactEVM(%q) = %+v, json.Unmarshal gives %+v", raw, fast, slow)
		}
	})
}

func FuzzScanObjectKeys(f *testing.F) {
	f.Add(`{"x402Version":2,"accepted":{"a":[1,{"b":"}"}]},"payload":null}`)
	f.Add(` {"a" : "x\"y" , "b":true,"a":null,"c":-1.5e3 ,"d":[]} `)
	f.Add(`{"x402\u0056ersion":2}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, raw string) {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(raw), &m) != nil {
			return // decodeHeaderJSON scans only what json.Unmarshal accepted
		}
		keys, ok := scanObjectKeys([]byte(raw), nil)
		if !ok {
			return
		}
		for _, k := range keys {
			if _, in := m[string(k.name)]; !in && utf8.Valid(k.name) { // json replaces invalid UTF-8
				t.Fatalf("scan of %q found key %q that json.Unmarshal did not", raw, k.name)
			}
		}
		for k, v := range m {
			if strings.ContainsRune(k, utf8.RuneError) {
				continue // maybe replaced invalid UTF-8, which no key name of ours contains
			}
			if keys.has(k) != (string(v) != "null") {
				t.Fatalf("scan of %q: has(%q) = %v, json.Unmarshal gives %s", raw, k, keys.has(k), v)
			}
		}
	})
}
