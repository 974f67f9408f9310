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
// run; LOADTEST_PG, extra settings of the durable server (name=value,...).
package loadtest
