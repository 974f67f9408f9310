//go:build e2e

package e2e

import (
	"context"
	"testing"

	"github.com/insforge/integrations-operator/internal/facilitator/onchain"
	"github.com/insforge/integrations-operator/internal/testutil/devchain"
	"github.com/insforge/integrations-operator/internal/testutil/okxfake"
)

// Credentials of the fake OKX API: test values, checked by the fake like real ones.
const (
	okxAPIKey     = "e2e-api-key"
	okxSecretKey  = "e2e-secret-key"
	okxPassphrase = "e2e-passphrase"
)

// startOKXFake serves OKX's x402 API on 127.0.0.1; it settles with its own relayer on the chain.
func startOKXFake(t *testing.T, ctx context.Context, chain *devchain.Chain, relayer devchain.Account) *okxfake.Server {
	t.Helper()
	backend, err := onchain.New(ctx, onchain.Config{Client: chain.Client, RelayerKey: relayer.Key})
	if err != nil {
		t.Fatal(err)
	}
	return okxfake.New(t, okxfake.Config{
		APIKey: okxAPIKey, SecretKey: okxSecretKey, Passphrase: okxPassphrase, Backend: backend,
	})
}
