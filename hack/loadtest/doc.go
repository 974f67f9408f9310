// Package loadtest holds the gateway's load benchmark (BenchmarkGatewayLoad) and, in gen/, the
// load generator it runs in a separate process. Run it with
//
//	GOTOOLCHAIN=local CGO_ENABLED=0 go test -run '^$' -bench GatewayLoad -benchtime 1x -timeout 20m ./hack/loadtest/
//
// It measures, in one run and on loopback only: (a) the bare upstream, (b) a plain
// httputil.ReverseProxy to it, (c) the gateway's 402 challenge path and (d) the gateway's paid
// path with the mock facilitator and a real PostgreSQL ledger (fsync and synchronous_commit on).
package loadtest
