package devchain

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"

	"github.com/insforge/integrations-operator/contracts/testtoken"
)

// Token is a deployed EIP-3009 test token (contracts/testtoken, 6 decimals).
type Token struct {
	Address common.Address
	Name    string
	Version string
	Symbol  string

	chain *Chain
	abi   *testtoken.TestToken
	bound *bind.BoundContract
}

// DeployToken deploys the test token with the given EIP-712 name and version from the Funder.
func (c *Chain) DeployToken(ctx context.Context, name, version, symbol string) (*Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tt := testtoken.NewTestToken()
	opts := c.transactor(ctx)
	addr, tx, err := bind.DeployContract(opts, common.FromHex(testtoken.TestTokenMetaData.Bin), c.Client,
		tt.PackConstructor(name, version, symbol))
	if err != nil {
		return nil, fmt.Errorf("devchain: deploying the token: %w", err)
	}
	if _, err := c.waitMined(ctx, tx.Hash()); err != nil {
		return nil, fmt.Errorf("devchain: deploying the token: %w", err)
	}
	return &Token{Address: addr, Name: name, Version: version, Symbol: symbol, chain: c, abi: tt, bound: tt.Instance(c.Client, addr)}, nil
}

// Mint credits to with value atomic units and waits for the block.
func (tk *Token) Mint(ctx context.Context, to common.Address, value *big.Int) error {
	c := tk.chain
	c.mu.Lock()
	defer c.mu.Unlock()
	tx, err := bind.Transact(tk.bound, c.transactor(ctx), tk.abi.PackMint(to, value))
	if err != nil {
		return fmt.Errorf("devchain: minting: %w", err)
	}
	if _, err := c.waitMined(ctx, tx.Hash()); err != nil {
		return fmt.Errorf("devchain: minting: %w", err)
	}
	return nil
}

// BalanceOf returns the token balance of addr at the latest block.
func (tk *Token) BalanceOf(ctx context.Context, addr common.Address) (*big.Int, error) {
	v, err := bind.Call(tk.bound, &bind.CallOpts{Context: ctx}, tk.abi.PackBalanceOf(addr), tk.abi.UnpackBalanceOf)
	if err != nil {
		return nil, fmt.Errorf("devchain: balanceOf(%s): %w", addr.Hex(), err)
	}
	return v, nil
}

func (c *Chain) transactor(ctx context.Context) *bind.TransactOpts {
	opts := bind.NewKeyedTransactor(c.Funder.Key, c.ChainID)
	opts.Context = ctx
	return opts
}

// afterPoll paces receipt polling; dev blocks are mined at once, so this is short.
func afterPoll() <-chan time.Time { return time.After(50 * time.Millisecond) }
