package okx

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The expected signatures were computed outside Go (Python's hmac, hashlib and base64) from
// the same inputs: base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)).
func TestSignatureWorkedExample(t *testing.T) {
	const secret = "22582BD0CFF14C41EDBF1AB98506286D"
	tests := []struct {
		name, method, path, body, want string
	}{
		{"POST with body", "POST", "/api/v6/pay/x402/verify", `{"x402Version":2}`, "06yrsVuym8aFs62VIa1WAelB08yn+yh6d3CEk9bLO1E="},
		{"GET with query, empty body", "GET", "/api/v6/pay/x402/settle/status?txHash=0xabc", "", "NivDC7fc/4o2b8SZjLOHs1JDij1jfxq4GciUi6XWjBM="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Signature(secret, "2025-01-15T10:30:45.123Z", tt.method, tt.path, tt.body); got != tt.want {
				t.Fatalf("signature = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestTimestampFormat(t *testing.T) {
	ts := time.Date(2025, 1, 15, 18, 30, 45, 123_456_789, time.FixedZone("UTC+8", 8*3600))
	if got := Timestamp(ts); got != "2025-01-15T10:30:45.123Z" {
		t.Fatalf("timestamp = %s", got)
	}
	if got := Timestamp(time.Date(2025, 1, 15, 10, 30, 45, 0, time.UTC)); got != "2025-01-15T10:30:45.000Z" {
		t.Fatalf("whole second = %s", got)
	}
}

func TestCredentialsRedacted(t *testing.T) {
	c := Credentials{APIKey: "key-1234567", SecretKey: "s3cr3t-value", Passphrase: "pass-phrase-x"}
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c),
		fmt.Sprintf("%v", Config{Credentials: c}), fmt.Sprintf("%#v", Config{Credentials: c})} {
		if strings.Contains(s, c.SecretKey) || strings.Contains(s, c.Passphrase) || strings.Contains(s, c.APIKey) {
			t.Fatalf("formatted credentials expose a secret: %s", s)
		}
	}
}
