// Package devchain runs a real `geth --dev` node for process-level tests and the demo: processes
// under test (the gateway, the manager) reach it over JSON-RPC exactly as they would reach X
// Layer, which the in-process simulated backend (evmtest) cannot offer.
//
// The node listens on a free 127.0.0.1 port only, has no peers, no discovery and no IPC socket,
// keeps its data in a temp dir, and mines a block as soon as a transaction is pending. The binary
// comes from bin/geth (built by `make geth` from the go-ethereum version the operator links) or
// from Options.Geth.
package devchain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/proc"
)

// ChainID is the chain id of a geth --dev chain.
const ChainID = 1337

// Network is the CAIP-2 id of a geth --dev chain.
const Network = "eip155:1337"

// Options tune Start.
type Options struct {
	// Geth is the geth binary; empty means bin/geth under the repository root holding the
	// working directory.
	Geth string
	// Log receives geth's output; nil discards it.
	Log io.Writer
}

// Chain is a running geth --dev node with a funded account of our own (Funder) that deploys,
// mints and funds.
type Chain struct {
	// RPCURL is the node's HTTP JSON-RPC endpoint on 127.0.0.1.
	RPCURL string
	// Client is connected to RPCURL.
	Client *ethclient.Client
	// ChainID is the node's chain id.
	ChainID *big.Int
	// Funder holds 1000 ETH from the dev account; every helper transacts from it.
	Funder Account

	rpc     *rpc.Client
	dir     string
	geth    *proc.Process
	stopped sync.Once
	mu      sync.Mutex // serialises the Funder's transactions (nonces)
}

// Start runs a node and waits until its RPC answers and the Funder is funded. Stop it with Stop.
func Start(ctx context.Context, opts Options) (*Chain, error) {
	bin, err := gethBinary(opts.Geth)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "devchain-")
	if err != nil {
		return nil, fmt.Errorf("devchain: creating a datadir: %w", err)
	}
	// A free port can be taken between our probe and geth's bind; retry a few times.
	var c *Chain
	for attempt := 1; ; attempt++ {
		c, err = launch(ctx, bin, dir, opts.Log)
		if err == nil || attempt == 3 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := c.fundFunder(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func launch(ctx context.Context, bin, dir string, log io.Writer) (*Chain, error) {
	httpPort, err := freeport.Port()
	if err != nil {
		return nil, fmt.Errorf("devchain: %w", err)
	}
	authPort, err := freeport.Port()
	if err != nil {
		return nil, fmt.Errorf("devchain: %w", err)
	}
	if log == nil {
		log = io.Discard
	}
	cmd := exec.Command(bin,
		"--dev", "--dev.period", "0",
		"--datadir", dir,
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(httpPort), "--http.api", "eth,net,web3",
		// The engine API is unused in dev mode but still listens; keep it on loopback and off 8551.
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", strconv.Itoa(authPort),
		"--ipcdisable", "--nodiscover", "--maxpeers", "0", "--port", "0",
		// The default NAT setting probes the LAN (UPnP, NAT-PMP) over UDP; nothing may leave loopback.
		"--nat", "none",
		"--verbosity", "2",
	)
	cmd.Stdout, cmd.Stderr = log, log
	// Pdeathsig stops the node if our process dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	geth, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("devchain: starting %s: %w", bin, err)
	}
	c := &Chain{RPCURL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), dir: dir, geth: geth}
	if err := c.waitRPC(ctx); err != nil {
		geth.Kill()
		return nil, err
	}
	return c, nil
}

// waitRPC waits until the node answers eth_chainId.
func (c *Chain) waitRPC(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err := c.geth.WaitReady(ctx, 100*time.Millisecond, func(ctx context.Context) error {
		rc, err := rpc.DialContext(ctx, c.RPCURL)
		if err != nil {
			return err
		}
		client := ethclient.NewClient(rc)
		id, err := client.ChainID(ctx)
		if err != nil {
			rc.Close()
			return err
		}
		c.rpc, c.Client, c.ChainID = rc, client, id
		return nil
	})
	switch {
	case errors.Is(err, proc.ErrExited):
		return errors.New("devchain: geth exited during start-up (see its log)")
	case err != nil:
		return fmt.Errorf("devchain: geth's RPC at %s did not answer: %w", c.RPCURL, err)
	}
	return nil
}

// Stop stops the node and removes its datadir. It is safe to call more than once.
func (c *Chain) Stop() {
	c.stopped.Do(func() {
		if c.Client != nil {
			c.Client.Close()
		}
		_ = c.geth.Stop(syscall.SIGTERM, 15*time.Second)
		_ = os.RemoveAll(c.dir)
	})
}

// gethBinary resolves the geth binary to run.
func gethBinary(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("devchain: finding the working directory: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if bin := filepath.Join(dir, "bin", "geth"); isExecutable(bin) {
				return bin, nil
			}
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", errors.New("devchain: no geth binary in bin/ of the repository: run `make geth` " +
		"(builds it from the pinned go-ethereum module; about 3 minutes the first time)")
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}
