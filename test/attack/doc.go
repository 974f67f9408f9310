// Package attack is the black-box attack suite of the x402 gateway (issue 12): it runs
// cmd/gateway as a process against a real PostgreSQL ledger, the simulated EVM chain served
// over JSON-RPC, real signatures and an upstream that normalises paths the way nginx, Express
// and Tomcat do, sends what an attacker would send, and asserts the answer the gateway must
// give, the upstream's call count and, where money is involved, the ledger rows and balances.
//
// The tests are in the _test.go files; docs/gateway.md ("Threat model") lists the attacks and
// their answers.
package attack
