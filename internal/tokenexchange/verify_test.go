package tokenexchange

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
	"github.com/insforge/integrations-operator/internal/tokenexchange/jwks"
)

// staticKeys serves one key whatever the kid.
type staticKeys struct{ key *jwks.Key }

func (s staticKeys) Lookup(context.Context, string, string) (*jwks.Key, error) { return s.key, nil }

// rawToken signs a header and payload given as JSON text, so that tests can write what a JSON
// encoder would not (repeated names, escapes).
func rawToken(priv ed25519.PrivateKey, header, payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	in := enc([]byte(header)) + "." + enc([]byte(payload))
	return in + "." + enc(ed25519.Sign(priv, []byte(in)))
}

func TestVerifyReadsClaimsExactly(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	is := config.Issuer{Provider: "p", Issuers: []string{"https://iss"}, JWKSURL: "https://iss/jwks",
		Algorithms: []string{"EdDSA"}, EmailClaim: "mail"}.WithDefaults()
	v, err := NewVerifier([]config.Issuer{is}, []KeySource{staticKeys{&jwks.Key{Public: pub}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Minute).Unix()
	hdr := `{"alg":"EdDSA","kid":"k"}`
	body := func(rest string) string { return fmt.Sprintf(`{"iss":"https://iss","exp":%d%s}`, exp, rest) }
	cases := []struct {
		name, header, payload string
		want                  Reason
		sub, email            string
	}{
		{"plain", hdr, body(`,"sub":"u1","mail":"a@b"`), ReasonOK, "u1", "a@b"},
		{"escaped name", hdr, body(`,"\u0073ub":"u2"`), ReasonOK, "u2", ""},
		{"escaped value", hdr, body(`,"sub":"u\u0033"`), ReasonOK, "u3", ""},
		{"fractional exp", hdr, fmt.Sprintf(`{"iss":"https://iss","exp":%d.5,"sub":"u"}`, exp), ReasonOK, "u", ""},
		{"nested values are skipped", hdr, body(`,"x":{"sub":"admin","a":[1,"]}",{"b":"\""}]},"sub":"u4"`), ReasonOK, "u4", ""},
		{"white space", `{ "alg" : "EdDSA" }`, " {\n\"sub\" :\t\"u5\" , \"iss\":\"https://iss\",\"exp\":" + fmt.Sprint(exp) + " } ", ReasonOK, "u5", ""},
		// A case variant is another claim: it never stands in for sub.
		{"Sub is not sub", hdr, body(`,"Sub":"admin"`), ReasonBadSubject, "", ""},
		{"SUB after sub", hdr, body(`,"sub":"u6","SUB":"admin"`), ReasonOK, "u6", ""},
		{"repeated sub", hdr, body(`,"sub":"u7","sub":"admin"`), ReasonMalformed, "", ""},
		{"repeated via escape", hdr, body(`,"sub":"u7","\u0073ub":"admin"`), ReasonMalformed, "", ""},
		{"repeated alg", `{"alg":"EdDSA","alg":"none"}`, body(`,"sub":"u"`), ReasonMalformed, "", ""},
		{"alg not a string", `{"alg":["EdDSA"]}`, body(`,"sub":"u"`), ReasonMalformed, "", ""},
		{"kid not a string", `{"alg":"EdDSA","kid":1}`, body(`,"sub":"u"`), ReasonMalformed, "", ""},
		{"header null", `null`, body(`,"sub":"u"`), ReasonMalformed, "", ""},
		{"payload array", hdr, `["sub"]`, ReasonMalformed, "", ""},
		{"payload not JSON", hdr, `{"sub":"u",}`, ReasonMalformed, "", ""},
		{"exp string", hdr, `{"iss":"https://iss","exp":"1","sub":"u"}`, ReasonMalformed, "", ""},
		{"exp huge", hdr, `{"iss":"https://iss","exp":1e300,"sub":"u"}`, ReasonMalformed, "", ""},
		{"iss not a string", hdr, `{"iss":["https://iss"],"exp":1,"sub":"u"}`, ReasonUnknownIssuer, "", ""},
		{"email not a string", hdr, body(`,"sub":"u","mail":["a@b"]`), ReasonOK, "u", ""},
		{"sub with U+2028", hdr, body(`,"sub":"u\u2028"`), ReasonBadSubject, "", ""},
		{"sub invalid UTF-8 escape", hdr, body(`,"sub":"\ud800"`), ReasonBadSubject, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), rawToken(priv, tc.header, tc.payload))
			got := ReasonOK
			var xe *Error
			if errors.As(err, &xe) {
				got = xe.Reason
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || id.Subject != tc.sub || id.Email != tc.email {
				t.Errorf("got %s %+v; want %s sub %q email %q", got, id, tc.want, tc.sub, tc.email)
			}
		})
	}
}

// scanObject finds the same members as encoding/json, names matched exactly.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":"\"}","b":[{"c":"]"}],"d":null,"e":true,"f":-1.5e3}`,
		` { "x" : { } , "y" : [ ] } `, `{"\u0061":"\\"}`, `[1]`, `{"a":1,"a":2}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := map[string]string{}
		err := scanObject([]byte(s), func(name string, value []byte) { got[name] = string(value) })
		var want map[string]json.RawMessage
		werr := json.Unmarshal([]byte(s), &want)
		if werr != nil || want == nil {
			if err == nil {
				t.Fatalf("scanObject accepted %q", s)
			}
			return
		}
		if errors.Is(err, errDuplicate) {
			return
		}
		if err != nil {
			t.Fatalf("scanObject(%q): %v", s, err)
		}
		norm := map[string]string{}
		for k, v := range want {
			norm[k] = string(v)
		}
		if !reflect.DeepEqual(got, norm) {
			t.Fatalf("scanObject(%q) = %v; encoding/json %v", s, got, norm)
		}
	})
}
