package x402

import (
	"strings"
	"testing"
)

func TestDecodeObjectRequiresItsKeys(t *testing.T) {
	var v VerifyResponse
	if err := DecodeObject([]byte(`{"isValid":false,"invalidReason":"invalid_signature"}`), "verify response", &v, "isValid"); err != nil ||
		v.IsValid || v.InvalidReason != "invalid_signature" {
		t.Fatalf("decoded %+v, %v", v, err)
	}
	for body, want := range map[string]string{
		`{"invalidReason":"x"}`: "verify response lacks isValid",
		`[true]`:                "verify response is not a JSON object",
		`{"isValid":"yes"}`:     "verify response: json: cannot unmarshal",
		``:                      "verify response is not a JSON object",
	} {
		var v VerifyResponse
		err := DecodeObject([]byte(body), "verify response", &v, "isValid")
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: error %v, want it to start with %q", body, err, want)
		}
	}
}
