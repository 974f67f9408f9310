package authintegration

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
	"github.com/insforge/integrations-operator/internal/testutil/sampleoverlay"
)

// TestSamplesReachReady applies every provider's sample from config/samples, each against its own
// InsForge-like database, through a running manager.
func TestSamplesReachReady(t *testing.T) {
	t.Parallel()
	env := kubetest.Shared(t)
	ctx := context.Background()
	providers := sampleProviders
	type setup struct {
		ai *integrationsv1alpha1.AuthIntegration
		db *pgtest.Database
	}
	setups := map[string]setup{}
	var namespaces []string
	for _, p := range providers {
		ai := loadSample(t, env.Root, p)
		ai.Namespace = env.Namespace(t)
		namespaces = append(namespaces, ai.Namespace)
		db := insforgetest.NewDatabase(t, insforgetest.Options{AuthJWT: p != "kinde"}) // kinde: an InsForge older than auth.jwt()
		for _, tbl := range ai.Spec.Tables {
			if !tbl.CreateIfMissing {
				userTable(t, db, tbl.Name)
			}
		}
		controllertest.PutSecret(t, env.Client, ai.Namespace, "insforge-db", map[string]string{"uri": db.URL})
		if ref := ai.Spec.JWT.ExistingSecretRef; ref != nil {
			controllertest.PutSecret(t, env.Client, ai.Namespace, ref.Name, map[string]string{ref.Key: "insforge-own-jwt-secret-" + strings.Repeat("s", 40)})
		}
		setups[p] = setup{ai: ai, db: db}
	}
	startManager(t, env, namespaces...)
	for _, p := range providers {
		if err := env.Client.Create(ctx, setups[p].ai); err != nil {
			t.Fatalf("creating the %s sample: %v", p, err)
		}
	}

	for _, p := range providers {
		s := setups[p]
		key := types.NamespacedName{Namespace: s.ai.Namespace, Name: s.ai.Name}
		controllertest.Eventually(t, 60*time.Second, func() string { return readyMessage(env.Client, key) })
		var ai integrationsv1alpha1.AuthIntegration
		if err := env.Client.Get(ctx, key, &ai); err != nil {
			t.Fatal(err)
		}
		controllertest.AssertReady(t, &ai, "")
		controllertest.WantCondition(t, &ai, integrationsv1alpha1.ConditionRLSVerified, metav1.ConditionTrue, integrationsv1alpha1.ReasonVerified)
		secretReady := controllertest.WantCondition(t, &ai, integrationsv1alpha1.ConditionSecretReady, metav1.ConditionTrue, "")

		f := &fixture{t: t, ctx: ctx, c: env.Client, ns: s.ai.Namespace, db: s.db}
		for _, tbl := range ai.Spec.Tables {
			want := 4
			if len(tbl.Policies) > 0 {
				want = len(tbl.Policies)
			}
			if n := f.policyCount(tbl.Name, ai.Name); n != want || !f.rlsEnabled(tbl.Name) {
				t.Errorf("%s: table %s has %d of %d policies, RLS %v", p, tbl.Name, n, want, f.rlsEnabled(tbl.Name))
			}
		}

		// The JWT secret and its exports.
		jwtName, jwtKey := "", "JWT_SECRET"
		if g := ai.Spec.JWT.Generate; g != nil {
			jwtName = g.SecretName
			jwt := f.getSecret(jwtName)
			if !metav1.IsControlledBy(jwt, &ai) {
				t.Errorf("%s: generated Secret %s has no controller reference (ownership Owned by default)", p, jwtName)
			}
		} else {
			jwtName, jwtKey = ai.Spec.JWT.ExistingSecretRef.Name, ai.Spec.JWT.ExistingSecretRef.Key
		}
		value := string(f.getSecret(jwtName).Data[jwtKey])
		if len(value) < 32 || ai.Status.JWT == nil || ai.Status.JWT.Fingerprint == "" || ai.Status.JWT.SecretName != jwtName {
			t.Errorf("%s: JWT secret %s (%d chars), status %+v", p, jwtName, len(value), ai.Status.JWT)
		}
		for _, e := range ai.Spec.Exports {
			exp := f.getSecret(e.SecretName)
			if string(exp.Data[integrationsv1alpha1.DefaultExportKey]) != value {
				t.Errorf("%s: export %s does not hold the JWT secret under %s", p, e.SecretName, integrationsv1alpha1.DefaultExportKey)
			}
			if !metav1.IsControlledBy(exp, &ai) {
				t.Errorf("%s: export %s is not owned by the integration", p, e.SecretName)
			}
		}
		if p == "clerk" && !strings.Contains(secretReady.Message, `{"role":"authenticated","aud":"insforge-api"}`) {
			t.Errorf("clerk: SecretReady does not explain the JWT template: %q", secretReady.Message)
		}
		if p == "betterauth" && f.queryInt(`SELECT count(*)::int FROM pg_namespace WHERE nspname = 'better_auth'`) != 1 {
			t.Errorf("betterauth: no better_auth schema")
		}
		var evs corev1.EventList
		if err := env.Client.List(ctx, &evs); err != nil {
			t.Fatal(err)
		}
		var notes []string
		for _, e := range evs.Items {
			notes = append(notes, e.Message)
		}
		controllertest.AssertNoLeak(t, &ai, notes, value, s.db.URL)
	}
}

// TestSamplesShareOneDatabase applies the six AuthIntegration samples as `kubectl apply -f
// config/samples/` does: into one namespace, against one InsForge database, with the Secrets made
// from the commented templates at the top of the sample files (their label included, only the
// placeholder values filled in). Every sample reaches Ready, none stalls with PolicyConflict, and
// every table carries the policies of exactly one integration. The database has auth.jwt()
// (current InsForge): one database cannot also be the older InsForge the kinde sample meets in
// TestSamplesReachReady, which keeps that case.
func TestSamplesShareOneDatabase(t *testing.T) {
	t.Parallel()
	env := kubetest.Shared(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	db := insforgetest.NewDatabase(t, insforgetest.Options{AuthJWT: true})
	jwtValue := "insforge-own-jwt-secret-" + strings.Repeat("s", 40)

	var samples []*integrationsv1alpha1.AuthIntegration
	templates := map[string]corev1.Secret{}
	tables := map[string]string{} // table → the integration that secures it
	for _, p := range sampleProviders {
		ai := loadSample(t, env.Root, p)
		ai.Namespace = ns
		samples = append(samples, ai)
		for _, tbl := range ai.Spec.Tables {
			if other, ok := tables[tbl.Name]; ok {
				t.Errorf("the %s and %s samples both secure table %s", other, ai.Name, tbl.Name)
			}
			tables[tbl.Name] = ai.Name
			if !tbl.CreateIfMissing {
				userTable(t, db, tbl.Name)
			}
		}
		secrets, err := sampleoverlay.SecretTemplates(samplePath(env.Root, "authintegration", p))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if prev, ok := templates[s.Name]; ok && !reflect.DeepEqual(prev, s) {
				t.Errorf("the %s sample templates Secret %s differently from another sample", p, s.Name)
			}
			templates[s.Name] = s
		}
	}
	for _, tmpl := range templates {
		sec := tmpl.DeepCopy()
		sec.Namespace = ns
		for k := range sec.StringData {
			switch k {
			case integrationsv1alpha1.DefaultConnectionSecretKey:
				sec.StringData[k] = db.URL
			case jwtsecret.KeyCurrent:
				sec.StringData[k] = jwtValue
			default:
				t.Fatalf("Secret %s: no test value for key %s", sec.Name, k)
			}
		}
		if err := env.Client.Create(ctx, sec); err != nil {
			t.Fatalf("creating Secret %s from its template: %v", sec.Name, err)
		}
	}

	startManager(t, env, ns)
	for _, ai := range samples {
		if err := env.Client.Create(ctx, ai); err != nil {
			t.Fatalf("creating the %s sample: %v", ai.Name, err)
		}
	}
	for _, ai := range samples {
		key := types.NamespacedName{Namespace: ns, Name: ai.Name}
		controllertest.Eventually(t, 90*time.Second, func() string { return readyMessage(env.Client, key) })
	}

	var evs corev1.EventList
	if err := env.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, e := range evs.Items {
		if e.Reason == integrationsv1alpha1.ReasonPolicyConflict || strings.Contains(e.Message, "already managed by integration") {
			t.Errorf("event for %s: %s %s", e.InvolvedObject.Name, e.Reason, e.Message)
		}
		notes = append(notes, e.Message)
	}
	f := &fixture{t: t, ctx: ctx, c: env.Client, ns: ns, db: db}
	for _, ai := range samples {
		var got integrationsv1alpha1.AuthIntegration
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: ai.Name}, &got); err != nil {
			t.Fatal(err)
		}
		controllertest.AssertReady(t, &got, "")
		controllertest.WantCondition(t, &got, integrationsv1alpha1.ConditionRLSVerified, metav1.ConditionTrue, integrationsv1alpha1.ReasonVerified)
		for _, tbl := range got.Spec.Tables {
			want := 4
			if len(tbl.Policies) > 0 {
				want = len(tbl.Policies)
			}
			own := f.policyCount(tbl.Name, got.Name)
			all := f.queryInt(`SELECT count(*)::int FROM pg_policies WHERE schemaname = 'public' AND tablename = $1`, tbl.Name)
			if own != want || all != want || !f.rlsEnabled(tbl.Name) {
				t.Errorf("%s: table %s has %d of %d policies (%d in all), RLS %v", got.Name, tbl.Name, own, want, all, f.rlsEnabled(tbl.Name))
			}
		}
		controllertest.AssertNoLeak(t, &got, notes, jwtValue, db.URL)
	}
}

// TestConnectionSecretChangesReconcile proves the Secret watch: the integration recovers from a
// missing Secret and a missing key as soon as they are fixed, long before the drift interval.
func TestConnectionSecretChangesReconcile(t *testing.T) {
	t.Parallel()
	env := kubetest.Shared(t)
	ns := env.Namespace(t)
	db := insforgetest.NewDatabase(t, insforgetest.Options{AuthJWT: true})
	userTable(t, db, "todos")
	r := startManager(t, env, ns)
	ai := todos("app")
	ai.Namespace = ns
	ai.Spec.DriftCheckInterval = &metav1.Duration{Duration: time.Hour}
	if err := env.Client.Create(context.Background(), ai); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: ns, Name: "app"}
	stalledWith := func(reason, mention string) func() string {
		return func() string {
			var got integrationsv1alpha1.AuthIntegration
			if err := env.Client.Get(context.Background(), key, &got); err != nil {
				return err.Error()
			}
			c := meta.FindStatusCondition(got.Status.Conditions, integrationsv1alpha1.ConditionStalled)
			if c == nil || c.Reason != reason || !strings.Contains(c.Message, mention) {
				return fmt.Sprintf("want Stalled %s mentioning %q, have %+v", reason, mention, got.Status.Conditions)
			}
			return ""
		}
	}
	controllertest.Eventually(t, 30*time.Second, stalledWith(integrationsv1alpha1.ReasonSecretNotFound, "Secret insforge-db"))
	controllertest.PutSecret(t, env.Client, ns, "insforge-db", map[string]string{"url": db.URL})
	controllertest.Eventually(t, 30*time.Second, stalledWith(integrationsv1alpha1.ReasonSecretKeyMissing, "no key uri"))
	controllertest.PutSecret(t, env.Client, ns, "insforge-db", map[string]string{"uri": db.URL})
	controllertest.Eventually(t, 30*time.Second, func() string { return readyMessage(env.Client, key) })
	if r.Pools.Len() != 1 {
		t.Fatalf("%d pools open, want 1", r.Pools.Len())
	}

	// Deletion through the manager: Delete adds the finalizer, deleting drops the policies.
	var got integrationsv1alpha1.AuthIntegration
	if err := env.Client.Get(context.Background(), key, &got); err != nil {
		t.Fatal(err)
	}
	got.Spec.DeletionPolicy = integrationsv1alpha1.DeletionDelete
	if err := env.Client.Update(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, 30*time.Second, func() string {
		if err := env.Client.Get(context.Background(), key, &got); err != nil {
			return err.Error()
		}
		if !controllerutil.ContainsFinalizer(&got, authFinalizer) {
			return "no finalizer yet"
		}
		return ""
	})
	if err := env.Client.Delete(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, 30*time.Second, func() string {
		err := env.Client.Get(context.Background(), key, &got)
		if apierrors.IsNotFound(err) {
			return ""
		}
		return fmt.Sprintf("still there (%v): %+v", err, got.Status.Conditions)
	})
	f := &fixture{t: t, ctx: context.Background(), db: db}
	if n := f.policyCount("todos", "app"); n != 0 {
		t.Fatalf("%d policies left after deletion", n)
	}
	controllertest.Eventually(t, 10*time.Second, func() string {
		if n := r.Pools.Len(); n != 0 {
			return fmt.Sprintf("%d pools open", n)
		}
		return ""
	})
}

// TestSecretsOptInThroughTheCache runs the manager with its label-selected Secret cache: a
// connection Secret that does not opt in stalls the integration without being read, labelling it
// is seen through the watch, and a JWT Secret the operator wrote before it labelled its Secrets
// (so invisible to the cache) is labelled and kept, not regenerated.
func TestSecretsOptInThroughTheCache(t *testing.T) {
	t.Parallel()
	env := kubetest.Shared(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	db := insforgetest.NewDatabase(t, insforgetest.Options{AuthJWT: true})
	userTable(t, db, "todos")
	controllertest.PutUnlabelledSecret(t, env.Client, ns, "insforge-db", map[string]string{"uri": db.URL})
	startManager(t, env, ns)
	ai := todos("app")
	ai.Namespace = ns
	ai.Spec.DriftCheckInterval = &metav1.Duration{Duration: time.Hour}
	if err := env.Client.Create(ctx, ai); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: ns, Name: "app"}
	controllertest.Eventually(t, 30*time.Second, func() string {
		var got integrationsv1alpha1.AuthIntegration
		if err := env.Client.Get(ctx, key, &got); err != nil {
			return err.Error()
		}
		c := meta.FindStatusCondition(got.Status.Conditions, integrationsv1alpha1.ConditionStalled)
		if c == nil || c.Reason != integrationsv1alpha1.ReasonSecretNotOptedIn ||
			!strings.Contains(c.Message, "insforge-db") || !strings.Contains(c.Message, integrationsv1alpha1.LabelSecretAccess+"=true") {
			return fmt.Sprintf("want Stalled %s naming the Secret and the label, have %+v", integrationsv1alpha1.ReasonSecretNotOptedIn, got.Status.Conditions)
		}
		controllertest.AssertNoLeak(t, &got, nil, db.URL)
		return ""
	})

	// Opting in: only the label changes, and the watch brings the integration to Ready.
	controllertest.PutSecret(t, env.Client, ns, "insforge-db", map[string]string{"uri": db.URL})
	controllertest.Eventually(t, 30*time.Second, func() string { return readyMessage(env.Client, key) })
	var got integrationsv1alpha1.AuthIntegration
	if err := env.Client.Get(ctx, key, &got); err != nil {
		t.Fatal(err)
	}
	fingerprint := got.Status.JWT.Fingerprint
	jwtName := ai.Spec.JWT.Generate.SecretName
	f := &fixture{t: t, ctx: ctx, c: env.Client, ns: ns, db: db}
	jwt := f.getSecret(jwtName)
	if jwt.Labels[integrationsv1alpha1.LabelSecretAccess] != kit.SecretAccessOwned {
		t.Fatalf("the generated Secret does not carry %s=%s: %v", integrationsv1alpha1.LabelSecretAccess, kit.SecretAccessOwned, jwt.Labels)
	}

	// Another integration in the namespace may not adopt (and so export) this one's key: the
	// operator's own Secrets cannot be referenced.
	thief := todos("thief")
	thief.Namespace = ns
	thief.Spec.Tables = []integrationsv1alpha1.ManagedTable{{Name: "loot", CreateIfMissing: true}}
	thief.Spec.JWT = integrationsv1alpha1.JWTSecret{ExistingSecretRef: &integrationsv1alpha1.SecretKeySelector{Name: jwtName, Key: "JWT_SECRET"}}
	thief.Spec.Exports = []integrationsv1alpha1.SecretExport{{SecretName: "thief-copy"}}
	if err := env.Client.Create(ctx, thief); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, 30*time.Second, func() string {
		var got integrationsv1alpha1.AuthIntegration
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "thief"}, &got); err != nil {
			return err.Error()
		}
		c := meta.FindStatusCondition(got.Status.Conditions, integrationsv1alpha1.ConditionStalled)
		if c == nil || c.Reason != integrationsv1alpha1.ReasonSecretNotOptedIn {
			return fmt.Sprintf("want Stalled %s, have %+v", integrationsv1alpha1.ReasonSecretNotOptedIn, got.Status.Conditions)
		}
		return ""
	})
	var copied corev1.Secret
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "thief-copy"}, &copied); !apierrors.IsNotFound(err) {
		t.Fatalf("the other integration's key was exported: %v", err)
	}

	// An earlier operator's Secret: managed-by only. A reconcile (an annotation change) finds it
	// through the API reader, labels it and keeps its key.
	delete(jwt.Labels, integrationsv1alpha1.LabelSecretAccess)
	if err := env.Client.Update(ctx, jwt); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, key, &got); err != nil {
		t.Fatal(err)
	}
	if got.Annotations == nil {
		got.Annotations = map[string]string{}
	}
	got.Annotations["test/poke"] = "1"
	if err := env.Client.Update(ctx, &got); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, 30*time.Second, func() string {
		if l := f.getSecret(jwtName).Labels[integrationsv1alpha1.LabelSecretAccess]; l != kit.SecretAccessOwned {
			return "the operator's unlabelled Secret was not labelled"
		}
		return readyMessage(env.Client, key)
	})
	if err := env.Client.Get(ctx, key, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.JWT.Fingerprint != fingerprint {
		t.Errorf("the JWT secret changed (%s → %s): the operator's own Secret was not recognised", fingerprint, got.Status.JWT.Fingerprint)
	}
}
