// Package rls is the database engine of the AuthIntegration resource: it turns a plain description
// of which tables belong to which user (Spec) into PostgreSQL row-level security on an InsForge
// database, keeps it there, and proves that it works.
//
// The model has five steps, each usable on its own:
//
//   - desired: Plan renders the complete, ordered, rerun-safe statements for a Spec (pure).
//   - observed: Observe reads the catalogs (pg_proc, pg_class, pg_attribute, pg_index, pg_policy,
//     privileges and ACLs) into a State.
//   - diff: Diff compares a Spec with a State and returns named Differences, each carrying the
//     statements that fix exactly it, or a guard-rail error (uuid column, missing table, policy
//     owned by another integration).
//   - apply: Reconcile does observe → diff and, in ModeApply, executes only the differing
//     statements in one transaction, under advisory locks, optionally as another role. When
//     nothing differs it executes nothing (Result.Executed is 0).
//   - verify: Verify exercises the result as a synthetic authenticated user in a transaction that
//     is always rolled back.
//
// Ownership and naming: policies are named <integration>_<table>_<command> and carry a comment
// "insforge-integrations-operator owner=<owner>" where owner is the integration's unique key
// (namespace/name). The comment, not the name, decides ownership: a policy commented for another
// owner on the same table and command is a ConflictError, a policy commented for this owner that
// is no longer desired is dropped, and policies without the comment (written by hand) are left
// alone. Teardown drops only this owner's policies, and drops the shared helper
// public.requesting_user_id() only when nothing else depends on it.
//
// From a controller: keep one pgpool.Cache; Acquire(ctx, "<ns>/<name>", dsn) per reconcile; call
// Reconcile with the spec's mode; on success set SQLApplied=True and Drifted from
// Result.Drifted()/Summary(), then Verify and set RLSVerified from Verification.OK()/Summary().
// On error, IsTerminal(err) means Stalled=True with err's message (guard rails, bad spec, bad
// credentials, missing privileges), otherwise Ready=False and retry with backoff. On deletion
// with policy Delete call Teardown, then the cache's Release.
package rls
