package config

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// Environment variables that carry secrets. The controller sets them from Secrets;
// the gateway reads them in Load. Nothing else carries a secret.
const (
	// EnvDatabaseURL is the PostgreSQL URL of the ledger database.
	EnvDatabaseURL = "X402_DATABASE_URL"
	// EnvOKXAPIKey, EnvOKXSecretKey and EnvOKXPassphrase are the OKX API credentials.
	EnvOKXAPIKey     = "OKX_API_KEY"
	EnvOKXSecretKey  = "OKX_SECRET_KEY"
	EnvOKXPassphrase = "OKX_PASSPHRASE"
	// EnvRelayerKey is the on-chain facilitator's relayer private key (hex, with or without 0x).
	EnvRelayerKey = "X402_RELAYER_KEY"
	// EnvFacilitatorHeaderPrefix prefixes variables whose remainder is an HTTP header name sent to
	// an http facilitator: X402_FACILITATOR_HEADER_Authorization=Bearer … sends
	// "Authorization: Bearer …". The controller uses envFrom with this prefix on the headers Secret.
	EnvFacilitatorHeaderPrefix = "X402_FACILITATOR_HEADER_"
)

// Env is a set of environment variables.
type Env map[string]string

// OSEnv returns the process environment.
func OSEnv() Env {
	env := Env{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// Secrets are the values read from the environment. String, GoString and LogValue never print
// them, so a Secrets (or a Config holding one) is safe to log.
type Secrets struct {
	DatabaseURL       string
	OKXAPIKey         string
	OKXSecretKey      string
	OKXPassphrase     string
	RelayerKey        string
	FacilitatorHeader map[string]string
}

func secretsFrom(env Env) Secrets {
	s := Secrets{
		DatabaseURL:   env[EnvDatabaseURL],
		OKXAPIKey:     env[EnvOKXAPIKey],
		OKXSecretKey:  env[EnvOKXSecretKey],
		OKXPassphrase: env[EnvOKXPassphrase],
		RelayerKey:    env[EnvRelayerKey],
	}
	for k, v := range env {
		if name, ok := strings.CutPrefix(k, EnvFacilitatorHeaderPrefix); ok && name != "" {
			if s.FacilitatorHeader == nil {
				s.FacilitatorHeader = map[string]string{}
			}
			s.FacilitatorHeader[name] = v
		}
	}
	return s
}

// String lists which secrets are set, never their values.
func (s Secrets) String() string {
	set := func(v string) string {
		if v == "" {
			return "unset"
		}
		return "set"
	}
	names := make([]string, 0, len(s.FacilitatorHeader))
	for k := range s.FacilitatorHeader {
		names = append(names, k)
	}
	sort.Strings(names)
	return fmt.Sprintf("Secrets{databaseURL: %s, okx: %s/%s/%s, relayerKey: %s, facilitatorHeaders: %v}",
		set(s.DatabaseURL), set(s.OKXAPIKey), set(s.OKXSecretKey), set(s.OKXPassphrase), set(s.RelayerKey), names)
}

// GoString keeps %#v from printing secrets.
func (s Secrets) GoString() string { return s.String() }
