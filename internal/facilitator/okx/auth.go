package okx

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
)

// Header names of OKX's API authentication.
const (
	HeaderKey        = "OK-ACCESS-KEY"
	HeaderSign       = "OK-ACCESS-SIGN"
	HeaderTimestamp  = "OK-ACCESS-TIMESTAMP"
	HeaderPassphrase = "OK-ACCESS-PASSPHRASE"
)

// TimestampLayout is the ISO-8601 UTC form with milliseconds OKX expects, e.g.
// 2025-01-15T10:30:45.123Z.
const TimestampLayout = "2006-01-02T15:04:05.000Z"

// Credentials are an OKX Onchain OS API key. String and GoString redact the secret parts, so a
// Credentials value is safe to log; never format its fields yourself.
type Credentials struct {
	APIKey     string
	SecretKey  string
	Passphrase string
}

// String implements fmt.Stringer with the secrets redacted.
func (c Credentials) String() string {
	key := "<empty>"
	if len(c.APIKey) > 4 {
		key = c.APIKey[:4] + "…"
	} else if c.APIKey != "" {
		key = "…"
	}
	return fmt.Sprintf("okx.Credentials{APIKey: %s, SecretKey: <redacted>, Passphrase: <redacted>}", key)
}

// GoString keeps %#v from printing the secrets.
func (c Credentials) GoString() string { return c.String() }

// Timestamp formats t for the OK-ACCESS-TIMESTAMP header.
func Timestamp(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// Signature computes OK-ACCESS-SIGN: base64(HMAC-SHA256(secretKey, timestamp + METHOD +
// requestPath + body)), where requestPath includes the query string ("?a=b") for GET requests
// and body is "" when there is none.
func Signature(secretKey, timestamp, method, requestPath, body string) string {
	mac := hmac.New(sha256.New, []byte(secretKey))
	mac.Write([]byte(timestamp))
	mac.Write([]byte(method))
	mac.Write([]byte(requestPath))
	mac.Write([]byte(body))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
