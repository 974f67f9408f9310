package authintegration

import (
	"context"
	"fmt"
	"time"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/pgpool"
	"github.com/insforge/integrations-operator/internal/rls"
)

// observation is the plan and what carrying it out found; status is computed from it.
type observation struct {
	now        time.Time
	jwt        jwtOutcome
	jwtErr     error
	exportsErr error
	db         *dbOutcome
	dbErr      error

	// side is what the provider side found.
	side sideOutcome
}

// act writes the planned Secrets (stopping at the first failure) and brings the database to
// the spec, whatever happened to the Secrets: row-level security does not depend on them.
func (r *Reconciler) act(ctx context.Context, ai *v1alpha1.AuthIntegration, p plan) observation {
	obs := observation{now: p.now, jwt: p.jwt, jwtErr: p.jwtErr, exportsErr: p.exportsErr}
	for _, w := range p.writes {
		if err := r.writeSecret(ctx, w.secret, w.exists); err != nil {
			err = fmt.Errorf("writing %s %s: %w", w.what, w.secret.Name, err)
			if w.what == "the JWT Secret" {
				obs.jwtErr = err
			} else {
				obs.exportsErr = err
			}
			break
		}
	}
	if p.decision != nil && obs.jwtErr == nil {
		r.recordJWTEvent(ai, *p.decision)
	}
	if obs.jwtErr == nil && obs.exportsErr == nil {
		obs.side = r.actSide(ctx, ai, p)
	}
	if p.dsnErr != nil {
		obs.dbErr = p.dsnErr
		return obs
	}
	obs.db, obs.dbErr = r.reconcileDatabase(ctx, ai, p.dsn)
	obs.dbErr = pgpool.Redact(obs.dbErr)
	return obs
}

// dbOutcome is what the database step found.
type dbOutcome struct {
	spec         rls.Spec
	hash         string
	result       *rls.Result
	verification *rls.Verification
}

// reconcileDatabase brings the database to the spec (or, in observe mode, only compares) and then
// verifies isolation as a synthetic user.
func (r *Reconciler) reconcileDatabase(ctx context.Context, ai *v1alpha1.AuthIntegration, dsn string) (*dbOutcome, error) {
	spec := rlsSpec(ai)
	hash, err := specHash(spec)
	if err != nil {
		return nil, err
	}
	pool, err := r.Pools.Acquire(ctx, poolUser(objectKey(ai)), dsn)
	if err != nil {
		return nil, fmt.Errorf("connecting to the database: %w", err)
	}
	res, err := rls.Reconcile(ctx, pool, spec, rls.Options{Mode: rlsMode(ai), OwnedOn: ownedOn(ai)})
	if err != nil {
		return nil, fmt.Errorf("reconciling row-level security: %w", err)
	}
	r.metrics.statements.Add(float64(res.StatementCount()))
	out := &dbOutcome{spec: spec, hash: hash, result: res}
	if rlsMode(ai) == rls.ModeObserve && res.Drifted() {
		// Verification would only restate the differences (or fail on a missing column).
		return out, nil
	}
	v, err := rls.VerifyAfter(ctx, pool, spec, res)
	if err != nil {
		return out, fmt.Errorf("verifying row-level security: %w", err)
	}
	out.verification = v
	return out, nil
}
