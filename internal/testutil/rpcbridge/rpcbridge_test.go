package rpcbridge

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/insforge/integrations-operator/internal/testutil/evmtest"
)

// TestSendActions sends one transaction per action through the bridge and checks what the
// client saw and what reached the chain.
func TestSendActions(t *testing.T) {
	sender := evmtest.NewAccount(t)
	chain := evmtest.New(t, sender.Address)
	b := New(t, chain.RPCClient())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ec, err := ethclient.DialContext(ctx, b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()

	actions := map[uint64]Action{0: Forward, 1: Drop, 2: ForwardThenFail}
	b.SetSendHook(func(tx *types.Transaction) Action { return actions[tx.Nonce()] })
	var afterSend []string
	b.SetAfterSend(func(h string) { afterSend = append(afterSend, h) })

	head, err := ec.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tip, err := ec.SuggestGasTipCap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(nonce uint64) (*types.Transaction, error) {
		to := evmtest.NewAccount(t).Address
		tx, err := types.SignNewTx(sender.Key, types.LatestSignerForChainID(chain.ChainID), &types.DynamicFeeTx{
			ChainID: chain.ChainID, Nonce: nonce, To: &to, Value: big.NewInt(1), Gas: 21000,
			GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip),
		})
		if err != nil {
			t.Fatal(err)
		}
		return tx, ec.SendTransaction(ctx, tx)
	}
	mined := func(tx *types.Transaction) bool {
		chain.Commit()
		_, err := ec.TransactionReceipt(ctx, tx.Hash())
		if err != nil && !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("receipt: %v", err)
		}
		return err == nil
	}

	tx0, err := send(0)
	if err != nil || !mined(tx0) {
		t.Fatalf("forward: send error %v, or not mined", err)
	}
	// A dropped send is a transport failure (not a node error) and never reaches the chain.
	tx1, err := send(1)
	var re rpc.Error
	if err == nil || errors.As(err, &re) {
		t.Fatalf("drop: send error %v, want a transport error", err)
	}
	if mined(tx1) {
		t.Fatal("drop: the transaction reached the chain")
	}
	// Forward-then-fail: the sender sees a transport failure, the chain has the transaction.
	b.SetSendHook(func(*types.Transaction) Action { return ForwardThenFail })
	tx2, err := send(1)
	if err == nil || errors.As(err, &re) {
		t.Fatalf("forward-then-fail: send error %v, want a transport error", err)
	}
	if !mined(tx2) {
		t.Fatal("forward-then-fail: the transaction is not on the chain")
	}
	if got := b.Calls(MethodSendRawTransaction); got != 3 {
		t.Errorf("eth_sendRawTransaction calls = %d, want 3", got)
	}
	if got := b.Calls("eth_getBlockByNumber"); got < 1 {
		t.Errorf("eth_getBlockByNumber calls = %d, want at least 1", got)
	}
	want := []string{tx0.Hash().Hex(), tx2.Hash().Hex()}
	if got := b.Sent(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("sent = %v, want %v", got, want)
	}
	if len(afterSend) != 2 {
		t.Errorf("afterSend ran %d times, want 2", len(afterSend))
	}
}
