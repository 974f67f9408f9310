package ledger

import (
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// statements are the SQL texts of one ledger, built once with its quoted table name.
type statements struct {
	claim string
	// claimBatch is claim for many intents (one array per column); it returns the won rows.
	claimBatch string
	// claimSettling and claimSettlingBatch are claim and claimBatch for ClaimSettling: the row is
	// written settling, and committed synchronously.
	claimSettling      string
	claimSettlingBatch string
	get                string
	state              string
	settling           string
	// settlingBatch is settling for many tickets (uuid and claims arrays); it returns the id
	// and claims of each row it marked.
	settlingBatch string
	settled       string
	// settledBatch is settled for many rows (uuid, tx hash and summary arrays); it returns the
	// id and tx hash of each row it changed.
	settledBatch string
	failed       string
	pending      string
	release      string
	served       string
	unserve      string
	unknown      string
	due          string
	abandon      string
	retention    string
	resyncClear  string
	resyncTotals string
	foldTotals   string
	unfinished   string
	totalsRoute  string
	totalsAll    string
}

// paymentCols is the column list scanPayment reads, without the payload.
const paymentCols = `id::text, payer_address, coalesce(nonce, ''), coalesce(route, ''), endpoint,
	coalesce(resource, ''), amount, coalesce(network, ''), coalesce(asset, ''), coalesce(pay_to, ''),
	coalesce(chain, ''), coalesce(facilitator, ''), mock, status, coalesce(tx_hash, ''),
	coalesce(failure_reason, ''), coalesce(response_summary, ''), attempts, claims,
	created_at, updated_at, settled_at, served`

// reclaim is the ON CONFLICT clause of the single and the batched claim: a released or failed
// row (no money moved) is claimed again in place, as a fresh claim: the new request's fields,
// the next ticket (claims + 1) and no outcome. Any other row is left alone.
const reclaim = `ON CONFLICT (payer_address, nonce) DO UPDATE SET
	route = EXCLUDED.route, endpoint = EXCLUDED.endpoint, resource = EXCLUDED.resource,
	amount = EXCLUDED.amount, network = EXCLUDED.network, asset = EXCLUDED.asset,
	pay_to = EXCLUDED.pay_to, chain = EXCLUDED.chain, facilitator = EXCLUDED.facilitator,
	mock = EXCLUDED.mock, payload = EXCLUDED.payload, status = {CLAIM_STATUS}, tx_hash = NULL,
	failure_reason = NULL, response_summary = NULL, attempts = 0, claims = p.claims + 1,
	settled_at = NULL, served = false, updated_at = now()
WHERE p.status IN ('released', 'failed')`

// asyncCommitCTE turns synchronous_commit off for the statement's own (implicit) transaction:
// its commit returns without waiting for the WAL flush. set_config(..., true) is SET LOCAL, so
// the setting ends with that transaction and never reaches the next statement on the connection.
// Statements using it must run on the pool, never inside an explicit transaction.
//
// Only the claims of Claim (single and batched) and the release use it, and that is safe because neither moves money:
//
//   - A claim lost in a crash (acknowledged, not yet flushed) means the gateway's next statement,
//     the synchronous MarkSettling, fails (the server is down, or restarted without the row), so
//     settle is never called. WAL is flushed in order: when MarkSettling's commit is durable, so
//     is every earlier commit, the claim included. A claim that loses a race (no write) is not
//     affected. Other replicas may see the claim before it is durable; if it is then lost, the
//     payer's retry simply claims again.
//   - A release lost in a crash leaves the row verifying, and the resolver releases abandoned
//     claims; or settling (a claim of ClaimSettling), and the resolver finds on chain that the
//     authorization was never used and fails the row once it can no longer be. Either way the
//     payer can only reuse the payment later than otherwise.
//
// ClaimSettling's claims, MarkSettling and every outcome (settled, failed, pending) stay synchronous: settle must not
// start before the settling row is durable, and an acknowledged outcome must survive a crash.
const asyncCommitCTE = `async AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))`

// syncCommitCTE takes asyncCommitCTE's place in the claims of ClaimSettling, whose commit must be
// durable before they return: it sets nothing, so the server's synchronous_commit applies.
const syncCommitCTE = `async AS MATERIALIZED (SELECT NULL)`

// keptCTE marks the statement's transaction as one that keeps the totals summary itself, so the
// summary's row triggers (for other writers, see migration4) stay out of it. set_config(..., true)
// is SET LOCAL: it ends with the statement's own transaction, so statements using it run on the
// pool, never inside an explicit transaction (where later statements would be skipped too). The
// UPDATE joins kept, so it is evaluated before any row changes.
const keptCTE = `kept AS MATERIALIZED (SELECT set_config('x402.summary', 'kept', true))`

// tallyCTE adds the rows a settled statement (CTE upd) newly settled to the summary: one
// upsert per (route, mock) per statement, in one lock order. A newly settled row is one whose
// settled_at this statement set: now() is its own transaction's start, which another
// transaction's settled_at equals only if both began in the same microsecond. Rows that were
// settled already (an idempotent repeat) keep theirs, and are not counted again.
const tallyCTE = `tally AS (
	INSERT INTO {TOT} AS t (route, mock, shard, settled_count, settled_amount, last_settled_at, last_tx_hash)
	SELECT route, mock, pg_backend_pid() % 8, count(*), coalesce(sum(` + settledContribution + `), 0),
		max(settled_at), max(tx_hash)
	FROM upd WHERE settled_at = now() AND route IS NOT NULL
	GROUP BY route, mock ORDER BY route, mock
	ON CONFLICT (route, mock, shard) DO UPDATE SET
		settled_count = t.settled_count + EXCLUDED.settled_count,
		settled_amount = t.settled_amount + EXCLUDED.settled_amount,
		last_tx_hash = CASE WHEN t.last_settled_at IS NULL OR EXCLUDED.last_settled_at >= t.last_settled_at
			THEN EXCLUDED.last_tx_hash ELSE t.last_tx_hash END,
		last_settled_at = greatest(t.last_settled_at, EXCLUDED.last_settled_at)
)`

// unsettled are the states a settled outcome is applied from: all but settled.
const unsettled = `('verifying', 'settling', 'pending', 'failed', 'released')`

func buildStatements(n names) statements {
	t := n.qTable
	// tallyCTE holds {TOT} itself: a Replacer does not rescan what it put in.
	tally := strings.ReplaceAll(tallyCTE, "{TOT}", n.qTotals)
	r := strings.NewReplacer("{T}", t, "{TOT}", n.qTotals, "{DELTA}", n.qTotalsDelta, "{KEPT}", keptCTE, "{TALLY}", tally,
		"{COLS}", paymentCols, "{ASYNC_CTE}", asyncCommitCTE, "{RECLAIM}", reclaim)
	st := statements{
		get:   r.Replace(`SELECT {COLS}, payload FROM {T} WHERE id = $1`),
		state: r.Replace(`SELECT status, coalesce(tx_hash, ''), claims FROM {T} WHERE id = $1`),

		// Idempotent for the same ticket, so a retry after a lost reply does not block settle.
		settling: r.Replace(`UPDATE {T} SET status = 'settling', updated_at = now()
WHERE id = $1 AND claims = $2 AND status IN ('verifying', 'settling')`),
		// The batched forms wrap their state guard in IS TRUE (the same condition, status is NOT
		// NULL) so that no index can answer it: the planner must reach each row through the
		// primary key. Left bare, the planner may scan every unfinished row, or route_idx,
		// through a bitmap, once per batch, whenever the statistics make that look cheaper than
		// n key lookups; under load that scan cost more than the rest of the paid path's
		// statements together (docs/benchmarks.md; plan_test.go checks the plans).
		settlingBatch: r.Replace(`UPDATE {T} AS p SET status = 'settling', updated_at = now()
FROM unnest($1::uuid[], $2::integer[]) AS v(id, claims)
WHERE p.id = v.id AND p.claims = v.claims AND (p.status IN ('verifying', 'settling')) IS TRUE
RETURNING p.id::text, p.claims`),

		// A tx hash is evidence about the authorization itself (this payer's nonce moved the
		// money), not about one claim attempt: it is applied whichever attempt owns the row and
		// from every unsettled state, including failed (a stronger verdict than a failure) and
		// verifying or released (a later attempt, which can then never settle the nonce again).
		// Idempotent for the same tx hash; another hash is refused. served is the outcome's when
		// the row becomes settled, and only ever gained when it was already settled.
		settled: r.Replace(`WITH {KEPT}, upd AS (
	UPDATE {T} AS p SET status = 'settled', tx_hash = $2,
	response_summary = coalesce(nullif($3, ''), p.response_summary), failure_reason = NULL,
	settled_at = coalesce(p.settled_at, now()),
	served = CASE WHEN p.status = 'settled' THEN p.served OR $4 ELSE $4 END, updated_at = now()
	FROM kept
	WHERE p.id = $1 AND (p.status IN ` + unsettled + ` OR (p.status = 'settled' AND p.tx_hash = $2))
	RETURNING p.id, p.tx_hash, p.route, p.mock, p.amount, p.settled_at
), {TALLY}
SELECT id FROM upd`),

		settledBatch: r.Replace(`WITH {KEPT}, upd AS (
	UPDATE {T} AS p SET status = 'settled', tx_hash = v.tx_hash,
	response_summary = coalesce(nullif(v.summary, ''), p.response_summary), failure_reason = NULL,
	settled_at = coalesce(p.settled_at, now()),
	served = CASE WHEN p.status = 'settled' THEN p.served OR v.served ELSE v.served END, updated_at = now()
	FROM unnest($1::uuid[], $2::text[], $3::text[], $4::boolean[]) AS v(id, tx_hash, summary, served), kept
	WHERE p.id = v.id AND (p.status IN ` + unsettled + ` OR (p.status = 'settled' AND p.tx_hash = v.tx_hash)) IS TRUE
	RETURNING p.id, p.tx_hash, p.route, p.mock, p.amount, p.settled_at
), {TALLY}
SELECT id::text, tx_hash FROM upd`),

		// Fenced by the claim attempt ($2, the ticket's Seq; 0 only for spool records written
		// before tickets): a verdict about an earlier attempt never moves a later one's row.
		failed: r.Replace(`UPDATE {T} SET status = 'failed', failure_reason = $4,
	tx_hash = coalesce(nullif($3, ''), tx_hash), updated_at = now()
WHERE id = $1 AND ($2::integer = 0 OR claims = $2) AND status IN ('settling', 'pending', 'failed')`),

		pending: r.Replace(`UPDATE {T} SET status = 'pending', failure_reason = $4,
	tx_hash = coalesce(nullif($3, ''), tx_hash), updated_at = now()
WHERE id = $1 AND ($2::integer = 0 OR claims = $2) AND status IN ('settling', 'pending')`),

		// Only before settle: once settling, money may have moved and only an outcome may follow.
		// Commits asynchronously (see asyncCommitCTE).
		release: r.Replace(`WITH {ASYNC_CTE}
UPDATE {T} SET status = 'released', failure_reason = $3, updated_at = now() FROM async
WHERE id = $1 AND claims = $2 AND status IN ('verifying', 'settling', 'released')`),

		// A replay of a settled payment the payer never got (settled by the resolver) is served
		// once: exactly one concurrent caller flips the flag.
		served:  r.Replace(`UPDATE {T} SET served = true WHERE id = $1 AND status = 'settled' AND NOT served`),
		unserve: r.Replace(`UPDATE {T} SET served = false WHERE id = $1 AND status = 'settled' AND served`),

		// The resolver's "still unknown": count the attempt and restart the row's backoff clock.
		// Fenced like failed and pending.
		unknown: r.Replace(`UPDATE {T} SET status = 'pending', attempts = attempts + 1,
	tx_hash = coalesce(nullif($3, ''), tx_hash), failure_reason = coalesce(nullif($4, ''), failure_reason),
	updated_at = now()
WHERE id = $1 AND claims = $2 AND status IN ('settling', 'pending')`),

		// Rows of one route ($4) due for resolution: older than the bound, doubled per attempt up
		// to a cap. Every resolver scan is per route: another route's rows are its resolver's.
		// Served by the route index (route, status, ...), like the other per-route scans.
		due: r.Replace(`SELECT {COLS}, payload FROM {T}
WHERE status IN ('settling', 'pending') AND route = $4
	AND updated_at < now() - least($1::float8 * power(2, least(attempts, 30)), $2::float8) * interval '1 second'
ORDER BY updated_at
LIMIT $3`),

		// A claim of the route ($4) stuck in verifying never reached MarkSettling, so no settle
		// was called: release it.
		abandon: r.Replace(`UPDATE {T} SET status = 'released', failure_reason = $2, updated_at = now()
WHERE id IN (SELECT id FROM {T} WHERE status = 'verifying' AND route = $4
		AND updated_at < now() - $1::float8 * interval '1 second' ORDER BY updated_at LIMIT $3)
	AND status = 'verifying'`),

		// Released rows of the route ($1) older than the retention ($2 seconds), at most $3 per
		// statement, through the partial released_idx. A released row moved no money; deleting it
		// only forgets the attempt (the payer's signed payment may then be claimed afresh).
		retention: r.Replace(`DELETE FROM {T} WHERE id IN (SELECT id FROM {T} WHERE status = 'released' AND route = $1
		AND updated_at < now() - $2::float8 * interval '1 second' ORDER BY updated_at LIMIT $3)
	AND status = 'released'`),

		totalsRoute: r.Replace(totalsSQL("route = $1")),
		// Moves other writers' changes (migration4) into the summary, in one lock order. A
		// concurrent fold waits on the rows this one deletes and then finds them gone.
		foldTotals: r.Replace(`WITH d AS (DELETE FROM {DELTA} RETURNING *)
INSERT INTO {TOT} AS t (route, mock, shard, settled_count, settled_amount, last_settled_at, last_tx_hash)
SELECT route, mock, 0, sum(settled_count), sum(settled_amount), max(settled_at),
	(array_agg(tx_hash ORDER BY settled_at DESC NULLS LAST, tx_hash DESC) FILTER (WHERE settled_count > 0))[1]
FROM d GROUP BY route, mock ORDER BY route, mock
ON CONFLICT (route, mock, shard) DO UPDATE SET
	settled_count = t.settled_count + EXCLUDED.settled_count,
	settled_amount = t.settled_amount + EXCLUDED.settled_amount,
	last_tx_hash = CASE WHEN EXCLUDED.last_settled_at IS NOT NULL AND
		(t.last_settled_at IS NULL OR EXCLUDED.last_settled_at >= t.last_settled_at)
		THEN EXCLUDED.last_tx_hash ELSE t.last_tx_hash END,
	last_settled_at = greatest(t.last_settled_at, EXCLUDED.last_settled_at)`),
		// Recompute one route's summary from its rows, in two statements (one statement cannot
		// delete a key and insert it again); the caller holds a lock that keeps writers out and
		// has folded the deltas.
		resyncClear: r.Replace(`DELETE FROM {TOT} WHERE route = $1`),
		resyncTotals: r.Replace(`INSERT INTO {TOT} (route, mock, shard, settled_count, settled_amount, last_settled_at, last_tx_hash)
SELECT route, mock, 0, count(*), coalesce(sum(` + settledContribution + `), 0),
	max(settled_at), (array_agg(tx_hash ORDER BY settled_at DESC NULLS LAST, tx_hash DESC))[1]
FROM {T} WHERE status = 'settled' AND route = $1
GROUP BY route, mock`),
		totalsAll:  r.Replace(totalsSQL("route IS NOT NULL")),
		unfinished: r.Replace(`SELECT count(*) FROM {T} WHERE route = $1 AND status IN ('pending', 'settling')`),
	}
	st.claim, st.claimBatch = claimStatements(r, `'verifying'`, asyncCommitCTE)
	st.claimSettling, st.claimSettlingBatch = claimStatements(r, `'settling'`, syncCommitCTE)
	return st
}

// claimStatements builds the single and the batched claim writing rows with status (an SQL
// literal) in a transaction whose commit mode commitCTE sets (a CTE named async).
func claimStatements(r *strings.Replacer, status, commitCTE string) (alone, batch string) {
	pre := func(sql string) string {
		sql = strings.ReplaceAll(sql, "{RECLAIM}", reclaim)
		return r.Replace(strings.NewReplacer("{CLAIM_STATUS}", status, "{ASYNC_CTE}", commitCTE).Replace(sql))
	}
	// Insert the claim; a released or failed row (no money moved) is claimed again in place.
	// Any other existing row is returned as it is. The fallback SELECT can miss a row whose
	// inserter committed after this statement's snapshot; Claim retries that case.
	// The INSERT reads from the commit-mode CTE so that its setting is in force before the row
	// is written.
	alone = pre(`WITH {ASYNC_CTE}, ins AS (
	INSERT INTO {T} AS p (payer_address, nonce, route, endpoint, resource, amount, network, asset,
		pay_to, chain, facilitator, mock, payload, status)
	SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::boolean, $13::jsonb, {CLAIM_STATUS} FROM async
	{RECLAIM}
	RETURNING {COLS}
)
SELECT true, * FROM ins
UNION ALL
SELECT false, {COLS} FROM {T}
WHERE payer_address = $1 AND nonce = $2 AND NOT EXISTS (SELECT 1 FROM ins)`)

	// The batched claim: the same insert for many intents. Only won
	// rows are returned; an intent whose row exists and is not claimable is claimed again
	// alone, which returns that row. An intent whose payer already has a payment in flight on
	// its route is left out (and claimed alone, which says ErrPayerBusy) rather than sent to
	// the insert, where it would fail the whole batch on the in-flight index. The probe is a
	// LATERAL ... LIMIT 1, which can only run once per intent, as one lookup in that small
	// partial index; as NOT EXISTS it was planned as a hash anti-join over a bitmap scan of
	// the whole index, dead entries included (TestBatchedClaimProbesTheInflightIndexPerIntent).
	// A row committed by another replica after this statement's snapshot still fails the
	// batch, which then falls back to claiming each intent alone.
	batch = pre(`WITH {ASYNC_CTE}, v AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
		$7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::boolean[], $13::text[])
		AS v(payer, nonce, route, endpoint, resource, amount, network, asset, pay_to, chain, facilitator, mock, payload)
)
INSERT INTO {T} AS p (payer_address, nonce, route, endpoint, resource, amount, network, asset,
	pay_to, chain, facilitator, mock, payload, status)
SELECT v.payer, v.nonce, v.route, v.endpoint, v.resource, v.amount, v.network, v.asset, v.pay_to,
	v.chain, v.facilitator, v.mock, v.payload::jsonb, {CLAIM_STATUS} FROM v CROSS JOIN async
	LEFT JOIN LATERAL (SELECT true AS busy FROM {T} AS b WHERE b.route = v.route AND b.payer_address = v.payer
		AND b.status IN ('verifying', 'settling') LIMIT 1) AS b ON true
WHERE b.busy IS NULL
{RECLAIM}
RETURNING {COLS}`)
	return alone, batch
}

// totalsSQL aggregates settled and unfinished rows per (route, mock) and joins the latest
// settlement. Amounts that are not decimal integers (foreign rows) are left out of the sum.
// Stuck counts unfinished rows created more than an hour ago (by the database's clock).
func totalsSQL(filter string) string {
	// Settled tallies come from the summary table (one row per route, mock and shard; see
	// migration4), so they cost the same however many payments the ledger holds. Unfinished
	// payments are few and come from the rows, through the route index.
	return `WITH s AS (
	SELECT route, mock, sum(settled_count) AS settled, sum(settled_amount)::text AS amount,
		(array_agg(last_tx_hash ORDER BY last_settled_at DESC NULLS LAST, last_tx_hash DESC))[1] AS tx_hash,
		max(last_settled_at) AS settled_at
	FROM {TOT} WHERE ` + filter + `
	GROUP BY route, mock
), u AS (
	SELECT route, mock,
		count(*) FILTER (WHERE status = 'pending') AS pending,
		count(*) FILTER (WHERE status = 'settling') AS settling,
		count(*) FILTER (WHERE created_at < now() - interval '1 hour') AS stuck
	FROM {T} WHERE ` + filter + ` AND status IN ('pending', 'settling')
	GROUP BY route, mock
)
SELECT route, mock, coalesce(s.settled, 0)::bigint, coalesce(s.amount, '0'), coalesce(u.pending, 0),
	coalesce(u.settling, 0), coalesce(s.tx_hash, ''), s.settled_at, coalesce(u.stuck, 0)
FROM s FULL JOIN u USING (route, mock)`
}

// scanPayment reads paymentCols (and payload when withPayload) from row.
func scanPayment(row pgx.Row, withPayload bool) (Payment, error) {
	var p Payment
	var status string
	var settledAt *time.Time
	dest := []any{&p.ID, &p.Payer, &p.Nonce, &p.Route, &p.Endpoint, &p.Resource, &p.Amount, &p.Network,
		&p.Asset, &p.PayTo, &p.Chain, &p.Facilitator, &p.Mock, &status, &p.TxHash, &p.FailureReason,
		&p.ResponseSummary, &p.Attempts, &p.Claims, &p.CreatedAt, &p.UpdatedAt, &settledAt, &p.Served}
	if withPayload {
		dest = append(dest, &p.Payload)
	}
	if err := row.Scan(dest...); err != nil {
		return Payment{}, err
	}
	p.Status = Status(status)
	if settledAt != nil {
		p.SettledAt = *settledAt
	}
	return p, nil
}
