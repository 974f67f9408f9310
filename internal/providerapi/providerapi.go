package providerapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/insforge/integrations-operator/internal/jwtsecret"
)

// Op is what a sync did to the provider's object.
type Op string

// Ops.
const (
	OpCreated   Op = "created"
	OpUpdated   Op = "updated"
	OpUnchanged Op = "unchanged"
)

// Action is the outcome of a sync: what was done and, for events and conditions, why.
type Action struct {
	Op Op
	// Reason is a short human sentence, for example "claims differ; signing key rotated".
	Reason string
}

// Fingerprint identifies a key in a Record without revealing it. It is jwtsecret's fingerprint,
// so the value a provider Record holds can be compared with the JWT Secret's status.
func Fingerprint(key []byte) string { return jwtsecret.Fingerprint(string(key)) }

// SpecHash fingerprints a desired spec (any JSON-encodable value) the same way, so the operator
// can tell from a Record which spec was last written.
func SpecHash(v any) string {
	raw, err := json.Marshal(v) // map keys are sorted: the encoding is stable
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}

// Redacted replaces each secret in s. It is applied to every message a provider sends back, in
// case a provider ever quotes a credential or a submitted key.
func Redacted(s string, secrets ...string) string {
	for _, sec := range secrets {
		// Very short values would redact ordinary words; no real credential is that short.
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// JoinReasons joins sync reasons into one sentence.
func JoinReasons(reasons []string) string { return strings.Join(reasons, "; ") }
