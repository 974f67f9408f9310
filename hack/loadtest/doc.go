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
// Environment: LOADTEST_DURATION (default 10s per case); LOADTEST_BASELINE, another source
// tree of the module (e.g. from `git archive <commit>`) whose gateway is measured in the same
// run; LOADTEST_PG, extra settings of the durable server (name=value,...).
package loadtest
