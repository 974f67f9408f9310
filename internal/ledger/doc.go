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
// released and failed rows are claimed again in place (a new claim attempt, claims + 1). Every
// write but settled is fenced by the attempt's Ticket, so a stale outcome never moves a later
// attempt's row; a settled outcome (a tx hash) is applied from any state but settled, whatever
// attempt owns the row. At most one payment per (route, payer) is verifying or settling at a time
// (Claim says ErrPayerBusy). A settled row is served (the payer got the content) or not yet
// (settled by the resolver; MarkServed serves it once).
//
// The row is written before the facilitator's settle is called (Claim, then MarkSettling), so a
// settlement can never happen without a durable record of its intent. Outcomes that cannot be
// written after settle go to a local Spool and are replayed later; rows whose outcome is unknown are
// resolved by RunResolver, which one replica runs at a time per (table, route) under a Postgres
// advisory lock, and which also deletes the route's old released rows.
//
// Migrate creates and upgrades the table (versioned, idempotent, compatible with InsForge's
// x402_payments guide table), its notification trigger, and the InsForge realtime channel when the
// realtime schema exists. Totals and Listen serve the PaymentRoute controller.
//
// The package knows nothing about Kubernetes or any facilitator: callers inject a Resolver.
// docs/ledger.md describes the design and the call sequences.
package ledger
