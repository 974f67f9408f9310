// Package ledger is the x402 gateway's payments ledger in PostgreSQL.
//
// One row per payment, keyed by the payer's (address, EIP-3009 nonce), moves through
//
//	verifying ──MarkSettling──▶ settling ──MarkSettled──▶ settled
//	    │                          │  ▲
//	 Release                       │  └──MarkSettled (resolver / spool replay)
//	    ▼                          ├──MarkPending──▶ pending ──▶ settled | failed
//	 released                      └──MarkFailed───▶ failed
//
// The row is written before the facilitator's settle is called (Claim, then MarkSettling), so a
// settlement can never happen without a durable record of its intent. Outcomes that cannot be
// written after settle go to a local Spool and are replayed later; rows whose outcome is unknown are
// resolved by RunResolver, which one replica runs at a time under a Postgres advisory lock.
//
// Migrate creates and upgrades the table (versioned, idempotent, compatible with InsForge's
// x402_payments guide table), its notification trigger, and the InsForge realtime channel when the
// realtime schema exists. Totals and Listen serve the PaymentRoute controller.
//
// The package knows nothing about Kubernetes or any facilitator: callers inject a Resolver.
// docs/ledger.md describes the design and the call sequences.
package ledger
