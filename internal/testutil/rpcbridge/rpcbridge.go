// Package rpcbridge serves an in-process go-ethereum RPC client (the simulated chain's) over
// HTTP JSON-RPC, so that a gateway running as another process can use the chain as it would a
// real node. Tests use its hooks to lose the answers of eth_sendRawTransaction (with or without
// the transaction reaching the chain) and its counters to see how often a method was called.
package rpcbridge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

// MethodSendRawTransaction is the method the send hooks apply to.
const MethodSendRawTransaction = "eth_sendRawTransaction"

// Action says what the bridge does with an eth_sendRawTransaction.
type Action int

const (
	// Forward sends the transaction to the chain and answers normally.
	Forward Action = iota
	// Drop never forwards the transaction and closes the connection without an answer: the
	// sender cannot tell whether the node got it.
	Drop
	// ForwardThenFail forwards the transaction and then closes the connection without an
	// answer: the transaction is in the pool, the sender does not know it.
	ForwardThenFail
)

// Bridge is a JSON-RPC server over an *rpc.Client. Its URL is the node URL to configure.
type Bridge struct {
	*httptest.Server
	rc *rpc.Client

	mu        sync.Mutex
	afterSend func(txHash string)
	sendHook  func(tx *types.Transaction) Action
	calls     map[string]int
	sent      []string // hashes of transactions forwarded to the chain
}

type request struct {
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

// New starts a bridge to rc; it is closed when the test ends.
func New(tb testing.TB, rc *rpc.Client) *Bridge {
	tb.Helper()
	b := &Bridge{rc: rc, calls: map[string]int{}}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	tb.Cleanup(b.Close)
	return b
}

// SetAfterSend sets a function run after an eth_sendRawTransaction has been forwarded and
// before it is answered (nil removes it).
func (b *Bridge) SetAfterSend(f func(txHash string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.afterSend = f
}

// SetSendHook sets the function that decides what happens to each eth_sendRawTransaction
// (nil forwards everything).
func (b *Bridge) SetSendHook(f func(tx *types.Transaction) Action) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sendHook = f
}

// Calls returns how many times method was called, dropped calls included.
func (b *Bridge) Calls(method string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[method]
}

// Sent returns the hashes of the transactions forwarded to the chain, in order.
func (b *Bridge) Sent() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.sent...)
}

func (b *Bridge) serve(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var out any
	hangUp := false
	if len(raw) > 0 && raw[0] == '[' {
		var reqs []request
		_ = json.Unmarshal(raw, &reqs)
		resps := make([]response, len(reqs))
		for i, q := range reqs {
			var lost bool
			resps[i], lost = b.call(r.Context(), q)
			hangUp = hangUp || lost
		}
		out = resps
	} else {
		var q request
		_ = json.Unmarshal(raw, &q)
		out, hangUp = b.call(r.Context(), q)
	}
	if hangUp {
		// The answer is lost in transit: the client sees the connection close.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // aborts the connection without an answer
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// call runs one request; lost says the answer must not reach the client.
func (b *Bridge) call(ctx context.Context, q request) (resp response, lost bool) {
	action := Forward
	b.mu.Lock()
	b.calls[q.Method]++
	hook := b.sendHook
	b.mu.Unlock()
	if q.Method == MethodSendRawTransaction && hook != nil {
		if tx := decodeTx(q.Params); tx != nil {
			action = hook(tx)
		}
	}
	if action == Drop {
		return response{}, true
	}
	args := make([]any, len(q.Params))
	for i, p := range q.Params {
		args[i] = p
	}
	var result json.RawMessage
	err := b.rc.CallContext(ctx, &result, q.Method, args...)
	resp = response{JSONRPC: "2.0", ID: q.ID, Result: result}
	if err != nil {
		e := &rpcError{Code: -32000, Message: err.Error()}
		var re rpc.Error
		if errors.As(err, &re) {
			e.Code = re.ErrorCode()
		}
		var de rpc.DataError
		if errors.As(err, &de) {
			e.Data = de.ErrorData()
		}
		resp.Result, resp.Error = nil, e
	}
	if resp.Result == nil && resp.Error == nil {
		resp.Result = json.RawMessage("null")
	}
	if q.Method == MethodSendRawTransaction && err == nil {
		var hash string
		_ = json.Unmarshal(result, &hash)
		b.mu.Lock()
		b.sent = append(b.sent, hash)
		f := b.afterSend
		b.mu.Unlock()
		if f != nil {
			f(hash)
		}
	}
	return resp, action == ForwardThenFail
}

// decodeTx decodes the signed transaction of an eth_sendRawTransaction, or returns nil.
func decodeTx(params []json.RawMessage) *types.Transaction {
	if len(params) == 0 {
		return nil
	}
	var hexTx string
	if err := json.Unmarshal(params[0], &hexTx); err != nil {
		return nil
	}
	raw, err := hexutil.Decode(hexTx)
	if err != nil {
		return nil
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return nil
	}
	return tx
}
