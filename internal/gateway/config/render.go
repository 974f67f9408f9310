package config

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/insforge/integrations-operator/api/v1alpha1"
)

// ConfigMapKey is the key of the rendered file in the gateway's ConfigMap; mount the ConfigMap
// so that it appears at DefaultConfigPath.
const ConfigMapKey = "config.json"

// FromPaymentRoute renders the gateway configuration of a PaymentRoute: the one mapping from the
// API to the gateway. CRD defaults are applied here too, so an object that skipped the API
// server's defaulting renders the same. Secrets are not part of the result: the controller
// passes them as environment variables (SecretEnv). The result is not validated against secrets;
// ValidateFile checks the rest.
func FromPaymentRoute(route *v1alpha1.PaymentRoute) (Config, error) {
	if route == nil {
		return Config{}, errors.New("gateway config: nil PaymentRoute")
	}
	s := route.Spec
	upstream, err := upstreamURL(route)
	if err != nil {
		return Config{}, err
	}
	c := Config{
		Route:             route.Namespace + "/" + route.Name,
		Listen:            fmt.Sprintf(":%d", v1alpha1.DefaultGatewayPort),
		AdminListen:       DefaultAdminListen,
		Upstream:          upstream,
		Network:           or(s.Network, v1alpha1.DefaultNetwork),
		PayTo:             s.PayTo,
		MaxTimeoutSeconds: int(s.MaxTimeoutSeconds),
		Asset: Asset{
			Address:       or(s.Asset.Address, v1alpha1.DefaultAssetAddress),
			Decimals:      int(s.Asset.Decimals),
			Symbol:        or(s.Asset.Symbol, v1alpha1.DefaultAssetSymbol),
			EIP712Name:    or(s.Asset.EIP712.Name, v1alpha1.DefaultEIP712Name),
			EIP712Version: or(s.Asset.EIP712.Version, v1alpha1.DefaultEIP712Version),
		},
		Ledger: Ledger{
			Schema:  or(s.Database.Schema, v1alpha1.DefaultLedgerSchema),
			Table:   or(s.Database.Table, v1alpha1.DefaultLedgerTable),
			Migrate: true, // a read-only no-op when the controller has migrated already
		},
		Gateway: Gateway{
			UnpricedPaths:    string(s.Gateway.UnpricedPaths),
			PayerHeader:      s.Gateway.PayerHeader,
			TrustForwarded:   s.Gateway.TrustForwarded,
			MaxResponseBytes: s.Gateway.MaxResponseBytes,
		},
	}
	if s.Asset.Address == "" && s.Asset.Decimals == 0 {
		c.Asset.Decimals = v1alpha1.DefaultAssetDecimals
	}
	if c.MaxTimeoutSeconds == 0 {
		c.MaxTimeoutSeconds = v1alpha1.DefaultMaxTimeoutSecs
	}
	if s.Gateway.UpstreamTimeout != nil {
		c.Gateway.UpstreamTimeout = D(s.Gateway.UpstreamTimeout.Duration)
	}
	for _, r := range s.Routes {
		rc := Route{
			Path: r.Path, Method: r.Method, Price: r.Price,
			Description: r.Description, MimeType: r.MimeType, Settle: string(r.Settle),
			CaseSensitive: r.CaseSensitive, TrailingSlash: string(r.TrailingSlash),
		}
		if r.ReplayWindow != nil {
			rc.ReplayWindow = D(r.ReplayWindow.Duration)
		}
		c.Routes = append(c.Routes, rc)
	}
	if c.Facilitator, err = facilitatorOf(s.Facilitator); err != nil {
		return Config{}, err
	}
	c.ApplyDefaults()
	if err := c.ValidateFile(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ValidateFile validates everything but the secrets (which only the gateway's environment has).
func (c *Config) ValidateFile() error {
	probe := *c
	// Placeholders that pass the secret checks, so that only file errors remain.
	probe.Secrets = Secrets{
		DatabaseURL: "postgres://placeholder/db", OKXAPIKey: "x", OKXSecretKey: "x", OKXPassphrase: "x",
		RelayerKey: "0x0000000000000000000000000000000000000000000000000000000000000001",
	}
	if err := probe.Validate(); err != nil {
		return err
	}
	c.Routes = probe.Routes // amounts computed
	return nil
}

func facilitatorOf(f v1alpha1.Facilitator) (Facilitator, error) {
	switch {
	case f.OKX != nil:
		o := &OKX{BaseURL: f.OKX.BaseURL, Legacy: f.OKX.APIVersion == v1alpha1.OKXAPILegacy, RPCURL: f.OKX.RPCURL}
		if f.OKX.SyncSettle != nil && !*f.OKX.SyncSettle {
			o.AsyncSettle = true
		}
		return Facilitator{Kind: KindOKX, OKX: o}, nil
	case f.HTTP != nil:
		return Facilitator{Kind: KindHTTP, HTTP: &HTTP{URL: f.HTTP.URL, RPCURL: f.HTTP.RPCURL}}, nil
	case f.Onchain != nil:
		o := &Onchain{RPCURL: f.Onchain.RPCURL}
		if f.Onchain.ReceiptTimeout != nil {
			o.ReceiptTimeout = D(f.Onchain.ReceiptTimeout.Duration)
		}
		return Facilitator{Kind: KindOnchain, Onchain: o}, nil
	case f.Mock != nil:
		return Facilitator{Kind: KindMock}, nil
	}
	return Facilitator{}, errors.New("gateway config: spec.facilitator sets none of okx, http, onchain, mock")
}

func upstreamURL(route *v1alpha1.PaymentRoute) (string, error) {
	u := route.Spec.Upstream
	switch {
	case u.URL != "" && u.Service == nil:
		return u.URL, nil
	case u.URL == "" && u.Service != nil:
		scheme := or(u.Service.Scheme, "http")
		return fmt.Sprintf("%s://%s.%s.svc:%d", scheme, u.Service.Name, route.Namespace, u.Service.Port), nil
	}
	return "", errors.New("gateway config: spec.upstream must set exactly one of url and service")
}

// SecretEnv returns the environment of the gateway container that carries the route's secrets:
// single variables from secretKeyRefs, and for an http facilitator an envFrom with
// EnvFacilitatorHeaderPrefix over the headers Secret (each key becomes a header name).
func SecretEnv(route *v1alpha1.PaymentRoute) ([]corev1.EnvVar, []corev1.EnvFromSource) {
	s := route.Spec
	ref := func(name, secret, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key,
		}}}
	}
	db := s.Database.ConnectionSecretRef
	env := []corev1.EnvVar{ref(EnvDatabaseURL, db.Name, db.KeyOrDefault(v1alpha1.DefaultConnectionSecretKey))}
	var from []corev1.EnvFromSource
	switch f := s.Facilitator; {
	case f.OKX != nil:
		n := f.OKX.CredentialsSecretRef.Name
		env = append(env,
			ref(EnvOKXAPIKey, n, v1alpha1.OKXAPIKeyKey),
			ref(EnvOKXSecretKey, n, v1alpha1.OKXSecretKeyKey),
			ref(EnvOKXPassphrase, n, v1alpha1.OKXPassphraseKey))
	case f.Onchain != nil:
		k := f.Onchain.RelayerKeySecretRef
		env = append(env, ref(EnvRelayerKey, k.Name, k.KeyOrDefault(v1alpha1.DefaultRelayerKeySecretKey)))
	case f.HTTP != nil && f.HTTP.HeadersSecretRef != nil:
		from = append(from, corev1.EnvFromSource{
			Prefix:    EnvFacilitatorHeaderPrefix,
			SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: f.HTTP.HeadersSecretRef.Name}},
		})
	}
	return env, from
}

func or(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return v
}
