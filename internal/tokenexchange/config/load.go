package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Defaults of the JWKS bounds and of CORS, applied by WithDefaults.
const (
	// DefaultJWKSRefreshInterval is how often each issuer's keys are refetched in the background.
	DefaultJWKSRefreshInterval = 10 * time.Minute
	// DefaultJWKSMinRefreshInterval spaces any two fetches of one JWKS: an unknown kid (a new
	// key after a rotation, or a made-up one) refetches at most this often.
	DefaultJWKSMinRefreshInterval = 30 * time.Second
	// DefaultJWKSFetchTimeout bounds one fetch, body included.
	DefaultJWKSFetchTimeout = 10 * time.Second
	// DefaultCORSMaxAge is how long a browser may cache a preflight answer.
	DefaultCORSMaxAge = 10 * time.Minute
)

// Load reads the file at path, applies the defaults and validates it. Unknown fields are errors:
// a misspelt field would otherwise silently fall back to its default.
func Load(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("exchange config: %w", err)
	}
	return Parse(raw)
}

// Parse is Load for bytes already read.
func Parse(raw []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("exchange config: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("exchange config: trailing data after the JSON object")
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// WithDefaults returns a copy of c with every unset field given its default. It does not modify
// c (the issuers are copied).
func (c Config) WithDefaults() Config {
	setStr(&c.Listen, DefaultListen)
	setStr(&c.AdminListen, DefaultAdminListen)
	setStr(&c.SigningKeyFile, DefaultSigningKeyFile)
	setDur(&c.Token.Lifetime, DefaultLifetime)
	setStr(&c.Token.Audience, DefaultAudience)
	setDur(&c.CORS.MaxAge, DefaultCORSMaxAge)
	setDur(&c.JWKS.RefreshInterval, DefaultJWKSRefreshInterval)
	setDur(&c.JWKS.MinRefreshInterval, DefaultJWKSMinRefreshInterval)
	setDur(&c.JWKS.FetchTimeout, DefaultJWKSFetchTimeout)
	setDur(&c.ShutdownTimeout, DefaultShutdown)
	c.Issuers = slices.Clone(c.Issuers)
	for i := range c.Issuers {
		c.Issuers[i] = c.Issuers[i].WithDefaults()
	}
	return c
}

// WithDefaults returns a copy of i with the default leeway when unset.
func (i Issuer) WithDefaults() Issuer {
	setDur(&i.Leeway, DefaultLeeway)
	return i
}

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setDur(p *Duration, v time.Duration) {
	if p.Duration == 0 {
		p.Duration = v
	}
}
