package gateway

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net/http"
	"sync"
	"time"
)

// replayBudget bounds the memory of stored responses per gateway process. A route's
// replayWindow is at most five minutes, so the budget holds that long of a route's paid
// responses up to this size; older ones go first.
const replayBudget = 64 << 20

// requestPrint identifies "the very same request" for a replay: method, canonical path, raw
// query and a hash of the body.
type requestPrint [sha256.Size]byte

// fingerprint reads r's body (already bounded by MaxBytesReader), puts it back for the upstream
// and returns the request's print.
func fingerprint(r *http.Request) (requestPrint, error) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return requestPrint{}, err
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	h := sha256.New()
	bodySum := sha256.Sum256(body)
	for _, part := range [][]byte{[]byte(r.Method), []byte(r.URL.EscapedPath()), []byte(r.URL.RawQuery), bodySum[:]} {
		// Length-prefixed, so that no two requests hash the same concatenation.
		h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(part))))
		h.Write(part)
	}
	var p requestPrint
	copy(p[:], h.Sum(nil))
	return p, nil
}

// replayCache holds the responses of settled payments on routes with a replayWindow, so that a
// payer whose response was lost gets it again without a second upstream call.
type replayCache struct {
	now    func() time.Time
	budget int

	mu    sync.Mutex
	size  int
	order *list.List               // *storedResponse, oldest first
	byID  map[string]*list.Element // payment id
}

type storedResponse struct {
	id      string
	print   requestPrint
	expires time.Time
	resp    *buffered
	size    int
}

func newReplayCache(now func() time.Time, budget int) *replayCache {
	return &replayCache{now: now, budget: budget, order: list.New(), byID: map[string]*list.Element{}}
}

// store keeps resp for payment id until now+window. Responses larger than an eighth of the
// budget are not kept (the payer then gets the 402 with its receipt, as without a window).
func (c *replayCache) store(id string, p requestPrint, window time.Duration, resp *buffered) {
	size := len(resp.body) + 512
	for k, v := range resp.header {
		size += len(k)
		for _, s := range v {
			size += len(s)
		}
	}
	if size > c.budget/8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byID[id]; e != nil {
		c.remove(e)
	}
	now := c.now()
	for e := c.order.Front(); e != nil && (c.size+size > c.budget || !now.Before(e.Value.(*storedResponse).expires)); e = c.order.Front() {
		c.remove(e)
	}
	c.byID[id] = c.order.PushBack(&storedResponse{id: id, print: p, expires: now.Add(window), resp: resp, size: size})
	c.size += size
}

// lookup returns the stored response of payment id if it is for the same request and the
// window is still open.
func (c *replayCache) lookup(id string, p requestPrint) *buffered {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byID[id]
	if e == nil {
		return nil
	}
	s := e.Value.(*storedResponse)
	if !c.now().Before(s.expires) {
		c.remove(e)
		return nil
	}
	if s.print != p {
		return nil
	}
	return s.resp
}

func (c *replayCache) remove(e *list.Element) {
	s := c.order.Remove(e).(*storedResponse)
	delete(c.byID, s.id)
	c.size -= s.size
}
