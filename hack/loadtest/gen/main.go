// Command gen is the load generator of the gateway benchmark. It runs in its own process, sends
// requests from -c concurrent clients for -d (after a warm-up), and prints one JSON line with
// the request rate and latency percentiles. With -pay it first fetches the 402 challenge and
// pre-signs up to -max payments with fresh nonces, so signing costs nothing during the run.
package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/insforge/integrations-operator/internal/x402"
	"github.com/insforge/integrations-operator/internal/x402/eip3009"
)

// Result is the generator's output.
type Result struct {
	Requests int64         `json:"requests"`
	Seconds  float64       `json:"seconds"`
	RPS      float64       `json:"rps"`
	P50ms    float64       `json:"p50_ms"`
	P99ms    float64       `json:"p99_ms"`
	Status   map[int]int64 `json:"status"`
	Errors   int64         `json:"errors"`
	Signed   int           `json:"signed,omitempty"`
}

func main() {
	url := flag.String("url", "", "target URL")
	conc := flag.Int("c", 16, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "measured duration")
	warm := flag.Duration("warmup", 2*time.Second, "warm-up before measuring")
	pay := flag.Bool("pay", false, "send pre-signed payments (one per request)")
	maxReq := flag.Int("max", 60000, "bound on requests (and pre-signed payments)")
	flag.Parse()
	if err := run(*url, *conc, *dur, *warm, *pay, *maxReq); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(url string, conc int, dur, warm time.Duration, pay bool, maxReq int) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, MaxConnsPerHost: conc * 2}}
	var headers []string
	if pay {
		var err error
		if headers, err = presign(client, url, maxReq); err != nil {
			return err
		}
	}
	var next atomic.Int64
	var measuring atomic.Bool
	var errs atomic.Int64
	type sample struct {
		lat    []time.Duration
		status map[int]int64
	}
	samples := make([]sample, conc)
	ctx, cancel := context.WithTimeout(context.Background(), warm+dur)
	defer cancel()
	var start time.Time
	var startOnce sync.Once
	time.AfterFunc(warm, func() { startOnce.Do(func() { start = time.Now(); measuring.Store(true) }) })
	var wg sync.WaitGroup
	for i := range conc {
		samples[i].status = map[int]int64{}
		wg.Go(func() {
			s := &samples[i]
			for ctx.Err() == nil {
				n := next.Add(1)
				if n > int64(maxReq) {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if pay {
					req.Header.Set(x402.HeaderPaymentSignature, headers[n-1])
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if measuring.Load() && ctx.Err() == nil {
					s.lat = append(s.lat, time.Since(t0))
					s.status[resp.StatusCode]++
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var lat []time.Duration
	res := Result{Status: map[int]int64{}, Errors: errs.Load(), Signed: len(headers)}
	for _, s := range samples {
		lat = append(lat, s.lat...)
		for k, v := range s.status {
			res.Status[k] += v
		}
	}
	if len(lat) == 0 {
		return fmt.Errorf("no responses measured (requests bounded by -max %d?)", maxReq)
	}
	slices.Sort(lat)
	res.Requests = int64(len(lat))
	res.Seconds = min(elapsed, dur).Seconds()
	res.RPS = float64(res.Requests) / res.Seconds
	res.P50ms = float64(lat[len(lat)/2].Microseconds()) / 1000
	res.P99ms = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	return json.NewEncoder(os.Stdout).Encode(res)
}

// presign fetches the challenge and signs n payments spread over 64 payer keys.
func presign(client *http.Client, url string, n int) ([]string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	keys := make([]*ecdsa.PrivateKey, 64)
	for i := range keys {
		if keys[i], err = crypto.GenerateKey(); err != nil {
			return nil, err
		}
	}
	out := make([]string, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				p, err := eip3009.NewSigner(keys[i%len(keys)]).Sign(pr.Accepts[0], pr.Resource)
				if err == nil {
					out[i], err = x402.EncodePaymentSignature(p)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	return out, nil
}
