// Package evmtest runs go-ethereum's in-process simulated chain for tests and deploys the
// EIP-3009 test token (contracts/testtoken) on it.
//
// The simulated backend only mines when Commit is called. Code under test that waits for
// receipts gets blocks from Chain.AutoMine (a client whose sends wake a background miner), from
// Chain.AutoCommit (a miner that watches the transaction pool), or from Chain.Mine used as a hook
// after sending.
//
// Each block's timestamp is at least its parent's plus one second, so a test that mines many
// blocks per second moves chain time ahead of the wall clock: keep authorizations' validity
// windows (maxTimeoutSeconds) larger than the number of blocks a test mines.
package evmtest

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/insforge/integrations-operator/contracts/testtoken"
	"github.com/insforge/integrations-operator/internal/x402"
)

// ChainID is the chain id of the simulated backend.
const ChainID = 1337

// Network is the CAIP-2 id of the simulated chain.
const Network = "eip155:1337"

// Account is a key and its address.
type Account struct {
	Key     *ecdsa.PrivateKey
	Address common.Address
}

// String prints the address only.
func (a Account) String() string { return a.Address.Hex() }

// NewAccount generates a fresh key.
func NewAccount(t testing.TB) Account {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return Account{Key: k, Address: crypto.PubkeyToAddress(k.PublicKey)}
}

// Chain is a simulated chain with a funded deployer account.
type Chain struct {
	Backend  *simulated.Backend
	Client   simulated.Client
	ChainID  *big.Int
	Deployer Account

	mu sync.Mutex // serialises Commit between tests' own calls and the AutoMine miner
}

// New starts a simulated chain with the given accounts funded with 1000 ETH each (plus a
// deployer), mines a first block so that "latest" has a current timestamp, and closes the
// chain when the test ends.
func New(t testing.TB, fund ...common.Address) *Chain {
	t.Helper()
	deployer := NewAccount(t)
	alloc := types.GenesisAlloc{deployer.Address: {Balance: ether(1000)}}
	for _, a := range fund {
		alloc[a] = types.Account{Balance: ether(1000)}
	}
	b := simulated.NewBackend(alloc)
	c := &Chain{Backend: b, Client: b.Client(), ChainID: big.NewInt(ChainID), Deployer: deployer}
	t.Cleanup(func() { _ = b.Close() })
	c.Commit()
	return c
}

func ether(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(params.Ether)) }

// Commit mines the pending transactions into a new block.
func (c *Chain) Commit() common.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Backend.Commit()
}

// Mine commits a block; its signature fits a post-send hook (onchain.Config.AfterSend).
func (c *Chain) Mine(context.Context) { c.Commit() }

// RPCClient returns the in-process JSON-RPC client of the simulated node, for tests that serve
// the chain to another process or call namespaces the typed client lacks.
func (c *Chain) RPCClient() *rpc.Client {
	// simulated.Client hides *ethclient.Client in a field named Client, which also hides the
	// embedded type's Client() method; reach it by reflection.
	ec, ok := reflect.ValueOf(c.Client).FieldByName("Client").Interface().(*ethclient.Client)
	if !ok {
		panic("evmtest: simulated client layout changed")
	}
	return ec.Client()
}

// AutoCommit mines a block whenever the transaction pool holds pending transactions, checking
// every interval until the test ends. Unlike AutoMine it also sees transactions that reach the
// node by other routes (a JSON-RPC bridge to another process).
func (c *Chain) AutoCommit(t testing.TB, interval time.Duration) {
	t.Helper()
	rc := c.RPCClient()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// txpool_status reads the pool itself; the pending block the typed client would
			// query is refreshed only every second or two.
			var status struct {
				Pending hexutil.Uint `json:"pending"`
			}
			if err := rc.CallContext(ctx, &status, "txpool_status"); err == nil && status.Pending > 0 {
				c.Commit()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// AutoMine returns a client for code that waits for receipts, as code written for a real node
// does. Every successful SendTransaction through it wakes a background miner, which waits
// batchDelay (so that concurrent sends share a block, as on a real chain) and commits. The miner
// stops when the test ends.
func (c *Chain) AutoMine(t testing.TB, batchDelay time.Duration) simulated.Client {
	t.Helper()
	wake := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(batchDelay):
			}
			c.Commit()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return &autoMineClient{Client: c.Client, wake: wake}
}

type autoMineClient struct {
	simulated.Client
	wake chan struct{}
}

// SendTransaction sends tx and wakes the miner.
func (a *autoMineClient) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	if err := a.Client.SendTransaction(ctx, tx); err != nil {
		return err
	}
	select {
	case a.wake <- struct{}{}:
	default: // a commit is already due; it will include tx
	}
	return nil
}

// Fund sends wei from the deployer to addr and mines it.
func (c *Chain) Fund(t testing.TB, addr common.Address, wei *big.Int) {
	t.Helper()
	ctx := context.Background()
	nonce, err := c.Client.PendingNonceAt(ctx, c.Deployer.Address)
	if err != nil {
		t.Fatalf("deployer nonce: %v", err)
	}
	tip, head := c.fees(t)
	tx := types.NewTx(&types.DynamicFeeTx{
		ChainID: c.ChainID, Nonce: nonce, To: &addr, Value: wei, Gas: 21000,
		GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip),
	})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(c.ChainID), c.Deployer.Key)
	if err != nil {
		t.Fatalf("sign fund tx: %v", err)
	}
	c.sendAndMine(t, signed)
}

func (c *Chain) fees(t testing.TB) (*big.Int, *types.Header) {
	t.Helper()
	tip, err := c.Client.SuggestGasTipCap(context.Background())
	if err != nil {
		t.Fatalf("suggest tip: %v", err)
	}
	head, err := c.Client.HeaderByNumber(context.Background(), nil)
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	return tip, head
}

// sendAndMine sends a transaction, mines it and fails the test unless it succeeded.
func (c *Chain) sendAndMine(t testing.TB, tx *types.Transaction) *types.Receipt {
	t.Helper()
	ctx := context.Background()
	if err := c.Client.SendTransaction(ctx, tx); err != nil {
		t.Fatalf("send tx: %v", err)
	}
	c.Commit()
	r, err := c.Client.TransactionReceipt(ctx, tx.Hash())
	if err != nil {
		t.Fatalf("receipt of %s: %v", tx.Hash().Hex(), err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("tx %s reverted", tx.Hash().Hex())
	}
	return r
}

// Token is a deployed test token.
type Token struct {
	Address common.Address
	Name    string
	Version string
	chain   *Chain
	abi     *testtoken.TestToken
	bound   *bind.BoundContract
}

// DeployToken deploys the EIP-3009 test token with the given EIP-712 name and version.
func (c *Chain) DeployToken(t testing.TB, name, version string) *Token {
	t.Helper()
	tt := testtoken.NewTestToken()
	opts := bind.NewKeyedTransactor(c.Deployer.Key, c.ChainID)
	addr, tx, err := bind.DeployContract(opts, common.FromHex(testtoken.TestTokenMetaData.Bin), c.Client, tt.PackConstructor(name, version, "TST"))
	if err != nil {
		t.Fatalf("deploy token: %v", err)
	}
	c.Commit()
	r, err := c.Client.TransactionReceipt(context.Background(), tx.Hash())
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("deploy token: receipt %v, err %v", r, err)
	}
	return &Token{Address: addr, Name: name, Version: version, chain: c, abi: tt, bound: tt.Instance(c.Client, addr)}
}

// Mint credits to with value atomic units and mines the transaction.
func (tk *Token) Mint(t testing.TB, to common.Address, value *big.Int) {
	t.Helper()
	opts := bind.NewKeyedTransactor(tk.chain.Deployer.Key, tk.chain.ChainID)
	tx, err := bind.Transact(tk.bound, opts, tk.abi.PackMint(to, value))
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	tk.chain.Commit()
	r, err := tk.chain.Client.TransactionReceipt(context.Background(), tx.Hash())
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("mint: receipt %v, err %v", r, err)
	}
}

// BalanceOf returns the token balance of addr at the latest block.
func (tk *Token) BalanceOf(t testing.TB, addr common.Address) *big.Int {
	t.Helper()
	v, err := bind.Call(tk.bound, nil, tk.abi.PackBalanceOf(addr), tk.abi.UnpackBalanceOf)
	if err != nil {
		t.Fatalf("balanceOf: %v", err)
	}
	return v
}

// AuthorizationState reports whether (from, nonce) has been used.
func (tk *Token) AuthorizationState(t testing.TB, from common.Address, nonce [32]byte) bool {
	t.Helper()
	v, err := bind.Call(tk.bound, nil, tk.abi.PackAuthorizationState(from, nonce), tk.abi.UnpackAuthorizationState)
	if err != nil {
		t.Fatalf("authorizationState: %v", err)
	}
	return v
}

// Binding returns the abigen binding and the bound contract, for tests that call the token directly.
func (tk *Token) Binding() (*testtoken.TestToken, *bind.BoundContract) { return tk.abi, tk.bound }

// Requirements returns exact-scheme payment requirements for this token on the simulated chain.
func (tk *Token) Requirements(payTo common.Address, amount *big.Int) x402.PaymentRequirements {
	return x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: Network, Amount: amount.String(), Asset: tk.Address.Hex(),
		PayTo: payTo.Hex(), MaxTimeoutSeconds: 300, Extra: map[string]any{"name": tk.Name, "version": tk.Version},
	}
}

// String describes the token.
func (tk *Token) String() string {
	return fmt.Sprintf("TestToken(%s %q/%q)", tk.Address.Hex(), tk.Name, tk.Version)
}

// Interface check: the simulated client is a full bind backend.
var _ bind.ContractBackend = simulated.Client(nil)

// Call is a raw eth_call at the latest block.
func (c *Chain) Call(ctx context.Context, msg ethereum.CallMsg) ([]byte, error) {
	return c.Client.CallContract(ctx, msg, nil)
}
