package attack

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/insforge/integrations-operator/internal/facilitator"
	"github.com/insforge/integrations-operator/internal/facilitator/onchain"
	"github.com/insforge/integrations-operator/internal/x402"
)

// facilitatorToken is the credential the http facilitator requires; a gateway sends it from
// X402_FACILITATOR_HEADER_Authorization.
const facilitatorToken = "Bearer attack-suite-facilitator-key"

// behaviour is how the facilitator treats one payer's requests.
type behaviour struct {
	// loseSettleAnswer settles and then closes the connection without answering.
	loseSettleAnswer bool
	// redirectVerify and redirectSettle answer 307 to another server instead.
	redirectVerify, redirectSettle string
}

// facilitatorServer is a small standard x402 facilitator (POST /verify, POST /settle,
// GET /supported) that relays to an in-process onchain facilitator with its own relayer.
type facilitatorServer struct {
	*httptest.Server
	backend *onchain.Facilitator

	mu        sync.Mutex
	behaviour map[common.Address]behaviour
	calls     map[string]int
	settled   map[common.Address]string // tx hash of each payer's settlement
}

func newFacilitatorServer(t *testing.T, w *world) *facilitatorServer {
	t.Helper()
	relayer := w.relayer(t)
	oc, err := onchain.New(context.Background(), onchain.Config{Client: w.chain.Client, RelayerKey: relayer.Key,
		ReceiptPoll: 20 * time.Millisecond, ReceiptTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := &facilitatorServer{backend: oc, behaviour: map[common.Address]behaviour{}, calls: map[string]int{}, settled: map[common.Address]string{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *facilitatorServer) set(payer common.Address, b behaviour) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.behaviour[payer] = b
}

func (f *facilitatorServer) settledTx(payer common.Address) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.settled[payer]
}

func (f *facilitatorServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != facilitatorToken {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	f.calls[r.URL.Path]++
	f.mu.Unlock()
	if r.Method == http.MethodGet && r.URL.Path == "/supported" {
		s, _ := f.backend.Supported(r.Context())
		writeJSONBody(w, s)
		return
	}
	var body x402.FacilitatorRequest
	raw, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	var payer common.Address
	if exact, err := body.PaymentPayload.ExactEVM(); err == nil {
		payer = common.HexToAddress(exact.Authorization.From)
	}
	f.mu.Lock()
	b := f.behaviour[payer]
	f.mu.Unlock()
	switch r.URL.Path {
	case "/verify":
		if b.redirectVerify != "" {
			http.Redirect(w, r, b.redirectVerify+"/verify", http.StatusTemporaryRedirect)
			return
		}
		v, err := f.backend.Verify(r.Context(), body.PaymentPayload, body.PaymentRequirements)
		if err != nil {
			http.Error(w, "verify error", http.StatusInternalServerError)
			return
		}
		writeJSONBody(w, v.Response())
	case "/settle":
		if b.redirectSettle != "" {
			http.Redirect(w, r, b.redirectSettle+"/settle", http.StatusTemporaryRedirect)
			return
		}
		res, err := f.backend.Settle(r.Context(), body.PaymentPayload, body.PaymentRequirements)
		if err != nil {
			http.Error(w, "settle error", http.StatusInternalServerError)
			return
		}
		if res.State == facilitator.StateSettled {
			f.mu.Lock()
			f.settled[payer] = res.TxHash
			f.mu.Unlock()
		}
		if b.loseSettleAnswer {
			hangUp(w)
			return
		}
		writeJSONBody(w, res.Response())
	default:
		http.NotFound(w, r)
	}
}

// thief is a server a facilitator redirects to; it only counts what it receives.
type thief struct {
	*httptest.Server
	mu      sync.Mutex
	calls   int
	secrets []string
}

func newThief(t *testing.T) *thief {
	t.Helper()
	th := &thief{}
	th.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		th.mu.Lock()
		th.calls++
		if v := r.Header.Get("Authorization"); v != "" {
			th.secrets = append(th.secrets, v)
		}
		th.mu.Unlock()
		http.Error(w, "gotcha", http.StatusInternalServerError)
	}))
	t.Cleanup(th.Close)
	return th
}

// wantUntouched fails the test if a redirect was followed to the thief.
func (th *thief) wantUntouched(t *testing.T) {
	t.Helper()
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.calls != 0 {
		t.Errorf("a facilitator redirect was followed: the other host got %d requests, credentials %q", th.calls, th.secrets)
	}
}

func writeJSONBody(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// hangUp closes the connection without an answer: the answer is lost in transit.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// secretFree reports whether logs hold none of the secrets.
func secretFree(logs string, secrets ...string) bool {
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			return false
		}
	}
	return true
}
