package authintegration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
)

func TestApplyThenDriftIsDetectedAndCorrected(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	userTable(t, f.db, "todos")
	ai := todos("app")
	ai.Annotations = map[string]string{kit.AnnotationRequestedAt: "2026-09-01T12:00:00Z"}
	f.Create(ai)

	res := f.reconcileOK("app")
	if want := kit.UntilSlot(f.clock.Now(), defaultDriftCheckInterval, f.Get("app").UID); res.RequeueAfter != want || want > defaultDriftCheckInterval {
		t.Fatalf("requeue after %s, want the integration's drift-check slot %s (within %s)", res.RequeueAfter, want, defaultDriftCheckInterval)
	}
	got := f.Get("app")
	controllertest.AssertReady(t, got, "")
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionSQLApplied, metav1.ConditionTrue, integrationsv1alpha1.ReasonReconciled)
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionDrifted, metav1.ConditionFalse, integrationsv1alpha1.ReasonInSync)
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionRLSVerified, metav1.ConditionTrue, integrationsv1alpha1.ReasonVerified)
	if got.Status.AppliedHash == "" || got.Status.LastAppliedTime == nil || got.Status.LastDriftCheckTime == nil {
		t.Fatalf("status lacks the apply bookkeeping: %+v", got.Status)
	}
	if got.Status.LastHandledReconcileAt != "2026-09-01T12:00:00Z" {
		t.Fatalf("lastHandledReconcileAt = %q", got.Status.LastHandledReconcileAt)
	}
	if len(got.Status.Tables) != 1 || !got.Status.Tables[0].Verified || !got.Status.Tables[0].RLSEnabled || len(got.Status.Tables[0].Policies) != 4 {
		t.Fatalf("table status = %+v", got.Status.Tables)
	}
	if n := f.policyCount("todos", "app"); n != 4 || !f.rlsEnabled("todos") {
		t.Fatalf("database has %d policies, RLS %v", n, f.rlsEnabled("todos"))
	}
	if !f.events.Has("Applied") {
		t.Fatalf("no Applied event: %v", f.events.All())
	}

	// A steady resync executes nothing and does not write status.
	before, rv := f.statements(), got.ResourceVersion
	f.step(time.Minute)
	f.reconcileOK("app")
	if f.statements() != before {
		t.Fatalf("a resync without drift executed %v statements", f.statements()-before)
	}
	if again := f.Get("app"); again.ResourceVersion != rv {
		t.Fatalf("a resync without change wrote status: %+v", again.Status)
	}

	// Out-of-band changes: a dropped policy and RLS disabled.
	f.exec(`DROP POLICY app_todos_delete ON public.todos; ALTER TABLE public.todos DISABLE ROW LEVEL SECURITY`)
	f.step(5 * time.Minute)
	f.reconcileOK("app")
	got = f.Get("app")
	c := controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionDrifted, metav1.ConditionTrue, integrationsv1alpha1.ReasonDriftCorrected)
	for _, want := range []string{"app_todos_delete", "row level security"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("Drifted message %q does not mention %q", c.Message, want)
		}
	}
	if len(got.Status.Drift) != 2 {
		t.Errorf("status.drift = %v, want the two differences", got.Status.Drift)
	}
	controllertest.AssertReady(t, got, "")
	if n := f.policyCount("todos", "app"); n != 4 || !f.rlsEnabled("todos") {
		t.Fatalf("drift not corrected: %d policies, RLS %v", n, f.rlsEnabled("todos"))
	}
	if !f.events.Has(integrationsv1alpha1.ReasonDriftCorrected) {
		t.Fatalf("no DriftCorrected event: %v", f.events.All())
	}
	if n := testutil.ToFloat64(f.r.metrics.drift); n != 1 {
		t.Fatalf("drift detections metric = %v, want 1", n)
	}
	if n := testutil.ToFloat64(f.r.metrics.outcomes.WithLabelValues(outcomeReady)); n != 3 {
		t.Fatalf("ready outcomes metric = %v, want 3", n)
	}

	// The next observation finds nothing.
	f.step(5 * time.Minute)
	f.reconcileOK("app")
	controllertest.WantCondition(t, f.Get("app"), integrationsv1alpha1.ConditionDrifted, metav1.ConditionFalse, integrationsv1alpha1.ReasonInSync)
	if len(f.Get("app").Status.Drift) != 0 {
		t.Fatalf("drift list not cleared: %v", f.Get("app").Status.Drift)
	}
	controllertest.AssertNoLeak(t, f.Get("app"), f.events.All(), string(f.getSecret("app-jwt").Data["JWT_SECRET"]))
}

func TestObserveModeChangesNothingAndReportsDrift(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	userTable(t, f.db, "todos")
	ai := todos("watcher")
	ai.Spec.Mode = integrationsv1alpha1.ModeObserve
	f.Create(ai)

	f.reconcileOK("watcher")
	got := f.Get("watcher")
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReady, metav1.ConditionTrue, integrationsv1alpha1.ReasonObserveOnly)
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionSQLApplied, metav1.ConditionFalse, integrationsv1alpha1.ReasonObserveOnly)
	c := controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionDrifted, metav1.ConditionTrue, integrationsv1alpha1.ReasonDriftDetected)
	if !strings.Contains(c.Message, "watcher_todos_select") || len(got.Status.Drift) == 0 {
		t.Fatalf("drift not reported: %q %v", c.Message, got.Status.Drift)
	}
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionRLSVerified, metav1.ConditionFalse, integrationsv1alpha1.ReasonObserveOnly)
	if f.statements() != 0 {
		t.Fatalf("observe mode executed %v statements", f.statements())
	}
	if f.policyCount("todos", "watcher") != 0 || f.rlsEnabled("todos") ||
		f.queryInt(`SELECT count(*)::int FROM pg_proc WHERE proname = 'requesting_user_id'`) != 0 ||
		f.queryInt(`SELECT count(*)::int FROM information_schema.columns WHERE table_name = 'todos' AND column_name = 'user_id'`) != 0 {
		t.Fatal("observe mode changed the database")
	}
	if !f.events.Has(integrationsv1alpha1.ReasonDriftDetected) {
		t.Fatalf("no DriftDetected event: %v", f.events.All())
	}

	// Switching to apply fixes it; that first apply is not drift.
	f.Update("watcher", func(ai *integrationsv1alpha1.AuthIntegration) { ai.Spec.Mode = integrationsv1alpha1.ModeApply })
	f.reconcileOK("watcher")
	got = f.Get("watcher")
	controllertest.AssertReady(t, got, "")
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionSQLApplied, metav1.ConditionTrue, integrationsv1alpha1.ReasonReconciled)
	if f.policyCount("todos", "watcher") != 4 {
		t.Fatal("apply mode did not create the policies")
	}
}

func TestUUIDUserIDColumnStalls(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.exec(`CREATE TABLE public.todos (id bigserial PRIMARY KEY, user_id uuid)`)
	f.Create(todos("app"))

	f.reconcileOK("app")
	got := f.Get("app")
	c := controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonUUIDUserID)
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReady, metav1.ConditionFalse, integrationsv1alpha1.ReasonUUIDUserID)
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionSQLApplied, metav1.ConditionFalse, integrationsv1alpha1.ReasonUUIDUserID)
	for _, want := range []string{"uuid", "user_2x", `ALTER TABLE "public"."todos" ALTER COLUMN "user_id" TYPE text`} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("Stalled message %q does not mention %q", c.Message, want)
		}
	}
	if f.policyCount("todos", "app") != 0 || f.rlsEnabled("todos") {
		t.Fatal("a stalled integration changed the table")
	}
	if !f.events.Has(integrationsv1alpha1.ReasonUUIDUserID) {
		t.Fatalf("no Warning event for the stall: %v", f.events.All())
	}
}

func TestMissingConnectionSecretOrKeyStalls(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	userTable(t, f.db, "todos")
	ai := todos("app")
	ai.Spec.Database.ConnectionSecretRef.Name = "nowhere"
	f.Create(ai)
	f.reconcileOK("app")
	c := controllertest.WantCondition(t, f.Get("app"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonSecretNotFound)
	if !strings.Contains(c.Message, "Secret nowhere") {
		t.Fatalf("message %q does not name the Secret", c.Message)
	}

	f.secret("nowhere", map[string]string{"url": f.db.URL})
	f.reconcileOK("app")
	got := f.Get("app")
	c = controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonSecretKeyMissing)
	if !strings.Contains(c.Message, "Secret nowhere") || !strings.Contains(c.Message, "no key uri") {
		t.Fatalf("message %q does not name the Secret and key", c.Message)
	}
	controllertest.AssertNoLeak(t, got, f.events.All(), f.db.URL)
	f.wantStates(t, 0, 1)

	// Fixed, it is counted as ready instead; deleted (Retain), it is not counted at all.
	f.secret("nowhere", map[string]string{"uri": f.db.URL})
	f.reconcileOK("app")
	controllertest.AssertReady(t, f.Get("app"), "")
	f.wantStates(t, 1, 0)
	f.deleteObject("app")
	f.reconcileOK("app")
	f.wantStates(t, 0, 0)
}

// wantStates checks insforge_authintegrations: ready and stalled as given, none reconciling.
func (f *fixture) wantStates(t *testing.T, ready, stalled float64) {
	t.Helper()
	g := f.r.metrics.integrations
	if r, s, rec := testutil.ToFloat64(g.Gauge(kit.StateReady)), testutil.ToFloat64(g.Gauge(kit.StateStalled)),
		testutil.ToFloat64(g.Gauge(kit.StateReconciling)); r != ready || s != stalled || rec != 0 {
		t.Errorf("integrations: %v ready, %v stalled, %v reconciling; want %v, %v, 0", r, s, rec, ready, stalled)
	}
}

func TestUnreachableDatabaseRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.secret("insforge-db", map[string]string{"uri": "postgres://op:hunter2-not-logged@127.0.0.1:1/insforge?connect_timeout=2"})
	f.Create(todos("app"))
	if _, err := f.reconcile("app"); err == nil {
		t.Fatal("an unreachable database did not return an error for backoff")
	}
	got := f.Get("app")
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReconciling, metav1.ConditionTrue, integrationsv1alpha1.ReasonDatabaseError)
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionReady, metav1.ConditionFalse, integrationsv1alpha1.ReasonDatabaseError)
	if c := controllertest.Condition(t, got, integrationsv1alpha1.ConditionSecretReady); c.Status != metav1.ConditionTrue {
		t.Fatalf("the JWT secret should not depend on the database: %+v", c)
	}
	for _, cond := range got.Status.Conditions {
		if cond.Type == integrationsv1alpha1.ConditionStalled {
			t.Fatalf("a transient error stalled: %+v", cond)
		}
	}
	controllertest.AssertNoLeak(t, got, f.events.All(), "hunter2-not-logged")
}

func TestIsolationBetweenTwoUsers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	userTable(t, f.db, "todos")
	f.Create(todos("app"))
	f.reconcileOK("app")
	controllertest.AssertReady(t, f.Get("app"), "")

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	as := func(tx pgx.Tx, sub string) {
		if _, err := tx.Exec(ctx, `SELECT set_config('request.jwt.claims', $1, true)`, `{"sub":"`+sub+`","role":"authenticated"}`); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE authenticated`); err != nil {
		t.Fatal(err)
	}
	as(tx, "user_2xAlice")
	if _, err := tx.Exec(ctx, `INSERT INTO public.todos (title) VALUES ('alice''s')`); err != nil {
		t.Fatal(err)
	}
	as(tx, "auth0|bob")
	var seen, changed int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM public.todos`).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `WITH u AS (UPDATE public.todos SET title = 'bob was here' RETURNING 1) SELECT count(*) FROM u`).Scan(&changed); err != nil {
		t.Fatal(err)
	}
	if seen != 0 || changed != 0 {
		t.Fatalf("bob sees %d and changes %d of alice's rows", seen, changed)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO public.todos (title, user_id) VALUES ('forged', 'user_2xAlice')`); err == nil {
		t.Fatal("bob inserted a row in alice's name")
	}
	_ = tx.Rollback(ctx)

	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE authenticated`); err != nil {
		t.Fatal(err)
	}
	as(tx, "user_2xAlice")
	if _, err := tx.Exec(ctx, `INSERT INTO public.todos (title) VALUES ('mine')`); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM public.todos WHERE user_id = 'user_2xAlice'`).Scan(&seen); err != nil || seen != 1 {
		t.Fatalf("alice sees %d of her own rows (%v)", seen, err)
	}
}

func TestSecondIntegrationOnATableReportsAConflict(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	userTable(t, f.db, "todos")
	f.Create(todos("first"))
	f.reconcileOK("first")
	controllertest.AssertReady(t, f.Get("first"), "")

	f.Create(todos("second"))
	f.reconcileOK("second")
	c := controllertest.WantCondition(t, f.Get("second"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonPolicyConflict)
	if !strings.Contains(c.Message, "first") {
		t.Fatalf("conflict message %q does not name the owner", c.Message)
	}
	f.reconcileOK("first")
	controllertest.AssertReady(t, f.Get("first"), "")
}

// secretShapedValues are what people put into the wrong Secret: none is a PostgreSQL URL that
// works, each holds a marker that must never come out of the operator.
var secretShapedValues = map[string]string{
	"api key":          "sk_live_51HxMARKERapikey0123456789",
	"json key file":    `{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvMARKER\n-----END PRIVATE KEY-----\n"}`,
	"user:pass":        "admin:hunter2MARKERpass",
	"url, bad escape":  "postgres://app:pw%ZZMARKER@127.0.0.1:1/db",
	"url, bad port":    "postgres://app:pwMARKER@127.0.0.1:notaport/db",
	"url, unreachable": "postgres://app:pwMARKER@127.0.0.1:1/db?connect_timeout=2",
	"keyword dsn":      "host=127.0.0.1 port=1 user=app password=kvMARKER dbname=db connect_timeout=2",
	"two lines":        "postgres://app@127.0.0.1:1/db\npassword=MARKER",
}

// No connection value reaches status, events or the error a reconcile returns (which
// controller-runtime logs), whatever its shape.
func TestConnectionValuesNeverLeak(t *testing.T) {
	t.Parallel()
	for name, value := range secretShapedValues {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.secret("insforge-db", map[string]string{"uri": value})
			f.Create(todos("app"))
			_, err := f.reconcile("app")
			got := f.Get("app")
			if c := meta.FindStatusCondition(got.Status.Conditions, integrationsv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse {
				t.Fatalf("Ready with a connection string that cannot work: %+v", got.Status.Conditions)
			}
			notes := f.events.All()
			if err != nil {
				notes = append(notes, err.Error())
			}
			controllertest.AssertNoLeak(t, got, notes, "MARKER", value)
		})
	}
}
