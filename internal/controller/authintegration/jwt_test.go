package authintegration

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
)

func TestRotationKeepsThePreviousKeyForTheGracePeriod(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	userTable(t, f.db, "todos")
	ai := todos("app")
	ai.Spec.Provider = integrationsv1alpha1.ProviderWorkOS
	ai.Spec.JWT.Generate.Rotation = &integrationsv1alpha1.JWTRotation{
		Interval:    &metav1.Duration{Duration: 24 * time.Hour},
		GracePeriod: &metav1.Duration{Duration: time.Hour},
	}
	ai.Spec.Exports = []integrationsv1alpha1.SecretExport{{SecretName: "workos-app"}}
	ai.Spec.DriftCheckInterval = &metav1.Duration{Duration: 2 * time.Hour}
	f.Create(ai)

	res := f.reconcileOK("app")
	if want := kit.UntilSlot(f.clock.Now(), 2*time.Hour, f.Get("app").UID); res.RequeueAfter != want {
		t.Fatalf("requeue after %s, want the drift-check slot %s", res.RequeueAfter, want)
	}
	first := string(f.getSecret("app-jwt").Data[jwtsecret.KeyCurrent])
	if exp := f.getSecret("workos-app"); string(exp.Data["INSFORGE_JWT_SECRET"]) != first || len(exp.Data) != 1 {
		t.Fatalf("export holds %v keys, want INSFORGE_JWT_SECRET only", len(exp.Data))
	}
	st := f.Get("app").Status.JWT
	if st.Fingerprint != jwtsecret.Fingerprint(first) || st.NextRotationTime == nil || !st.NextRotationTime.Time.Equal(controllertest.T0.Add(24*time.Hour)) {
		t.Fatalf("jwt status = %+v", st)
	}

	// The interval elapses: a new key, the old one kept as previous in the Secret and the export.
	f.step(24 * time.Hour)
	res = f.reconcileOK("app")
	// The next deadline: the end of the grace period, or the drift check's slot if sooner.
	if want := min(time.Hour, kit.UntilSlot(f.clock.Now(), 2*time.Hour, f.Get("app").UID)); res.RequeueAfter != want {
		t.Fatalf("after a rotation the next deadline is the end of the grace period or the drift slot (%s); requeue after %s", want, res.RequeueAfter)
	}
	sec := f.getSecret("app-jwt")
	second := string(sec.Data[jwtsecret.KeyCurrent])
	if second == first || string(sec.Data[jwtsecret.KeyPrevious]) != first {
		t.Fatal("rotation did not move the old key to JWT_SECRET_PREVIOUS")
	}
	exp := f.getSecret("workos-app")
	if string(exp.Data["INSFORGE_JWT_SECRET"]) != second || string(exp.Data["INSFORGE_JWT_SECRET_PREVIOUS"]) != first {
		t.Fatal("the export does not follow the rotation")
	}
	got := f.Get("app")
	if got.Status.JWT.Fingerprint != jwtsecret.Fingerprint(second) || got.Status.JWT.PreviousFingerprint != jwtsecret.Fingerprint(first) ||
		got.Status.JWT.PreviousExpiryTime == nil || !got.Status.JWT.PreviousExpiryTime.Time.Equal(controllertest.T0.Add(25*time.Hour)) {
		t.Fatalf("jwt status after rotation = %+v", got.Status.JWT)
	}
	if !f.events.Has(integrationsv1alpha1.ReasonSecretRotated) {
		t.Fatalf("no SecretRotated event: %v", f.events.All())
	}

	// Within the grace period nothing changes.
	f.step(30 * time.Minute)
	f.reconcileOK("app")
	if string(f.getSecret("app-jwt").Data[jwtsecret.KeyPrevious]) != first {
		t.Fatal("the previous key was removed before the grace period ended")
	}

	// The grace period ends: the previous key goes, from the Secret and the export.
	f.step(30 * time.Minute)
	f.reconcileOK("app")
	if _, ok := f.getSecret("app-jwt").Data[jwtsecret.KeyPrevious]; ok {
		t.Fatal("the previous key outlived the grace period")
	}
	if _, ok := f.getSecret("workos-app").Data["INSFORGE_JWT_SECRET_PREVIOUS"]; ok {
		t.Fatal("the export kept the previous key after the grace period")
	}
	got = f.Get("app")
	if got.Status.JWT.PreviousFingerprint != "" || got.Status.JWT.PreviousExpiryTime != nil {
		t.Fatalf("status still shows a previous key: %+v", got.Status.JWT)
	}
	if string(f.getSecret("app-jwt").Data[jwtsecret.KeyCurrent]) != second {
		t.Fatal("expiring the previous key changed the current one")
	}

	// An explicit trigger rotates once.
	f.Update("app", func(ai *integrationsv1alpha1.AuthIntegration) {
		ai.Spec.JWT.Generate.Rotation.Trigger = "2026-09-02T13:00:00Z"
	})
	f.reconcileOK("app")
	third := string(f.getSecret("app-jwt").Data[jwtsecret.KeyCurrent])
	if third == second || f.Get("app").Status.JWT.LastHandledTrigger != "2026-09-02T13:00:00Z" {
		t.Fatal("the trigger did not rotate the key")
	}
	f.reconcileOK("app")
	if string(f.getSecret("app-jwt").Data[jwtsecret.KeyCurrent]) != third {
		t.Fatal("a trigger already handled rotated again")
	}
	controllertest.AssertReady(t, f.Get("app"), "")
	controllertest.AssertNoLeak(t, f.Get("app"), f.events.All(), first, second, third)
}

func TestUserWrittenSecretsAreNeverOverwritten(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	userTable(t, f.db, "todos")
	userValue := "typed-by-a-human-" + strings.Repeat("h", 40)
	f.secret("app-jwt", map[string]string{"JWT_SECRET": userValue})
	f.secret("app-export", map[string]string{"INSFORGE_JWT_SECRET": "someone-elses"})
	ai := todos("app")
	ai.Spec.JWT.Generate.Rotation = &integrationsv1alpha1.JWTRotation{Trigger: "now"}
	ai.Spec.Exports = []integrationsv1alpha1.SecretExport{{SecretName: "app-export"}}
	f.Create(ai)

	f.reconcileOK("app")
	jwt := f.getSecret("app-jwt")
	if string(jwt.Data["JWT_SECRET"]) != userValue || len(jwt.OwnerReferences) != 0 || jwt.Annotations[jwtsecret.AnnotationGenerated] != "" {
		t.Fatalf("the user's JWT Secret was written: %+v", jwt.ObjectMeta)
	}
	if string(f.getSecret("app-export").Data["INSFORGE_JWT_SECRET"]) != "someone-elses" {
		t.Fatal("an export Secret the integration did not create was overwritten")
	}
	got := f.Get("app")
	c := controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionSecretReady, metav1.ConditionFalse, reasonExportNotOwned)
	if !strings.Contains(c.Message, "app-export") {
		t.Fatalf("SecretReady message %q does not name the export", c.Message)
	}
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, reasonExportNotOwned)
	if got.Status.JWT == nil || got.Status.JWT.Fingerprint != jwtsecret.Fingerprint(userValue) {
		t.Fatalf("status does not fingerprint the user's key: %+v", got.Status.JWT)
	}

	// Without the conflicting export the user's key is used as is.
	f.Update("app", func(ai *integrationsv1alpha1.AuthIntegration) { ai.Spec.Exports[0].SecretName = "app-export-2" })
	f.reconcileOK("app")
	controllertest.AssertReady(t, f.Get("app"), "")
	if string(f.getSecret("app-export-2").Data["INSFORGE_JWT_SECRET"]) != userValue {
		t.Fatal("the export does not carry the user's key")
	}
	if string(f.getSecret("app-jwt").Data["JWT_SECRET"]) != userValue {
		t.Fatal("the user's key changed")
	}
	controllertest.AssertNoLeak(t, f.Get("app"), f.events.All(), userValue)
}

func TestAdoptedSecretIsReadOnlyAndMissingStalls(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	userTable(t, f.db, "todos")
	ai := todos("app")
	ai.Spec.Provider = integrationsv1alpha1.ProviderAuth0
	ai.Spec.JWT = integrationsv1alpha1.JWTSecret{ExistingSecretRef: &integrationsv1alpha1.SecretKeySelector{Name: "insforge-jwt"}}
	ai.Spec.Exports = []integrationsv1alpha1.SecretExport{{SecretName: "auth0-app"}}
	f.Create(ai)

	f.reconcileOK("app")
	got := f.Get("app")
	c := controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonSecretNotFound)
	if !strings.Contains(c.Message, "insforge-jwt") {
		t.Fatalf("message %q does not name the Secret", c.Message)
	}
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionSecretReady, metav1.ConditionFalse, integrationsv1alpha1.ReasonSecretNotFound)
	// The database part does not wait for the secret.
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionSQLApplied, metav1.ConditionTrue, "")

	value := "insforge-env-jwt-secret-" + strings.Repeat("e", 40)
	f.secret("insforge-jwt", map[string]string{"JWT_SECRET": value})
	before := f.getSecret("insforge-jwt")
	f.reconcileOK("app")
	got = f.Get("app")
	controllertest.AssertReady(t, got, "")
	controllertest.WantCondition(t, got, integrationsv1alpha1.ConditionSecretReady, metav1.ConditionTrue, integrationsv1alpha1.ReasonSecretAdopted)
	if after := f.getSecret("insforge-jwt"); after.ResourceVersion != before.ResourceVersion {
		t.Fatal("the adopted Secret was written")
	}
	if string(f.getSecret("auth0-app").Data["INSFORGE_JWT_SECRET"]) != value {
		t.Fatal("the export does not carry the adopted key")
	}

	// A change of the adopted secret updates the export.
	f.secret("insforge-jwt", map[string]string{"JWT_SECRET": value + "-v2"})
	f.reconcileOK("app")
	if string(f.getSecret("auth0-app").Data["INSFORGE_JWT_SECRET"]) != value+"-v2" {
		t.Fatal("the export did not follow the adopted secret")
	}
	if f.Get("app").Status.JWT.Fingerprint != jwtsecret.Fingerprint(value+"-v2") {
		t.Fatal("the fingerprint did not follow the adopted secret")
	}
	controllertest.AssertNoLeak(t, f.Get("app"), f.events.All(), value)
}

func TestGeneratedSecretOwnershipFollowsThePolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	userTable(t, f.db, "todos")
	ai := todos("app")
	ai.Spec.JWT.Generate.Ownership = integrationsv1alpha1.SecretOrphan
	f.Create(ai)
	f.reconcileOK("app")
	owner := f.Get("app")
	if refs := f.getSecret("app-jwt").OwnerReferences; len(refs) != 0 {
		t.Fatalf("an Orphan Secret has owner references %+v", refs)
	}

	f.Update("app", func(ai *integrationsv1alpha1.AuthIntegration) {
		ai.Spec.JWT.Generate.Ownership = integrationsv1alpha1.SecretOwned
	})
	value := string(f.getSecret("app-jwt").Data["JWT_SECRET"])
	f.reconcileOK("app")
	sec := f.getSecret("app-jwt")
	if !metav1.IsControlledBy(sec, owner) {
		t.Fatalf("an Owned Secret has owner references %+v", sec.OwnerReferences)
	}
	if string(sec.Data["JWT_SECRET"]) != value {
		t.Fatal("changing the ownership changed the key")
	}

	f.Update("app", func(ai *integrationsv1alpha1.AuthIntegration) {
		ai.Spec.JWT.Generate.Ownership = integrationsv1alpha1.SecretOrphan
	})
	f.reconcileOK("app")
	if refs := f.getSecret("app-jwt").OwnerReferences; len(refs) != 0 {
		t.Fatalf("switching back to Orphan left owner references %+v", refs)
	}
}
