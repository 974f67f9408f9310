package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/rpc"
)

// rpcBridge serves an in-process go-ethereum RPC client (the simulated chain's) over HTTP
// JSON-RPC, so that a gateway subprocess can use the chain as it would a real node. afterSend
// runs after an eth_sendRawTransaction has been forwarded and before it is answered.
type rpcBridge struct {
	*httptest.Server
	rc        *rpc.Client
	mu        sync.Mutex
	afterSend func(txHash string)
}

type rpcRequest struct {
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

func newRPCBridge(t *testing.T, rc *rpc.Client) *rpcBridge {
	b := &rpcBridge{rc: rc}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

func (b *rpcBridge) setAfterSend(f func(string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.afterSend = f
}

func (b *rpcBridge) serve(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if len(raw) > 0 && raw[0] == '[' {
		var reqs []rpcRequest
		_ = json.Unmarshal(raw, &reqs)
		out := make([]rpcResponse, len(reqs))
		for i, q := range reqs {
			out[i] = b.call(r.Context(), q)
		}
		_ = json.NewEncoder(w).Encode(out)
		return
	}
	var q rpcRequest
	_ = json.Unmarshal(raw, &q)
	_ = json.NewEncoder(w).Encode(b.call(r.Context(), q))
}

func (b *rpcBridge) call(ctx context.Context, q rpcRequest) rpcResponse {
	args := make([]any, len(q.Params))
	for i, p := range q.Params {
		args[i] = p
	}
	var result json.RawMessage
	err := b.rc.CallContext(ctx, &result, q.Method, args...)
	resp := rpcResponse{JSONRPC: "2.0", ID: q.ID, Result: result}
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
	if q.Method == "eth_sendRawTransaction" && err == nil {
		b.mu.Lock()
		f := b.afterSend
		b.mu.Unlock()
		if f != nil {
			var hash string
			_ = json.Unmarshal(result, &hash)
			f(hash)
		}
	}
	return resp
}
