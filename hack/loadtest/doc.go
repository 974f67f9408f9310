// Package loadtest holds the gateway's load benchmark (BenchmarkGatewayLoad) and, in gen/, the
// load generator it runs in a separate process. Run it with
//
//	GOTOOLCHAIN=local CGO_ENABLED=0 go test -run '^$' -bench GatewayLoad -benchtime 1x -timeout 20m ./hack/loadtest/
//
// It measures, in one run and on loopback only: (a) the bare upstream, (b) a plain
// httputil.ReverseProxy to it, (c) the gateway's 402 challenge path and (d) the gateway's paid
// path with the mock facilitator and a real PostgreSQL ledger (fsync and synchronous_commit on).
// The gateway runs as its own process, cmd/gateway built twice: with cgo (libsecp256k1,
// statically linked, as the Dockerfile builds it; needs a C toolchain) and in pure Go.
//
// The generator is a minimal HTTP/1.1 client on raw TCP connections: one keep-alive connection
// per client goroutine, the request bytes built once, the response's status line and framing
// headers parsed and its body (Content-Length or chunked) discarded, redialling after an error or
// a Connection: close. On this 2-core machine the generator, the gateway, the upstream and
// PostgreSQL share the cores, and net/http's client cost 2.5-3 times as much CPU per request:
// that CPU was taken from the system under test. The published figures of comparable proxies
// come from wrk-class generators, which cost as little.
//
// Throughput on a shared machine is noisy; CPU time per request, by process, is steadier and
// shows where the cost is. Each case's line ends with it ("cpu µs/req"), sampled by the generator
// at the start and end of the measured window and divided by the requests measured: gen (the
// generator, getrusage), gateway (its pid), postgres (every process named postgres: both
// servers, their backends, and any other PostgreSQL on the machine; a backend that exits within
// the window takes its CPU time with it), bench (this process: the upstream and the reverse
// proxy) and machine (the busy time of all CPUs from /proc/stat, including other users' work;
// "busy" is its share of the window). /proc counts in USER_HZ ticks, 100 per second on Linux:
// 10 ms of CPU time over the window. The figures per request rise at low request rates, where
// each request pays for waking idle threads.
//
// Environment: LOADTEST_DURATION (default 10s per case); LOADTEST_BASELINE, another source
// tree of the module (e.g. from `git archive <commit>`) whose gateway is measured in the same
// run; LOADTEST_PG, extra settings of the durable server (name=value,...); LOADTEST_REFERENCE,
// the absolute path of a reference server (below), measured in the same run; LOADTEST_CASES, a
// regular expression: only the cases whose line (name and "c=<clients>") matches are measured,
// to profile one case (the ratios of such a run mean nothing); LOADTEST_STATEMENTS=1 loads
// pg_stat_statements into the durable server and prints, after each paid case, the statements
// that took most of PostgreSQL's time in that gateway's database, per row and with their WAL.
//
// # The reference
//
// With LOADTEST_REFERENCE set, the run also measures the reference x402 Go middleware
// (coinbase/x402, Go module github.com/x402-foundation/x402/go, package http/nethttp; measured at
// commit dd927a26cfef), with the same generator and CPU figures ("gateway" is then its process):
// (c-ref) its 402 path at 64 clients and (d-ref) its paid path at 16 and 64, with the ratios
// (c)/(c-ref) and (d64)/(d-ref64) against the gateway with cgo and the durable ledger; and
// (d-ref+insert), the same reference recording each settled payment the way InsForge's x402 guide
// does (one INSERT into the guide's table after settle, durable commit, in a database of the
// same PostgreSQL server), the fair anchor for a gateway that records every payment. The
// benchmark fails if the binary does not start, exits, or answers anything but 402 (c-ref) or 200
// (d-ref). The reference checks no signature itself and writes no ledger: the paid path's ratio
// is the cost of the gateway's checks, ledger and proxying over the middleware alone.
//
// The reference server is hack/loadtest/reference, a small program of ours in its own Go module
// (outside this module's build and tests); none of the reference's code is committed. It serves
// GET /paid behind nethttp.PaymentMiddlewareFromHTTPServer: one "exact" option on eip155:196,
// price "$0.01", payTo 0x1111111111111111111111111111111111111111, and a money parser (the
// reference's evm scheme has no default token on eip155:196) mapping it to 10000 of asset
// 0x4ae46a509f6b1d9056937ba4500cb143933d2dc8 with extra {"name": "Global Dollar", "version":
// "1"}: the gateway's bench config, so that the generator's payments match. The handler behind
// it writes 256 bytes of application/json in process, like the upstream here. The facilitator is
// an in-process x402.FacilitatorClient, as in the reference's middleware tests, answering
// GetSupported with {x402Version 2, exact, eip155:196}, Verify valid and Settle success without
// checking anything. The program takes -listen host:port and prints nothing but errors. The
// reference's module is not served by the module proxy, so its source is cloned next to the
// program (ignored by git) and used through a replace directive:
//
//	cd hack/loadtest/reference
//	git clone https://github.com/coinbase/x402 x402 && git -C x402 checkout dd927a26cfef
//	GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -o x402ref .
//	cd ../../.. && LOADTEST_REFERENCE=$PWD/hack/loadtest/reference/x402ref GOTOOLCHAIN=local CGO_ENABLED=0 \
//		go test -run '^$' -bench GatewayLoad -benchtime 1x -timeout 25m ./hack/loadtest/
package loadtest
