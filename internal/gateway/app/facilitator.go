package app

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/httpx402"
	"github.com/insforge/integrations-operator/internal/facilitator/mock"
	"github.com/insforge/integrations-operator/internal/facilitator/okx"
	"github.com/insforge/integrations-operator/internal/facilitator/onchain"
	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// Facilitators are the facilitator of a configuration and, for facilitators whose word is not
// the chain's (okx, http), the on-chain status source the resolver checks them against.
type Facilitators struct {
	Facilitator facilitator.Facilitator
	Chain       facilitator.StatusSource
	// RecoverCache is shared by the gateway's local check and the in-process facilitators
	// (mock, onchain), so a paid request recovers its signature once, not three times.
	RecoverCache *eip3009.RecoverCache
	close        []func()
}

// recoverCacheSize bounds the shared signer cache (and, at an eighth of it, the memo of checked
// payloads). An entry is needed only for the few milliseconds between the gateway's check and
// settle, so this covers thousands of payments in flight; full, it costs about 4 MiB.
const recoverCacheSize = 1 << 14

// Close releases RPC connections.
func (f *Facilitators) Close() {
	for _, c := range f.close {
		c()
	}
}

// NewFacilitators builds the configured facilitator from cfg and its secrets.
func NewFacilitators(ctx context.Context, cfg config.Config) (*Facilitators, error) {
	fc := cfg.Facilitator
	out := &Facilitators{RecoverCache: eip3009.NewRecoverCache(recoverCacheSize)}
	// The facilitator's own HTTP timeout is a backstop; the gateway bounds settle itself.
	httpClient := &http.Client{Timeout: cfg.Gateway.SettleTimeout.Duration + cfg.Gateway.UpstreamTimeout.Duration}
	switch fc.Kind {
	case config.KindOKX:
		c, err := okx.New(okx.Config{
			BaseURL: fc.OKX.BaseURL, HTTPClient: httpClient, AsyncSettle: fc.OKX.AsyncSettle, Legacy: fc.OKX.Legacy,
			Credentials: okx.Credentials{APIKey: cfg.Secrets.OKXAPIKey, SecretKey: cfg.Secrets.OKXSecretKey, Passphrase: cfg.Secrets.OKXPassphrase},
		})
		if err != nil {
			return nil, fmt.Errorf("okx facilitator: %w", err)
		}
		out.Facilitator = c
		if err := out.dialLookup(ctx, fc.OKX.RPCURL, cfg.Network); err != nil {
			return nil, fmt.Errorf("okx facilitator: %w", err)
		}
	case config.KindHTTP:
		c, err := httpx402.New(httpx402.Config{URL: fc.HTTP.URL, Headers: cfg.Secrets.FacilitatorHeader, HTTPClient: httpClient})
		if err != nil {
			return nil, fmt.Errorf("http facilitator: %w", err)
		}
		out.Facilitator = c
		if err := out.dialLookup(ctx, fc.HTTP.RPCURL, cfg.Network); err != nil {
			return nil, fmt.Errorf("http facilitator: %w", err)
		}
	case config.KindOnchain:
		key, err := crypto.HexToECDSA(strings.TrimPrefix(cfg.Secrets.RelayerKey, "0x"))
		if err != nil {
			return nil, fmt.Errorf("onchain facilitator: %s is not a private key", config.EnvRelayerKey)
		}
		chain, closeFn, err := dialOnchain(ctx, fc.Onchain.RPCURL, key, cfg, out.RecoverCache)
		if err != nil {
			return nil, err
		}
		out.Facilitator, out.close = chain, append(out.close, closeFn)
	case config.KindMock:
		out.Facilitator = mock.New(mock.Config{Networks: []string{cfg.Network}, Verifier: eip3009.Verifier{Cache: out.RecoverCache}})
	default:
		return nil, fmt.Errorf("facilitator kind %q is not supported", fc.Kind)
	}
	return out, nil
}

// dialLookup connects the resolver's chain lookup. It holds no key and does no I/O here: a node
// that is down at start delays resolution, not the gateway.
func (f *Facilitators) dialLookup(ctx context.Context, rpcURL, network string) error {
	if rpcURL == "" {
		return errors.New("rpcURL is required: unknown settlement outcomes are resolved on chain")
	}
	ec, err := ethclient.DialContext(ctx, rpcURL)
	if err != nil {
		return fmt.Errorf("dialing the chain node: %w", err)
	}
	l, err := onchain.NewLookup(onchain.LookupConfig{Client: ec, Network: network})
	if err != nil {
		ec.Close()
		return err
	}
	f.Chain, f.close = l, append(f.close, ec.Close)
	return nil
}

func dialOnchain(ctx context.Context, rpcURL string, key *ecdsa.PrivateKey, cfg config.Config, cache *eip3009.RecoverCache) (*onchain.Facilitator, func(), error) {
	ec, err := ethclient.DialContext(ctx, rpcURL)
	if err != nil {
		return nil, nil, fmt.Errorf("onchain facilitator: dialing the chain node: %w", err)
	}
	oc := onchain.Config{Client: ec, RelayerKey: key, Verifier: eip3009.Verifier{Cache: cache}}
	if cfg.Facilitator.Onchain != nil {
		oc.ReceiptTimeout = cfg.Facilitator.Onchain.ReceiptTimeout.Duration
	}
	if oc.ReceiptTimeout <= 0 || oc.ReceiptTimeout >= cfg.Gateway.SettleTimeout.Duration {
		// The receipt wait must end inside the settle timeout so the result is an explicit unknown.
		oc.ReceiptTimeout = cfg.Gateway.SettleTimeout.Duration * 9 / 10
	}
	f, err := onchain.New(ctx, oc)
	if err != nil {
		ec.Close()
		return nil, nil, err
	}
	if f.Network() != cfg.Network {
		ec.Close()
		return nil, nil, fmt.Errorf("onchain facilitator: the node is on %s, the route is on %s", f.Network(), cfg.Network)
	}
	return f, ec.Close, nil
}
