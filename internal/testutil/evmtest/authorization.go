package evmtest

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// sendGas is the gas limit of SendCall's transactions: given, not estimated, so that calls that
// revert are mined too (a test often wants exactly that).
const sendGas = 300_000

// SendCall signs a call of to with data from the key's account (which needs ether for gas),
// sends it, mines it and returns its receipt, reverted or not. It returns errors rather than
// failing the test so that it can run inside code under test (a client that races a relayer).
func (c *Chain) SendCall(ctx context.Context, from *ecdsa.PrivateKey, to common.Address, data []byte) (*types.Receipt, error) {
	addr := crypto.PubkeyToAddress(from.PublicKey)
	nonce, err := c.Client.PendingNonceAt(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("nonce of %s: %w", addr.Hex(), err)
	}
	tip, err := c.Client.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, fmt.Errorf("suggest tip: %w", err)
	}
	head, err := c.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	tx, err := types.SignNewTx(from, types.LatestSignerForChainID(c.ChainID), &types.DynamicFeeTx{
		ChainID: c.ChainID, Nonce: nonce, To: &to, Gas: sendGas, Data: data,
		GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip),
	})
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if err := c.Client.SendTransaction(ctx, tx); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	c.Commit()
	r, err := c.Client.TransactionReceipt(ctx, tx.Hash())
	if err != nil {
		return nil, fmt.Errorf("receipt of %s: %w", tx.Hash().Hex(), err)
	}
	return r, nil
}

// Domain is the token's EIP-712 domain.
func (tk *Token) Domain() eip3009.Domain {
	return eip3009.Domain{Name: tk.Name, Version: tk.Version, ChainID: tk.chain.ChainID, VerifyingContract: tk.Address}
}

// TransferWithAuthorizationCall is the calldata of transferWithAuthorization (v, r, s form) for a
// signed authorization: what a relayer sends.
func (tk *Token) TransferWithAuthorizationCall(a eip3009.Authorization, sig []byte) ([]byte, error) {
	if len(sig) != 65 {
		return nil, errors.New("signature must be 65 bytes")
	}
	var r, s [32]byte
	copy(r[:], sig[:32])
	copy(s[:], sig[32:64])
	return tk.abi.TryPackTransferWithAuthorization0(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, sig[64], r, s)
}

// SubmitAuthorization sends transferWithAuthorization from sender (any account with ether: the
// payer itself, or a relayer), mines it and returns the receipt, which may be reverted.
func (tk *Token) SubmitAuthorization(t testing.TB, sender Account, a eip3009.Authorization, sig []byte) *types.Receipt {
	t.Helper()
	data, err := tk.TransferWithAuthorizationCall(a, sig)
	if err != nil {
		t.Fatalf("transferWithAuthorization calldata: %v", err)
	}
	r, err := tk.chain.SendCall(context.Background(), sender.Key, tk.Address, data)
	if err != nil {
		t.Fatalf("transferWithAuthorization: %v", err)
	}
	return r
}

// CancelAuthorization has the authorizer sign CancelAuthorization(authorizer, nonce) and the
// deployer submit it, mines it and fails the test unless it succeeded.
func (tk *Token) CancelAuthorization(t testing.TB, authorizer Account, nonce [32]byte) *types.Receipt {
	t.Helper()
	var buf [3 * 32]byte
	copy(buf[0:32], crypto.Keccak256([]byte("CancelAuthorization(address authorizer,bytes32 nonce)")))
	copy(buf[32+12:64], authorizer.Address[:])
	copy(buf[64:96], nonce[:])
	digest := eip3009.TypedDataDigest(tk.Domain().Separator(), crypto.Keccak256Hash(buf[:]))
	sig, err := crypto.Sign(digest[:], authorizer.Key)
	if err != nil {
		t.Fatalf("sign cancellation: %v", err)
	}
	sig[64] += 27
	data, err := tk.abi.TryPackCancelAuthorization(authorizer.Address, nonce, sig)
	if err != nil {
		t.Fatalf("cancelAuthorization calldata: %v", err)
	}
	r, err := tk.chain.SendCall(context.Background(), tk.chain.Deployer.Key, tk.Address, data)
	if err != nil {
		t.Fatalf("cancelAuthorization: %v", err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("cancelAuthorization of %s reverted", common.Hash(nonce).Hex())
	}
	return r
}

// Transfer moves value from from's balance (from needs ether for gas) with a plain ERC-20
// transfer, mines it and fails the test unless it succeeded.
func (tk *Token) Transfer(t testing.TB, from Account, to common.Address, value *big.Int) {
	t.Helper()
	data, err := tk.abi.TryPackTransfer(to, value)
	if err != nil {
		t.Fatalf("transfer calldata: %v", err)
	}
	r, err := tk.chain.SendCall(context.Background(), from.Key, tk.Address, data)
	if err != nil {
		t.Fatalf("transfer: %v", err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatal("transfer reverted")
	}
}
