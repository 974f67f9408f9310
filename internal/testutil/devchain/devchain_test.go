//go:build e2e

// The test needs bin/geth, which `make geth` builds; `make test-e2e` depends on it, `make test`
// does not, hence the build tag.
package devchain

import (
	"bytes"
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/testutil/procnet"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

func TestDevChain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log bytes.Buffer
	c, err := Start(ctx, Options{Log: &log})
	if err != nil {
		t.Fatalf("%v\ngeth log:\n%s", err, log.String())
	}
	defer c.Stop()

	if !strings.HasPrefix(c.RPCURL, "http://127.0.0.1:") {
		t.Errorf("RPC URL %s is not on loopback", c.RPCURL)
	}
	if c.ChainID.Int64() != ChainID {
		t.Errorf("chain id %d, want %d", c.ChainID, ChainID)
	}
	addrs, err := procnet.Sockets(c.geth.Cmd.Process.Pid)
	if err != nil {
		t.Fatalf("listing geth's sockets: %v", err)
	}
	if len(addrs) == 0 {
		t.Error("geth holds no socket, want its RPC listener")
	}
	for addr, table := range addrs {
		if !procnet.IsLoopback(addr) {
			t.Errorf("geth has a %s socket on %s, want loopback only", table, addr)
		}
	}

	payer, err := NewAccount()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Fund(ctx, payer.Address, Ether(1)); err != nil {
		t.Fatal(err)
	}
	bal, err := c.Client.BalanceAt(ctx, payer.Address, nil)
	if err != nil || bal.Cmp(Ether(1)) != 0 {
		t.Errorf("payer balance %v (err %v), want 1 ETH", bal, err)
	}

	tk, err := c.DeployToken(ctx, "Global Dollar", "1", "USDG")
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Mint(ctx, payer.Address, big.NewInt(1_000_000)); err != nil {
		t.Fatal(err)
	}
	if got, err := tk.BalanceOf(ctx, payer.Address); err != nil || got.Int64() != 1_000_000 {
		t.Errorf("token balance %v (err %v), want 1000000", got, err)
	}

	// The token's domain is the one a payer signs for on this chain.
	d := eip3009.Domain{Name: "Global Dollar", Version: "1", ChainID: c.ChainID, VerifyingContract: tk.Address}
	if err := eip3009.CheckDomain(ctx, c.Client, d); err != nil {
		t.Errorf("domain check: %v", err)
	}

	c.Stop()
	if _, err := c.Client.ChainID(ctx); err == nil {
		t.Error("the node still answers after Stop")
	}
}
