package devchain

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

// Account is a key and its address.
type Account struct {
	Key     *ecdsa.PrivateKey
	Address common.Address
}

// NewAccount generates a fresh key.
func NewAccount() (Account, error) {
	k, err := crypto.GenerateKey()
	if err != nil {
		return Account{}, fmt.Errorf("devchain: generating a key: %w", err)
	}
	return Account{Key: k, Address: crypto.PubkeyToAddress(k.PublicKey)}, nil
}

// KeyHex is the private key as 0x-prefixed hex, the form Secrets and X402_PAY_KEY take.
func (a Account) KeyHex() string { return "0x" + hex.EncodeToString(crypto.FromECDSA(a.Key)) }

// String prints the address only, so an Account is safe to log.
func (a Account) String() string { return a.Address.Hex() }

// Ether converts whole ether to wei.
func Ether(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(params.Ether)) }

// fundFunder moves 1000 ETH from geth's unlocked dev account to a key of our own, so that every
// later transaction is signed here and the dev account's key never matters.
func (c *Chain) fundFunder(ctx context.Context) error {
	funder, err := NewAccount()
	if err != nil {
		return err
	}
	var accounts []common.Address
	if err := c.rpc.CallContext(ctx, &accounts, "eth_accounts"); err != nil {
		return fmt.Errorf("devchain: listing the dev account: %w", err)
	}
	if len(accounts) == 0 {
		return fmt.Errorf("devchain: geth --dev reports no unlocked dev account")
	}
	var hash common.Hash
	tx := map[string]any{"from": accounts[0], "to": funder.Address, "value": (*hexutil.Big)(Ether(1000))}
	if err := c.rpc.CallContext(ctx, &hash, "eth_sendTransaction", tx); err != nil {
		return fmt.Errorf("devchain: funding from the dev account: %w", err)
	}
	if _, err := c.waitMined(ctx, hash); err != nil {
		return fmt.Errorf("devchain: funding from the dev account: %w", err)
	}
	c.Funder = funder
	return nil
}

// Fund sends wei of ether from the Funder to addr and waits for the block.
func (c *Chain) Fund(ctx context.Context, addr common.Address, wei *big.Int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	nonce, err := c.Client.PendingNonceAt(ctx, c.Funder.Address)
	if err != nil {
		return fmt.Errorf("devchain: funder nonce: %w", err)
	}
	tip, err := c.Client.SuggestGasTipCap(ctx)
	if err != nil {
		return fmt.Errorf("devchain: suggesting a tip: %w", err)
	}
	head, err := c.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("devchain: reading the head: %w", err)
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	tx, err := types.SignNewTx(c.Funder.Key, types.LatestSignerForChainID(c.ChainID), &types.DynamicFeeTx{
		ChainID: c.ChainID, Nonce: nonce, To: &addr, Value: wei, Gas: params.TxGas, GasTipCap: tip, GasFeeCap: feeCap,
	})
	if err != nil {
		return fmt.Errorf("devchain: signing a transfer: %w", err)
	}
	if err := c.Client.SendTransaction(ctx, tx); err != nil {
		return fmt.Errorf("devchain: sending a transfer to %s: %w", addr.Hex(), err)
	}
	_, err = c.waitMined(ctx, tx.Hash())
	return err
}

// waitMined waits for the receipt of hash and fails unless the transaction succeeded.
func (c *Chain) waitMined(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	for {
		r, err := c.Client.TransactionReceipt(ctx, hash)
		if err == nil {
			if r.Status != types.ReceiptStatusSuccessful {
				return r, fmt.Errorf("transaction %s reverted", hash.Hex())
			}
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for transaction %s: %w", hash.Hex(), ctx.Err())
		case <-c.geth.Exited():
			return nil, fmt.Errorf("waiting for transaction %s: geth exited", hash.Hex())
		case <-afterPoll():
		}
	}
}
