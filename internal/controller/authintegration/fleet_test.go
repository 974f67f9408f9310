package authintegration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/insforge/integrations-operator/internal/testutil/apicount"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/fleetbench"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

// TestSteadyResyncWritesNothing: once a fleet is Ready, what makes every integration reconcile
// again without a change (a change of the connection Secret's labels, the periodic drift
// checks, a manager restart) sends no write to the API server (no status patch, no event, no
// Secret update) and executes no SQL statement that changes the database.
func TestSteadyResyncWritesNothing(t *testing.T) {
	const n = 20
	env := kubetest.Shared(t)
	ns := env.Namespace(t)
	db := fleetDatabase(t, env, ns, n)
	var counter apicount.Counter
	cfg := counter.Config(env.Config)
	stop, r := startFleetManager(t, env, cfg, defaultConcurrency, ns)
	for i := range n {
		ai := benchIntegration(ns, i)
		ai.Spec.DriftCheckInterval = &metav1.Duration{Duration: 10 * time.Second} // the smallest allowed
		if err := env.Client.Create(context.Background(), ai); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		key := types.NamespacedName{Namespace: ns, Name: benchName(i)}
		controllertest.Eventually(t, 2*time.Minute, func() string { return readyMessage(env.Client, key) })
	}
	waitIdle(t, 0)
	waitQuiet(t, &counter)

	requests := counter.Snapshot()
	statements := testutil.ToFloat64(r.metrics.statements)
	catalog := catalogVersion(t, db.URL)
	reconciles := fleetbench.Reconciles(t, controllerName)

	touchSecret(t, env, ns, "insforge-db") // every integration, at once
	waitIdle(t, reconciles+n)
	// Each integration's drift check comes within its 10 s interval after that reconcile.
	waitIdle(t, reconciles+2*n)
	stop()
	_, r = startFleetManager(t, env, cfg, defaultConcurrency, ns)
	waitIdle(t, reconciles+3*n)
	waitQuiet(t, &counter)

	if w := counter.Snapshot().Sub(requests).Writes(); w.Total() != 0 {
		t.Errorf("%d reconciles without a change wrote to the API server: %s", int(fleetbench.Reconciles(t, controllerName)-reconciles), w)
	}
	if got := testutil.ToFloat64(r.metrics.statements) - statements; got != 0 {
		t.Errorf("the resyncs executed %v statements, want 0", got)
	}
	if got := catalogVersion(t, db.URL); got != catalog {
		t.Errorf("the resyncs changed the catalogs: %s, was %s", got, catalog)
	}
}

// waitQuiet waits until counter has seen no request for 2 s (events are sent in the background).
func waitQuiet(t *testing.T, counter *apicount.Counter) {
	t.Helper()
	last, since := counter.Snapshot().Total(), time.Now()
	controllertest.Eventually(t, 2*time.Minute, func() string {
		if n := counter.Snapshot().Total(); n != last {
			last, since = n, time.Now()
		}
		if time.Since(since) < 2*time.Second {
			return "requests still going out"
		}
		return ""
	})
}

// catalogVersion is the newest row version among the catalogs an apply changes: any DDL, grant
// or comment writes a row there.
func catalogVersion(t *testing.T, url string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v string
	err = conn.QueryRow(context.Background(), `SELECT concat_ws(' ',
		(SELECT max(xmin::text::bigint) FROM pg_policy), (SELECT max(xmin::text::bigint) FROM pg_class),
		(SELECT max(xmin::text::bigint) FROM pg_attrdef), (SELECT max(xmin::text::bigint) FROM pg_description),
		(SELECT max(xmin::text::bigint) FROM pg_proc), (SELECT count(*) FROM pg_policy))`).Scan(&v)
	if err != nil {
		t.Fatal(fmt.Errorf("reading the catalogs' versions: %w", err))
	}
	return v
}
