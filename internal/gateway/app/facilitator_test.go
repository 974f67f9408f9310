package app

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/onchain"
	"github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// The mock facilitator must check signatures through the cache the gateway is given, so that a
// paid request recovers its signer once (the gateway's check) instead of three times.
func TestMockFacilitatorUsesTheSharedRecoverCache(t *testing.T) {
	raw := `{"route": "ns/r", "upstream": "http://127.0.0.1:1", "network": "eip155:196",
	  "asset": {"address": "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8", "decimals": 6, "eip712Name": "Global Dollar", "eip712Version": "1"},
	  "payTo": "0x1111111111111111111111111111111111111111", "maxTimeoutSeconds": 300,
	  "routes": [{"path": "/paid", "price": "0.01"}], "facilitator": {"kind": "mock"}}`
	cfg, err := config.Parse([]byte(raw), config.Env{config.EnvDatabaseURL: "postgres://unused"})
	if err != nil {
		t.Fatal(err)
	}
	facs, err := NewFacilitators(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer facs.Close()
	if facs.RecoverCache == nil {
		t.Fatal("no shared RecoverCache")
	}
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	req := x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: cfg.Network, Amount: "10000", Asset: cfg.Asset.Address,
		PayTo: cfg.PayTo, MaxTimeoutSeconds: cfg.MaxTimeoutSeconds,
		Extra: map[string]any{"name": cfg.Asset.EIP712Name, "version": cfg.Asset.EIP712Version},
	}
	p, err := eip3009.NewSigner(key).Sign(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := facs.Facilitator.Verify(context.Background(), p, req)
	if err != nil || !v.Valid {
		t.Fatalf("verify = %+v, %v", v, err)
	}
	if got := facs.RecoverCache.Len(); got != 1 {
		t.Errorf("shared cache holds %d signers after the facilitator's verify, want 1", got)
	}
}

// okx and http facilitators get a key-less chain lookup for the resolver; a node that is down at
// start delays resolution, never the gateway.
func TestOKXAndHTTPFacilitatorsGetAChainLookup(t *testing.T) {
	for kind, member := range map[string]string{
		config.KindOKX:  `"okx": {"rpcURL": "http://127.0.0.1:1"}`,
		config.KindHTTP: `"http": {"url": "http://127.0.0.1:1", "rpcURL": "http://127.0.0.1:1"}`,
	} {
		t.Run(kind, func(t *testing.T) {
			raw := `{"route": "ns/r", "upstream": "http://127.0.0.1:1", "network": "eip155:196",
			  "asset": {"address": "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8", "decimals": 6, "eip712Name": "Global Dollar", "eip712Version": "1"},
			  "payTo": "0x1111111111111111111111111111111111111111", "maxTimeoutSeconds": 300,
			  "routes": [{"path": "/paid", "price": "0.01"}], "facilitator": {"kind": "` + kind + `", ` + member + `}}`
			cfg, err := config.Parse([]byte(raw), config.Env{config.EnvDatabaseURL: "postgres://unused",
				config.EnvOKXAPIKey: "k", config.EnvOKXSecretKey: "s", config.EnvOKXPassphrase: "p"})
			if err != nil {
				t.Fatal(err)
			}
			facs, err := NewFacilitators(context.Background(), cfg)
			if err != nil {
				t.Fatalf("a node that is down stopped the gateway: %v", err)
			}
			defer facs.Close()
			l, ok := facs.Chain.(*onchain.Lookup)
			if !ok || l.Network() != "eip155:196" {
				t.Fatalf("chain lookup = %#v", facs.Chain)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if res, err := l.SettleStatus(ctx, facilitator.SettleRef{Network: "eip155:196"}); err == nil {
				t.Fatalf("an unreachable node answered %+v", res)
			}
		})
	}
}
