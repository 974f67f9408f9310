package evmtest

import (
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

func requirementsFor(tk *Token, payTo string, amount string) x402.PaymentRequirements {
	return x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: Network, Amount: amount, Asset: tk.Address.Hex(), PayTo: payTo,
		MaxTimeoutSeconds: 300, Extra: map[string]any{"name": tk.Name, "version": tk.Version},
	}
}

func TestTokenDomainAndMetadata(t *testing.T) {
	c := New(t)
	tk := c.DeployToken(t, "Global Dollar", "1")
	ctx := context.Background()
	d := eip3009.Domain{Name: "Global Dollar", Version: "1", ChainID: c.ChainID, VerifyingContract: tk.Address}
	if err := eip3009.CheckDomain(ctx, c.Client, d); err != nil {
		t.Fatalf("CheckDomain: %v", err)
	}
	d.Version = "2"
	if err := eip3009.CheckDomain(ctx, c.Client, d); err == nil || !strings.Contains(err.Error(), "DOMAIN_SEPARATOR()") {
		t.Fatalf("wrong version accepted: %v", err)
	}
	// An address without code has no DOMAIN_SEPARATOR.
	d.VerifyingContract = c.Deployer.Address
	if err := eip3009.CheckDomain(ctx, c.Client, d); err == nil {
		t.Fatal("account without code accepted")
	}
	abi, bound := tk.Binding()
	dec, err := bind.Call(bound, nil, abi.PackDecimals(), abi.UnpackDecimals)
	if err != nil || dec != 6 {
		t.Fatalf("decimals = %d, %v", dec, err)
	}
}

// sendAuthorization submits transferWithAuthorization (bytes form) from the deployer and mines it.
func sendAuthorization(t *testing.T, c *Chain, tk *Token, a eip3009.Authorization, sig []byte) *types.Receipt {
	t.Helper()
	abi, bound := tk.Binding()
	opts := bind.NewKeyedTransactor(c.Deployer.Key, c.ChainID)
	opts.GasLimit = 1_000_000 // skip estimation so that reverting calls are mined too
	tx, err := bind.Transact(bound, opts, abi.PackTransferWithAuthorization(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, sig))
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	c.Commit()
	r, err := c.Client.TransactionReceipt(context.Background(), tx.Hash())
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	return r
}

// revertReason runs the call with eth_call and returns the revert reason.
func revertReason(t *testing.T, c *Chain, tk *Token, a eip3009.Authorization, sig []byte) string {
	t.Helper()
	abi, _ := tk.Binding()
	data := abi.PackTransferWithAuthorization(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, sig)
	_, err := c.Client.CallContract(context.Background(), ethereum.CallMsg{From: c.Deployer.Address, To: &tk.Address, Data: data}, nil)
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestTransferWithAuthorization(t *testing.T) {
	c := New(t)
	tk := c.DeployToken(t, "Global Dollar", "1")
	payer, merchant := NewAccount(t), NewAccount(t)
	tk.Mint(t, payer.Address, big.NewInt(1_000_000))
	signer := eip3009.NewSigner(payer.Key)
	req := requirementsFor(tk, merchant.Address.Hex(), "10000")
	d, err := eip3009.DomainFor(req)
	if err != nil {
		t.Fatal(err)
	}

	a, err := signer.Authorize(req)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.SignAuthorization(d, a)
	if err != nil {
		t.Fatal(err)
	}
	if reason := revertReason(t, c, tk, a, sig); reason != "" {
		t.Fatalf("eth_call of a valid authorization failed: %s", reason)
	}
	if r := sendAuthorization(t, c, tk, a, sig); r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("valid authorization reverted (gas used %d)", r.GasUsed)
	} else if len(r.Logs) != 2 || r.Logs[0].Topics[0] != crypto.Keccak256Hash([]byte("AuthorizationUsed(address,bytes32)")) {
		t.Fatalf("logs = %+v, want AuthorizationUsed then Transfer", r.Logs)
	}
	if got := tk.BalanceOf(t, merchant.Address); got.Int64() != 10000 {
		t.Fatalf("merchant balance = %s", got)
	}
	if !tk.AuthorizationState(t, payer.Address, a.Nonce) {
		t.Fatal("authorization not marked used")
	}

	// Replay: reverted on chain, balances unchanged.
	if r := sendAuthorization(t, c, tk, a, sig); r.Status != types.ReceiptStatusFailed {
		t.Fatal("replayed authorization succeeded")
	}
	if got := tk.BalanceOf(t, payer.Address); got.Int64() != 990000 {
		t.Fatalf("payer balance after replay = %s", got)
	}

	fresh := func(mut func(*eip3009.Authorization)) (eip3009.Authorization, []byte) {
		a, err := signer.Authorize(req)
		if err != nil {
			t.Fatal(err)
		}
		mut(&a)
		sig, err := signer.SignAuthorization(d, a)
		if err != nil {
			t.Fatal(err)
		}
		return a, sig
	}
	now := time.Now().Unix()
	tests := []struct {
		name string
		make func() (eip3009.Authorization, []byte)
		want string
	}{
		{"replay", func() (eip3009.Authorization, []byte) { return a, sig }, "authorization is used or canceled"},
		{"expired", func() (eip3009.Authorization, []byte) {
			return fresh(func(a *eip3009.Authorization) { a.ValidBefore = big.NewInt(now - 120) })
		}, "authorization is expired"},
		{"not yet valid", func() (eip3009.Authorization, []byte) {
			return fresh(func(a *eip3009.Authorization) { a.ValidAfter = big.NewInt(now + 3600) })
		}, "authorization is not yet valid"},
		{"high s", func() (eip3009.Authorization, []byte) {
			a, sig := fresh(func(*eip3009.Authorization) {})
			n := crypto.S256().Params().N
			new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:64])).FillBytes(sig[32:64])
			sig[64] = 27 + 28 - sig[64]
			return a, sig
		}, "invalid signature 's' value"},
		{"other signer", func() (eip3009.Authorization, []byte) {
			a, _ := fresh(func(*eip3009.Authorization) {})
			other := eip3009.NewSigner(NewAccount(t).Key)
			sig, _ := other.SignAuthorization(d, a)
			return a, sig
		}, "invalid signature"},
		{"tampered value", func() (eip3009.Authorization, []byte) {
			a, sig := fresh(func(*eip3009.Authorization) {})
			a.Value = big.NewInt(20000)
			return a, sig
		}, "invalid signature"},
		{"short signature", func() (eip3009.Authorization, []byte) {
			a, sig := fresh(func(*eip3009.Authorization) {})
			return a, sig[:64]
		}, "invalid signature length"},
		{"balance", func() (eip3009.Authorization, []byte) {
			return fresh(func(a *eip3009.Authorization) { a.Value = big.NewInt(2_000_000) })
		}, "transfer amount exceeds balance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, sig := tt.make()
			if got := revertReason(t, c, tk, a, sig); !strings.Contains(got, tt.want) {
				t.Fatalf("revert = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAutoMineMinesSentTransactions(t *testing.T) {
	c := New(t)
	client := c.AutoMine(t, time.Millisecond)
	to := NewAccount(t).Address
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tip, head := c.fees(t)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: c.ChainID, Nonce: 0, To: &to, Value: big.NewInt(1), Gas: 21000,
		GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(c.ChainID), c.Deployer.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.SendTransaction(ctx, signed); err != nil {
		t.Fatal(err)
	}
	r, err := bind.WaitMined(ctx, client, signed.Hash())
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("receipt %v, %v", r, err)
	}
}

func TestReceiveAndCancelAuthorization(t *testing.T) {
	c := New(t)
	tk := c.DeployToken(t, "Global Dollar", "1")
	payer, merchant := NewAccount(t), NewAccount(t)
	c.Fund(t, merchant.Address, big.NewInt(1e18))
	tk.Mint(t, payer.Address, big.NewInt(100_000))
	signer := eip3009.NewSigner(payer.Key)
	req := tk.Requirements(merchant.Address, big.NewInt(10_000))
	abi, bound := tk.Binding()
	ctx := context.Background()

	// receiveWithAuthorization uses its own typehash; sign it by hand.
	a, err := signer.Authorize(req)
	if err != nil {
		t.Fatal(err)
	}
	receiveType := crypto.Keccak256Hash([]byte("ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"))
	word := func(b []byte) []byte { return common.LeftPadBytes(b, 32) }
	structHash := crypto.Keccak256Hash(receiveType[:], word(a.From[:]), word(a.To[:]), word(a.Value.Bytes()),
		word(a.ValidAfter.Bytes()), word(a.ValidBefore.Bytes()), a.Nonce[:])
	d, _ := eip3009.DomainFor(req)
	digest := eip3009.TypedDataDigest(d.Separator(), structHash)
	sig, err := crypto.Sign(digest[:], payer.Key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	data := abi.PackReceiveWithAuthorization(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, sig)
	// Anyone but the payee is refused.
	if _, err := c.Client.CallContract(ctx, ethereum.CallMsg{From: c.Deployer.Address, To: &tk.Address, Data: data}, nil); err == nil || !strings.Contains(err.Error(), "caller must be the payee") {
		t.Fatalf("receive from a third party: %v", err)
	}
	opts := bind.NewKeyedTransactor(merchant.Key, c.ChainID)
	tx, err := bind.Transact(bound, opts, data)
	if err != nil {
		t.Fatal(err)
	}
	c.Commit()
	if r, err := c.Client.TransactionReceipt(ctx, tx.Hash()); err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("receive: %v %v", r, err)
	}
	if got := tk.BalanceOf(t, merchant.Address); got.Int64() != 10_000 {
		t.Fatalf("merchant balance = %s", got)
	}

	// cancelAuthorization burns a nonce; the transfer signed with it then fails.
	b, err := signer.Authorize(req)
	if err != nil {
		t.Fatal(err)
	}
	transferSig, _ := signer.SignAuthorization(d, b)
	cancelType := crypto.Keccak256Hash([]byte("CancelAuthorization(address authorizer,bytes32 nonce)"))
	cancelDigest := eip3009.TypedDataDigest(d.Separator(), crypto.Keccak256Hash(cancelType[:], word(b.From[:]), b.Nonce[:]))
	cancelSig, _ := crypto.Sign(cancelDigest[:], payer.Key)
	cancelSig[64] += 27
	deployerOpts := bind.NewKeyedTransactor(c.Deployer.Key, c.ChainID)
	if _, err := bind.Transact(bound, deployerOpts, abi.PackCancelAuthorization(b.From, b.Nonce, cancelSig)); err != nil {
		t.Fatal(err)
	}
	c.Commit()
	if !tk.AuthorizationState(t, payer.Address, b.Nonce) {
		t.Fatal("cancelled nonce not marked used")
	}
	if got := revertReason(t, c, tk, b, transferSig); !strings.Contains(got, "authorization is used or canceled") {
		t.Fatalf("transfer after cancel: %q", got)
	}
}

func TestAutoCommitMinesPoolTransactions(t *testing.T) {
	c := New(t)
	c.AutoCommit(t, 2*time.Millisecond)
	to := NewAccount(t).Address
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tip, head := c.fees(t)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: c.ChainID, Nonce: 0, To: &to, Value: big.NewInt(1), Gas: 21000,
		GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(c.ChainID), c.Deployer.Key)
	if err != nil {
		t.Fatal(err)
	}
	// Sent through the raw RPC client, as a bridged process would; the miner must still see it.
	raw, err := signed.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RPCClient().CallContext(ctx, nil, "eth_sendRawTransaction", hexutil.Encode(raw)); err != nil {
		t.Fatal(err)
	}
	r, err := bind.WaitMined(ctx, c.Client, signed.Hash())
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("receipt %v, %v", r, err)
	}
	// Idle: no empty blocks (each would move chain time a second ahead).
	n1, _ := c.Client.BlockNumber(ctx)
	time.Sleep(20 * time.Millisecond)
	if n2, _ := c.Client.BlockNumber(ctx); n2 != n1 {
		t.Fatalf("idle miner mined blocks %d..%d", n1, n2)
	}
}
