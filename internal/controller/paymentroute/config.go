package paymentroute

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	gwconfig "github.com/insforge/integrations-operator/internal/gateway/config"
)

// This file is the one mapping from a PaymentRoute to what its gateway runs with: the config
// file, the Secrets it needs and how they reach the pod. Every default the API declares is
// applied here too (and nowhere else), so an object that skipped the API server's defaulting
// renders the same; the rest of the package reads the rendered config, not the spec.

// gatewayConfig renders the gateway configuration of a route, validated as the gateway will
// validate it (secrets aside: only the pod's environment has them).
func gatewayConfig(route *v1alpha1.PaymentRoute) (gwconfig.Config, error) {
	if route == nil {
		return gwconfig.Config{}, errors.New("gateway config: nil PaymentRoute")
	}
	s := route.Spec
	upstream, err := upstreamURL(route)
	if err != nil {
		return gwconfig.Config{}, err
	}
	c := gwconfig.Config{
		Route:             kit.ObjectKey(route),
		Listen:            fmt.Sprintf(":%d", v1alpha1.DefaultGatewayPort),
		AdminListen:       gwconfig.DefaultAdminListen,
		Upstream:          upstream,
		Network:           or(s.Network, v1alpha1.DefaultNetwork),
		PayTo:             s.PayTo,
		MaxTimeoutSeconds: int(s.MaxTimeoutSeconds),
		Asset: gwconfig.Asset{
			Address:       or(s.Asset.Address, v1alpha1.DefaultAssetAddress),
			Decimals:      int(s.Asset.Decimals),
			Symbol:        or(s.Asset.Symbol, v1alpha1.DefaultAssetSymbol),
			EIP712Name:    or(s.Asset.EIP712.Name, v1alpha1.DefaultEIP712Name),
			EIP712Version: or(s.Asset.EIP712.Version, v1alpha1.DefaultEIP712Version),
		},
		Ledger: gwconfig.Ledger{
			Schema:  or(s.Database.Schema, v1alpha1.DefaultLedgerSchema),
			Table:   or(s.Database.Table, v1alpha1.DefaultLedgerTable),
			Migrate: true, // a read-only no-op when the controller has migrated already
		},
		Gateway: gwconfig.Gateway{
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
		c.Gateway.UpstreamTimeout = gwconfig.D(s.Gateway.UpstreamTimeout.Duration)
	}
	for _, r := range s.Routes {
		rc := gwconfig.Route{
			Path: r.Path, Method: r.Method, Price: r.Price,
			Description: r.Description, MimeType: r.MimeType, Settle: string(r.Settle),
			CaseSensitive: r.CaseSensitive, TrailingSlash: string(r.TrailingSlash),
		}
		if r.ReplayWindow != nil {
			rc.ReplayWindow = gwconfig.D(r.ReplayWindow.Duration)
		}
		c.Routes = append(c.Routes, rc)
	}
	plan, err := facilitatorOf(s.Facilitator)
	if err != nil {
		return gwconfig.Config{}, err
	}
	c.Facilitator = plan.config
	c.ApplyDefaults()
	if err := c.ValidateFile(); err != nil {
		return gwconfig.Config{}, err
	}
	return c, nil
}

// facilitator is everything that depends on a route's facilitator kind, decided in one place:
// the gateway's facilitator config, the Secret the gateway needs with its keys and how each key
// reaches the pod, and the chain node the operator may check the token's domain over.
type facilitator struct {
	config gwconfig.Facilitator
	// secret is the facilitator's Secret; nil when it needs none (mock, http without headers).
	secret *secretNeed
	// rpcURL is the chain node of the route (empty for mock); rpcRequired says the gateway
	// settles over it (onchain), so an unreachable node keeps the route unready.
	rpcURL      string
	rpcRequired bool
	mock        bool
}

func facilitatorOf(f v1alpha1.Facilitator) (facilitator, error) {
	switch {
	case f.OKX != nil:
		o := &gwconfig.OKX{BaseURL: f.OKX.BaseURL, Legacy: f.OKX.APIVersion == v1alpha1.OKXAPILegacy, RPCURL: f.OKX.RPCURL}
		if f.OKX.SyncSettle != nil && !*f.OKX.SyncSettle {
			o.AsyncSettle = true
		}
		return facilitator{
			config: gwconfig.Facilitator{Kind: gwconfig.KindOKX, OKX: o},
			secret: &secretNeed{name: f.OKX.CredentialsSecretRef.Name, keys: []secretKey{
				{key: v1alpha1.OKXAPIKeyKey, env: gwconfig.EnvOKXAPIKey},
				{key: v1alpha1.OKXSecretKeyKey, env: gwconfig.EnvOKXSecretKey},
				{key: v1alpha1.OKXPassphraseKey, env: gwconfig.EnvOKXPassphrase},
			}},
			rpcURL: f.OKX.RPCURL,
		}, nil
	case f.HTTP != nil:
		out := facilitator{
			config: gwconfig.Facilitator{Kind: gwconfig.KindHTTP, HTTP: &gwconfig.HTTP{URL: f.HTTP.URL, RPCURL: f.HTTP.RPCURL}},
		}
		if ref := f.HTTP.HeadersSecretRef; ref != nil {
			// Any keys: each becomes a header through envFrom with the prefix.
			out.secret = &secretNeed{name: ref.Name, envPrefix: gwconfig.EnvFacilitatorHeaderPrefix}
		}
		return out, nil
	case f.Onchain != nil:
		o := &gwconfig.Onchain{RPCURL: f.Onchain.RPCURL}
		if f.Onchain.ReceiptTimeout != nil {
			o.ReceiptTimeout = gwconfig.D(f.Onchain.ReceiptTimeout.Duration)
		}
		k := f.Onchain.RelayerKeySecretRef
		return facilitator{
			config: gwconfig.Facilitator{Kind: gwconfig.KindOnchain, Onchain: o},
			secret: &secretNeed{name: k.Name, keys: []secretKey{
				{key: k.KeyOrDefault(v1alpha1.DefaultRelayerKeySecretKey), env: gwconfig.EnvRelayerKey},
			}},
			rpcURL:      f.Onchain.RPCURL,
			rpcRequired: true,
		}, nil
	case f.Mock != nil:
		return facilitator{config: gwconfig.Facilitator{Kind: gwconfig.KindMock}, mock: true}, nil
	}
	return facilitator{}, errors.New("gateway config: spec.facilitator sets none of okx, http, onchain, mock")
}

// secretNeed is one Secret a route reads: the keys it must hold and the environment variable
// each becomes in the gateway pod, or, with envPrefix, every key under that prefix.
type secretNeed struct {
	name      string
	keys      []secretKey
	envPrefix string
}

type secretKey struct {
	key, env string
}

// secretNeeds lists the Secrets a route references, in spec order: the database connection
// first, then the facilitator's. It is computed from the spec alone (the Secret watch index uses
// it for routes whose facilitator is not valid yet).
//
// The operator's connection is mounted into the gateway only when no gateway connection is given;
// a key with no env is read by the operator and never mounted.
func secretNeeds(route *v1alpha1.PaymentRoute) []secretNeed {
	db := route.Spec.Database.ConnectionSecretRef
	gw := route.Spec.Database.GatewayConnectionSecretRef
	env := gwconfig.EnvDatabaseURL
	if gw != nil {
		env = ""
	}
	needs := []secretNeed{{name: db.Name, keys: []secretKey{
		{key: db.KeyOrDefault(v1alpha1.DefaultConnectionSecretKey), env: env},
	}}}
	if gw != nil {
		needs = append(needs, secretNeed{name: gw.Name, keys: []secretKey{
			{key: gw.KeyOrDefault(v1alpha1.DefaultConnectionSecretKey), env: gwconfig.EnvDatabaseURL},
		}})
	}
	if f, err := facilitatorOf(route.Spec.Facilitator); err == nil && f.secret != nil {
		needs = append(needs, *f.secret)
	}
	return needs
}

// secretEnv is the environment of the gateway container that carries the route's secrets:
// single variables from secretKeyRefs, and an envFrom for a prefixed Secret.
func secretEnv(route *v1alpha1.PaymentRoute) ([]corev1.EnvVar, []corev1.EnvFromSource) {
	var env []corev1.EnvVar
	var from []corev1.EnvFromSource
	for _, n := range secretNeeds(route) {
		if n.envPrefix != "" {
			from = append(from, corev1.EnvFromSource{
				Prefix:    n.envPrefix,
				SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: n.name}},
			})
			continue
		}
		for _, k := range n.keys {
			if k.env == "" {
				continue
			}
			env = append(env, corev1.EnvVar{Name: k.env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: n.name}, Key: k.key,
			}}})
		}
	}
	return env, from
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

// or returns v, or def when v is empty or blank.
func or(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return v
}
