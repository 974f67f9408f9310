package x402

import (
	"encoding/json"
	"fmt"
)

// decodeExactEVM decodes an exact EVM payload and checks that every field is present.
func decodeExactEVM(raw json.RawMessage) (ExactEVMPayload, error) {
	var p ExactEVMPayload
	if len(raw) == 0 {
		return p, Invalid(ReasonInvalidPayload, "payload is missing")
	}
	if !scanExactEVM(raw, &p) {
		p = ExactEVMPayload{}
		if err := json.Unmarshal(raw, &p); err != nil {
			return ExactEVMPayload{}, Invalid(ReasonInvalidPayload, "payload is not an exact EVM payload: %v", err)
		}
	}
	if p.Signature == "" {
		return ExactEVMPayload{}, Invalid(ReasonMissingSignature, "payload.signature is missing")
	}
	a := p.Authorization
	for _, f := range []struct{ name, v string }{
		{"from", a.From}, {"to", a.To}, {"value", a.Value},
		{"validAfter", a.ValidAfter}, {"validBefore", a.ValidBefore}, {"nonce", a.Nonce},
	} {
		if f.v == "" {
			return ExactEVMPayload{}, Invalid(ReasonInvalidPayload, "payload.authorization.%s is missing", f.name)
		}
	}
	return p, nil
}

// String gives a short description of an authorization for logs (no signature).
func (a Authorization) String() string {
	return fmt.Sprintf("%s->%s value=%s nonce=%s", a.From, a.To, a.Value, a.Nonce)
}

// scanExactEVM decodes the form clients send, {"signature":"0x…","authorization":{"from":…}}
// with exactly these keys and strings of plain printable ASCII, without reflection and with one
// allocation for all the strings. It returns false for anything else (other keys or types,
// escapes, non-ASCII, malformed JSON), which json.Unmarshal then decodes or rejects; what it
// accepts, json.Unmarshal would decode to the same value (FuzzScanExactEVM checks).
func scanExactEVM(raw []byte, p *ExactEVMPayload) bool {
	s := plainJSON{s: string(raw)}
	a := &p.Authorization
	ok := s.object(func(key string) bool {
		switch key {
		case "signature":
			return s.str(&p.Signature)
		case "authorization":
			return s.object(func(key string) bool {
				switch key {
				case "from":
					return s.str(&a.From)
				case "to":
					return s.str(&a.To)
				case "value":
					return s.str(&a.Value)
				case "validAfter":
					return s.str(&a.ValidAfter)
				case "validBefore":
					return s.str(&a.ValidBefore)
				case "nonce":
					return s.str(&a.Nonce)
				}
				return false
			})
		}
		return false
	})
	return ok && s.end()
}

// plainJSON reads the subset of JSON that scanExactEVM accepts.
type plainJSON struct {
	s string
	i int
}

func (j *plainJSON) space() {
	for j.i < len(j.s) && (j.s[j.i] == ' ' || j.s[j.i] == '\t' || j.s[j.i] == '\n' || j.s[j.i] == '\r') {
		j.i++
	}
}

func (j *plainJSON) char(c byte) bool {
	j.space()
	if j.i < len(j.s) && j.s[j.i] == c {
		j.i++
		return true
	}
	return false
}

// str reads a string without escapes or bytes outside printable ASCII into dst. Duplicate keys
// overwrite, as in json.Unmarshal.
func (j *plainJSON) str(dst *string) bool {
	if !j.char('"') {
		return false
	}
	for start := j.i; j.i < len(j.s); j.i++ {
		switch c := j.s[j.i]; {
		case c == '"':
			*dst = j.s[start:j.i]
			j.i++
			return true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return false
		}
	}
	return false
}

// object reads an object, calling member for each key with the reader at its value. A repeated
// object member decodes into the same struct, as in json.Unmarshal.
func (j *plainJSON) object(member func(key string) bool) bool {
	if !j.char('{') {
		return false
	}
	if j.char('}') {
		return true
	}
	for {
		var key string
		if !j.str(&key) || !j.char(':') || !member(key) {
			return false
		}
		if !j.char(',') {
			return j.char('}')
		}
	}
}

func (j *plainJSON) end() bool {
	j.space()
	return j.i == len(j.s)
}
