package authintegration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/allowlist"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
	"github.com/insforge/integrations-operator/internal/providerapi/auth0/auth0fake"
	"github.com/insforge/integrations-operator/internal/providerapi/clerk/clerkfake"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/insforgejwt"
	"github.com/insforge/integrations-operator/internal/testutil/podrun"
	excfg "github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

const testImage = "example.test/insforge/integrations-operator:v1"

// withExchange is todos(name) for WorkOS with a token exchange.
func withExchange(name string) *integrationsv1alpha1.AuthIntegration {
	ai := todos(name)
	ai.Spec.Provider = integrationsv1alpha1.ProviderWorkOS
	ai.Spec.WorkOS = &integrationsv1alpha1.WorkOSSettings{ClientID: "client_01TEST"}
	ai.Spec.Exchange = &integrationsv1alpha1.TokenExchange{AllowedOrigins: []string{"https://app.example.com"}}
	return ai
}

func (f *fixture) deployment(name string) *appsv1.Deployment {
	f.t.Helper()
	var d appsv1.Deployment
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, &d); err != nil {
		f.t.Fatalf("reading Deployment %s: %v", name, err)
	}
	return &d
}

func (f *fixture) exchangeConfigMap(ai string) excfg.Config {
	f.t.Helper()
	var cm corev1.ConfigMap
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: exchangeName(ai)}, &cm); err != nil {
		f.t.Fatalf("reading the exchange ConfigMap: %v", err)
	}
	var cfg excfg.Config
	if err := json.Unmarshal([]byte(cm.Data[excfg.ConfigMapKey]), &cfg); err != nil {
		f.t.Fatalf("decoding the exchange config: %v", err)
	}
	return cfg
}

func TestExchangeRunsFromThePresetWithTheSigningKey(t *testing.T) {
	f := newFixture(t)
	userTable(t, f.db, "todos")
	f.r.Exchange = ExchangeOptions{Image: testImage, PullSecrets: []string{"regcred"}}
	f.Create(withExchange("xchg"))
	f.reconcileOK("xchg")

	cfg := f.exchangeConfigMap("xchg")
	if len(cfg.Issuers) != 1 || cfg.Issuers[0].JWKSURL != "https://api.workos.com/sso/jwks/client_01TEST" ||
		!containsString(cfg.Issuers[0].Issuers, "https://api.workos.com/user_management/client_01TEST") {
		t.Fatalf("exchange issuer = %+v, want the WorkOS preset for client_01TEST", cfg.Issuers)
	}
	if got := cfg.CORS.AllowedOrigins; len(got) != 1 || got[0] != "https://app.example.com" {
		t.Errorf("CORS origins = %v", got)
	}
	if cfg.Token.Lifetime.Duration != excfg.DefaultLifetime {
		t.Errorf("token lifetime = %v, want the default %v", cfg.Token.Lifetime, excfg.DefaultLifetime)
	}

	jwt := f.getSecret("xchg-jwt").Data[jwtsecret.KeyCurrent]
	signing := f.getSecret(signingSecretName("xchg"))
	if string(signing.Data[excfg.SigningKeyName]) != string(jwt) {
		t.Fatal("the signing Secret does not hold the JWT secret")
	}
	if signing.Labels[integrationsv1alpha1.LabelSecretAccess] != "owned" || !metav1.IsControlledBy(signing, f.Get("xchg")) {
		t.Errorf("signing Secret labels %v / owners %v: want operator-owned", signing.Labels, signing.OwnerReferences)
	}

	d := f.deployment(exchangeName("xchg"))
	pod := d.Spec.Template.Spec
	if pod.Containers[0].Image != testImage || pod.Containers[0].Command[0] != "/exchange" {
		t.Errorf("container %s %v", pod.Containers[0].Image, pod.Containers[0].Command)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("exchange pods must not mount a service account token")
	}
	if len(pod.ImagePullSecrets) != 1 || pod.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("pull Secrets %v", pod.ImagePullSecrets)
	}
	mounted := false
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName == signingSecretName("xchg") {
			mounted = true
		}
	}
	if !mounted {
		t.Error("the signing Secret is not mounted")
	}
	for _, c := range pod.Containers {
		if len(c.Env)+len(c.EnvFrom) > 0 {
			t.Errorf("container %s gets env %v %v: the key must reach it only as a file", c.Name, c.Env, c.EnvFrom)
		}
	}

	// Not Ready until the exchange is available.
	ai := f.Get("xchg")
	controllertest.WantCondition(t, ai, integrationsv1alpha1.ConditionExchangeAvailable, metav1.ConditionFalse, integrationsv1alpha1.ReasonDeploymentPending)
	controllertest.WantCondition(t, ai, integrationsv1alpha1.ConditionReady, metav1.ConditionFalse, integrationsv1alpha1.ReasonProgressing)
	if err := podrun.MarkAvailable(f.ctx, f.c, d); err != nil {
		t.Fatal(err)
	}
	f.reconcileOK("xchg")
	ai = f.Get("xchg")
	controllertest.AssertReady(t, ai, integrationsv1alpha1.ReasonReconciled)
	controllertest.WantCondition(t, ai, integrationsv1alpha1.ConditionKeyPropagated, metav1.ConditionTrue, integrationsv1alpha1.ReasonKeyPropagated)
	if want := "http://xchg-exchange." + f.ns + ".svc:8080"; ai.Status.Exchange == nil || ai.Status.Exchange.URL != want {
		t.Errorf("status.exchange = %+v, want url %s", ai.Status.Exchange, want)
	}
	if ai.Status.JWT.SigningFingerprint != ai.Status.JWT.Fingerprint {
		t.Errorf("signing fingerprint %s, current %s", ai.Status.JWT.SigningFingerprint, ai.Status.JWT.Fingerprint)
	}
	controllertest.AssertNoLeak(t, ai, f.events.All(), string(jwt))

	// A steady reconcile writes nothing.
	rv := d.ResourceVersion
	f.reconcileOK("xchg")
	if got := f.deployment(exchangeName("xchg")).ResourceVersion; got == rv {
		t.Log("unchanged")
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestExchangeRefusedByTheAllowLists(t *testing.T) {
	f := newFixture(t)
	userTable(t, f.db, "todos")
	origins, err := allowlist.ParseOrigins([]string{"https://api.workos.com"})
	if err != nil {
		t.Fatal(err)
	}
	f.r.Egress = origins
	f.r.Exchange = ExchangeOptions{Image: testImage}

	// A key set URL outside the allow-list: the exchange would fetch keys an editor chose.
	ai := withExchange("evil-jwks")
	ai.Spec.Exchange.Verification = &integrationsv1alpha1.TokenVerification{JWKSURL: "https://attacker.example/jwks.json"}
	f.Create(ai)
	f.reconcileOK("evil-jwks")
	controllertest.WantCondition(t, f.Get("evil-jwks"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonURLNotAllowed)

	// An image the manager does not list.
	ai = withExchange("evil-image")
	ai.Spec.Exchange.Image = "attacker.example/miner:latest"
	f.Create(ai)
	f.reconcileOK("evil-image")
	controllertest.WantCondition(t, f.Get("evil-image"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonImageNotAllowed)

	// A Clerk API URL outside the allow-list: the operator would send the secret key there.
	f.secret("clerk-api", map[string]string{"CLERK_SECRET_KEY": "sk_test_never_sent"})
	ai = todos("evil-clerk")
	ai.Spec.Clerk = &integrationsv1alpha1.ClerkSettings{SecretKeyRef: &integrationsv1alpha1.SecretKeySelector{Name: "clerk-api"},
		APIURL: "https://attacker.example"}
	f.Create(ai)
	f.reconcileOK("evil-clerk")
	got := controllertest.WantCondition(t, f.Get("evil-clerk"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonURLNotAllowed)
	if !strings.Contains(got.Message, "clerk.apiURL") {
		t.Errorf("message %q does not name the field", got.Message)
	}
	for _, name := range []string{"evil-jwks", "evil-image"} {
		var d appsv1.Deployment
		if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: exchangeName(name)}, &d); err == nil {
			t.Errorf("%s: an exchange was deployed despite the allow-list", name)
		}
	}
}

// clerkIntegration is todos(name) with Clerk's API credentials pointing at the fake.
func clerkIntegration(name, apiURL string) *integrationsv1alpha1.AuthIntegration {
	ai := todos(name)
	ai.Spec.Clerk = &integrationsv1alpha1.ClerkSettings{
		SecretKeyRef: &integrationsv1alpha1.SecretKeySelector{Name: "clerk-api"},
		APIURL:       apiURL,
		Template:     integrationsv1alpha1.ClerkTemplate{Name: "insforge", IncludeEmail: true},
	}
	ai.Spec.JWT.Generate.Rotation = &integrationsv1alpha1.JWTRotation{Trigger: "t0"}
	return ai
}

func TestClerkTemplateKeptSigningWithTheKey(t *testing.T) {
	f := newFixture(t)
	userTable(t, f.db, "todos")
	const sk = "sk_test_clerkSecretValue123"
	clerk := clerkfake.New(t, clerkfake.Config{SecretKey: sk})
	f.secret("clerk-api", map[string]string{"CLERK_SECRET_KEY": sk})
	f.Create(clerkIntegration("clerk", clerk.URL))
	f.reconcileOK("clerk")

	key := f.getSecret("clerk-jwt").Data[jwtsecret.KeyCurrent]
	if got := clerk.SigningKey("insforge"); string(got) != string(key) {
		t.Fatal("the Clerk template does not sign with the JWT secret")
	}
	tmpl, _ := clerk.Template("insforge")
	if tmpl.Claims["role"] != "authenticated" || tmpl.SigningAlgorithm != "HS256" {
		t.Fatalf("template %+v", tmpl)
	}
	ai := f.Get("clerk")
	controllertest.WantCondition(t, ai, integrationsv1alpha1.ConditionProviderSynced, metav1.ConditionTrue, integrationsv1alpha1.ReasonProviderSynced)
	if ai.Status.Provider == nil || ai.Status.Provider.ID != tmpl.ID || ai.Status.Provider.KeyFingerprint != jwtsecret.Fingerprint(string(key)) {
		t.Fatalf("status.provider = %+v", ai.Status.Provider)
	}

	// A template token passes InsForge's verification as an authenticated user, and RLS sees
	// its subject.
	clerk.SetUserEmail("user_2abc", "a@example.com")
	tok, err := clerk.MintTemplateToken("insforge", "user_2abc")
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := insforgejwt.Verify(tok, key, time.Now())
	if err != nil || id.Sub != "user_2abc" || id.Role != "authenticated" {
		t.Fatalf("InsForge verification: %+v, %v", id, err)
	}
	if got := f.requestingUserID(id); got != "user_2abc" {
		t.Fatalf("requesting_user_id() = %q", got)
	}

	// Resync: one read, no write.
	writes := clerk.Writes()
	f.reconcileOK("clerk")
	if clerk.Writes() != writes {
		t.Errorf("a resync wrote to Clerk %d time(s)", clerk.Writes()-writes)
	}

	// A dashboard edit (the key cannot be read back) is taken back.
	clerk.EditOutOfBand("insforge", func(tm *clerkfake.Template) { tm.SigningKey = []byte("someone-elses-key-000000000000000000") })
	f.reconcileOK("clerk")
	if got := clerk.SigningKey("insforge"); string(got) != string(key) {
		t.Fatal("an out-of-band key change was not corrected")
	}

	// A rotation reaches the template (no InsForge workloads named: at once).
	f.Update("clerk", func(ai *integrationsv1alpha1.AuthIntegration) { ai.Spec.JWT.Generate.Rotation.Trigger = "t1" })
	f.reconcileOK("clerk")
	rotated := f.getSecret("clerk-jwt").Data[jwtsecret.KeyCurrent]
	if string(rotated) == string(key) {
		t.Fatal("no rotation happened")
	}
	if got := clerk.SigningKey("insforge"); string(got) != string(rotated) {
		t.Fatal("the template was not moved to the rotated key")
	}
	controllertest.AssertNoLeak(t, f.Get("clerk"), f.events.All(), string(key), string(rotated), sk)
}

func TestClerkRefusingTheSecretKeyStalls(t *testing.T) {
	f := newFixture(t)
	userTable(t, f.db, "todos")
	clerk := clerkfake.New(t, clerkfake.Config{SecretKey: "sk_test_right", EchoSecrets: true})
	const wrong = "sk_test_wrongKeyValue987"
	f.secret("clerk-api", map[string]string{"CLERK_SECRET_KEY": wrong})
	f.Create(clerkIntegration("clerk-bad", clerk.URL))
	f.reconcileOK("clerk-bad")
	ai := f.Get("clerk-bad")
	controllertest.WantCondition(t, ai, integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonProviderRejected)
	controllertest.AssertNoLeak(t, ai, f.events.All(), wrong, string(f.getSecret("clerk-bad-jwt").Data[jwtsecret.KeyCurrent]))
}

func TestAuth0ResourceServerSignsWithTheKey(t *testing.T) {
	f := newFixture(t)
	userTable(t, f.db, "todos")
	a0 := auth0fake.New(t, auth0fake.Config{Domain: "tenant.auth0.test", ClientID: "m2m-id", ClientSecret: "m2m-secret-value"})
	f.secret("auth0-m2m", map[string]string{"AUTH0_CLIENT_ID": "m2m-id", "AUTH0_CLIENT_SECRET": "m2m-secret-value"})
	ai := todos("auth0")
	ai.Spec.Provider = integrationsv1alpha1.ProviderAuth0
	ai.Spec.DeletionPolicy = integrationsv1alpha1.DeletionDelete
	ai.Spec.Auth0 = &integrationsv1alpha1.Auth0Settings{Domain: "tenant.auth0.test", Management: &integrationsv1alpha1.Auth0Management{
		CredentialsSecretRef: integrationsv1alpha1.LocalSecretReference{Name: "auth0-m2m"}, APIURL: a0.URL,
	}}
	f.Create(ai)
	f.reconcileOK("auth0")
	key := f.getSecret("auth0-jwt").Data[jwtsecret.KeyCurrent]
	if got := a0.SigningSecret("insforge-api"); got != string(key) {
		t.Fatal("the Auth0 API does not sign with the JWT secret")
	}
	controllertest.WantCondition(t, f.Get("auth0"), integrationsv1alpha1.ConditionProviderSynced, metav1.ConditionTrue, integrationsv1alpha1.ReasonProviderSynced)

	// Auth0's access token for the API is one InsForge takes: role absent, so authenticated.
	tok, err := a0.MintAccessToken("insforge-api", "auth0|abc")
	if err != nil {
		t.Fatal(err)
	}
	id, claims, err := insforgejwt.Verify(tok, key, time.Now())
	if err != nil || id.Sub != "auth0|abc" || id.Role != "authenticated" {
		t.Fatalf("InsForge verification: %+v, %v", id, err)
	}
	if _, has := claims["role"]; has {
		t.Errorf("Auth0 API tokens carry role %v: it must come from InsForge's default", claims["role"])
	}

	// Resync: the token is reused, nothing is written.
	fetches, writes := a0.TokenFetches(), a0.Writes()
	f.reconcileOK("auth0")
	if a0.TokenFetches() != fetches || a0.Writes() != writes {
		t.Errorf("resync: %d token fetch(es), %d write(s)", a0.TokenFetches()-fetches, a0.Writes()-writes)
	}
	controllertest.AssertNoLeak(t, f.Get("auth0"), f.events.All(), string(key), "m2m-secret-value")

	// Deletion with the Delete policy removes the API, so nothing keeps signing with the key.
	if err := f.c.Delete(f.ctx, f.Get("auth0")); err != nil {
		t.Fatal(err)
	}
	f.reconcileOK("auth0")
	if _, ok := a0.ResourceServer("insforge-api"); ok {
		t.Error("the Auth0 API outlived its integration (deletionPolicy Delete)")
	}
}

// requestingUserID does what InsForge does with a verified token (withUserContext: SET ROLE to
// the token's role, request.jwt.claims = {sub, email, role}) and inserts a row into todos: the
// row's user id is what requesting_user_id() saw, and RLS let the insert through.
func (f *fixture) requestingUserID(id insforgejwt.Identity) string {
	f.t.Helper()
	conn, err := pgx.Connect(f.ctx, f.db.URL)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(f.ctx)
	tx, err := conn.Begin(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(f.ctx) }()
	claims, _ := json.Marshal(map[string]string{"sub": id.Sub, "email": id.Email, "role": id.Role})
	if _, err := tx.Exec(f.ctx, `SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true)`, id.Role, string(claims)); err != nil {
		f.t.Fatal(err)
	}
	var user string
	if err := tx.QueryRow(f.ctx, `INSERT INTO public.todos (title) VALUES ('via token') RETURNING user_id`).Scan(&user); err != nil {
		f.t.Fatalf("inserting as %s: %v", id.Sub, err)
	}
	var visible int
	if err := tx.QueryRow(f.ctx, `SELECT count(*)::int FROM public.todos`).Scan(&visible); err != nil || visible != 1 {
		f.t.Fatalf("the user sees %d row(s) (%v), want only its own", visible, err)
	}
	return user
}

// insforgeDeployment creates an InsForge-like Deployment reading env (a literal, as a compose
// file would have it), opted in unless optOut.
func (f *fixture) insforgeDeployment(name, env string, extra []corev1.EnvVar, optOut bool) *appsv1.Deployment {
	f.t.Helper()
	labels := map[string]string{"app": name}
	meta := metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{integrationsv1alpha1.LabelSecretAccess: "true"}}
	if optOut {
		meta.Labels = nil
	}
	d := &appsv1.Deployment{
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: name, Image: "insforge/" + name + ":1",
					Env: append([]corev1.EnvVar{{Name: env, Value: "literal-secret-from-compose-0000000000000000"}}, extra...),
				}}},
			},
		},
	}
	if err := f.c.Create(f.ctx, d); err != nil {
		f.t.Fatal(err)
	}
	return d
}

func ptrTo[T any](v T) *T { return &v }

// rollOut plays the Deployment controller finishing a rollout of the current template.
func (f *fixture) rollOut(name string) {
	f.t.Helper()
	if err := podrun.MarkAvailable(f.ctx, f.c, f.deployment(name)); err != nil {
		f.t.Fatal(err)
	}
}

// rotatingWithWorkloads is a WorkOS integration with an exchange, a rotation trigger and the two
// InsForge workloads that read the secret.
func rotatingWithWorkloads(name string) *integrationsv1alpha1.AuthIntegration {
	ai := withExchange(name)
	ai.Spec.JWT.Generate.Rotation = &integrationsv1alpha1.JWTRotation{Trigger: "t0"}
	ai.Spec.InsForge = &integrationsv1alpha1.InsForgeWorkloads{Workloads: []integrationsv1alpha1.InsForgeWorkload{
		{Kind: integrationsv1alpha1.KindDeployment, Name: "insforge"},
		{Kind: integrationsv1alpha1.KindDeployment, Name: "postgrest", Env: []string{"PGRST_JWT_SECRET"}},
	}}
	return ai
}

func TestRotationRollsInsForgeBeforeTheSignersSwitch(t *testing.T) {
	f := newFixture(t)
	userTable(t, f.db, "todos")
	f.r.Exchange = ExchangeOptions{Image: testImage}
	f.insforgeDeployment("insforge", "JWT_SECRET", []corev1.EnvVar{{Name: "ENCRYPTION_KEY", Value: "separate"}}, false)
	f.insforgeDeployment("postgrest", "PGRST_JWT_SECRET", nil, false)
	f.Create(rotatingWithWorkloads("rot"))
	f.reconcileOK("rot")
	if err := podrun.MarkAvailable(f.ctx, f.c, f.deployment(exchangeName("rot"))); err != nil {
		t.Fatal(err)
	}

	k1 := string(f.getSecret("rot-jwt").Data[jwtsecret.KeyCurrent])
	for _, name := range []string{"insforge", "postgrest"} {
		d := f.deployment(name)
		c := d.Spec.Template.Spec.Containers[0]
		if c.Env[0].Value != "" || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.SecretKeyRef.Name != "rot-jwt" ||
			c.Env[0].ValueFrom.SecretKeyRef.Key != jwtsecret.KeyCurrent {
			t.Fatalf("%s env %+v: not pointed at the JWT Secret", name, c.Env[0])
		}
		if d.Spec.Template.Annotations[annotationJWTFingerprint] != jwtsecret.Fingerprint(k1) {
			t.Fatalf("%s not stamped with the key's fingerprint", name)
		}
		if name == "insforge" && (len(c.Env) != 2 || c.Env[1].Value != "separate") {
			t.Fatalf("other env vars changed: %+v", c.Env)
		}
	}
	controllertest.WantCondition(t, f.Get("rot"), integrationsv1alpha1.ConditionKeyPropagated, metav1.ConditionFalse, integrationsv1alpha1.ReasonRollingOut)
	f.rollOut("insforge")
	f.rollOut("postgrest")
	f.reconcileOK("rot")
	ai := f.Get("rot")
	controllertest.AssertReady(t, ai, integrationsv1alpha1.ReasonReconciled)
	controllertest.WantCondition(t, ai, integrationsv1alpha1.ConditionKeyPropagated, metav1.ConditionTrue, integrationsv1alpha1.ReasonKeyPropagated)

	// verifies models InsForge: its pods verify with the key of the last completed rollout.
	insforgeKey := k1
	signing := func() string { return string(f.getSecret(signingSecretName("rot")).Data[excfg.SigningKeyName]) }
	refused := 0
	probe := func(step string) {
		tok, err := insforgejwt.Sign([]byte(signing()), map[string]any{"sub": "user_1", "role": "authenticated",
			"exp": time.Now().Add(time.Minute).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := insforgejwt.Verify(tok, []byte(insforgeKey), time.Now()); err != nil {
			refused++
			t.Logf("%s: a freshly signed token is refused: %v", step, err)
		}
	}
	probe("before the rotation")

	f.Update("rot", func(ai *integrationsv1alpha1.AuthIntegration) { ai.Spec.JWT.Generate.Rotation.Trigger = "t1" })
	f.reconcileOK("rot")
	k2 := string(f.getSecret("rot-jwt").Data[jwtsecret.KeyCurrent])
	if k2 == k1 {
		t.Fatal("no rotation")
	}
	if signing() != k1 {
		t.Fatal("the signers switched to the new key before InsForge runs it")
	}
	ai = f.Get("rot")
	controllertest.WantCondition(t, ai, integrationsv1alpha1.ConditionKeyPropagated, metav1.ConditionFalse, integrationsv1alpha1.ReasonRollingOut)
	states := map[string]integrationsv1alpha1.ConsumerState{}
	for _, c := range ai.Status.JWT.Consumers {
		states[c.Kind+"/"+c.Name] = c.State
	}
	if states["Deployment/insforge"] != integrationsv1alpha1.ConsumerRolling || states["Exchange/rot-exchange"] != integrationsv1alpha1.ConsumerPending {
		t.Fatalf("consumers %v", states)
	}
	probe("InsForge rolling")

	f.rollOut("insforge")
	f.reconcileOK("rot")
	if signing() != k1 {
		t.Fatal("the signers switched while postgrest still runs the old key")
	}
	probe("insforge rolled, postgrest rolling")

	f.rollOut("postgrest")
	insforgeKey = k2 // every InsForge pod now verifies the new key
	f.reconcileOK("rot")
	if signing() != k2 {
		t.Fatal("the signers did not switch once every workload ran the new key")
	}
	probe("after the switch")
	ai = f.Get("rot")
	controllertest.WantCondition(t, ai, integrationsv1alpha1.ConditionKeyPropagated, metav1.ConditionTrue, integrationsv1alpha1.ReasonKeyPropagated)
	if refused != 0 {
		t.Fatalf("%d probe(s) refused", refused)
	}
	controllertest.AssertNoLeak(t, ai, f.events.All(), k1, k2)
}

func TestWorkloadsThatCannotBeRolledStall(t *testing.T) {
	f := newFixture(t)
	userTable(t, f.db, "todos")
	f.r.Exchange = ExchangeOptions{Image: testImage}

	// No ENCRYPTION_KEY: InsForge encrypts its stored secrets with JWT_SECRET, so rotating it
	// would make them unreadable.
	f.insforgeDeployment("insforge", "JWT_SECRET", nil, false)
	f.insforgeDeployment("postgrest", "PGRST_JWT_SECRET", nil, false)
	f.Create(rotatingWithWorkloads("fallback"))
	f.reconcileOK("fallback")
	c := controllertest.WantCondition(t, f.Get("fallback"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonEncryptionFallback)
	if !strings.Contains(c.Message, "ENCRYPTION_KEY") {
		t.Errorf("message %q does not say what to set", c.Message)
	}
	if d := f.deployment("insforge"); d.Spec.Template.Spec.Containers[0].Env[0].Value == "" {
		t.Error("a workload was changed although the integration stalled")
	}

	// A workload that did not opt in is never changed: an integration's editor could otherwise
	// hand the JWT secret to any Deployment of the namespace.
	f2 := newFixture(t)
	userTable(t, f2.db, "todos")
	f2.r.Exchange = ExchangeOptions{Image: testImage}
	f2.insforgeDeployment("insforge", "JWT_SECRET", []corev1.EnvVar{{Name: "ENCRYPTION_KEY", Value: "x"}}, true)
	f2.insforgeDeployment("postgrest", "PGRST_JWT_SECRET", nil, false)
	f2.Create(rotatingWithWorkloads("optout"))
	f2.reconcileOK("optout")
	controllertest.WantCondition(t, f2.Get("optout"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonWorkloadNotOptedIn)
	if d := f2.deployment("insforge"); d.Spec.Template.Spec.Containers[0].Env[0].ValueFrom != nil {
		t.Error("a workload that did not opt in was pointed at the JWT secret")
	}

	// A workload that does not exist.
	f2.Create(func() *integrationsv1alpha1.AuthIntegration {
		ai := rotatingWithWorkloads("missing")
		ai.Spec.InsForge.Workloads[0].Name = "no-such-deployment"
		return ai
	}())
	f2.reconcileOK("missing")
	controllertest.WantCondition(t, f2.Get("missing"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonWorkloadNotFound)
}

func TestAuth0ActionDeployedAndBoundBesideTheUsersOwn(t *testing.T) {
	f := newFixture(t)
	userTable(t, f.db, "todos")
	a0 := auth0fake.New(t, auth0fake.Config{Domain: "tenant.auth0.test", ClientID: "m2m-id", ClientSecret: "m2m-secret-value", BuildAfterGets: 1})
	userBinding := a0.AddUserBinding("post-login", "enrich-profile", "Enrich profile")
	f.secret("auth0-m2m", map[string]string{"AUTH0_CLIENT_ID": "m2m-id", "AUTH0_CLIENT_SECRET": "m2m-secret-value"})
	ai := todos("auth0a")
	ai.Spec.Provider = integrationsv1alpha1.ProviderAuth0
	ai.Spec.JWT.Generate.Rotation = &integrationsv1alpha1.JWTRotation{Trigger: "t0"}
	ai.Spec.Auth0 = &integrationsv1alpha1.Auth0Settings{Domain: "tenant.auth0.test", Management: &integrationsv1alpha1.Auth0Management{
		CredentialsSecretRef: integrationsv1alpha1.LocalSecretReference{Name: "auth0-m2m"}, APIURL: a0.URL,
		Method: integrationsv1alpha1.Auth0Action,
	}}
	f.Create(ai)
	f.reconcileOK("auth0a")
	controllertest.WantCondition(t, f.Get("auth0a"), integrationsv1alpha1.ConditionProviderSynced, metav1.ConditionTrue, integrationsv1alpha1.ReasonProviderSynced)
	key := string(f.getSecret("auth0a-jwt").Data[jwtsecret.KeyCurrent])
	if a0.DeployedSecret("insforge-token", "INSFORGE_JWT_SECRET") != key {
		t.Fatal("the deployed Action does not hold the JWT secret")
	}
	b := a0.Bindings("post-login")
	if len(b) != 2 || b[0].ID != userBinding || b[1].ActionName != "insforge-token" {
		t.Fatalf("bindings %+v: want the user's first, ours after", b)
	}

	// A rotation redeploys the Action with the new key; the user's binding stays.
	f.Update("auth0a", func(ai *integrationsv1alpha1.AuthIntegration) { ai.Spec.JWT.Generate.Rotation.Trigger = "t1" })
	f.reconcileOK("auth0a")
	rotated := string(f.getSecret("auth0a-jwt").Data[jwtsecret.KeyCurrent])
	if rotated == key || a0.DeployedSecret("insforge-token", "INSFORGE_JWT_SECRET") != rotated {
		t.Fatal("the rotation did not reach the deployed Action")
	}
	if b := a0.Bindings("post-login"); len(b) != 2 || b[0].ID != userBinding {
		t.Fatalf("bindings after the rotation %+v", b)
	}
	controllertest.AssertNoLeak(t, f.Get("auth0a"), f.events.All(), key, rotated, "m2m-secret-value")
}

func TestStatefulSetWorkloadRolled(t *testing.T) {
	f := newFixture(t)
	userTable(t, f.db, "todos")
	f.r.Live = f.c
	labels := map[string]string{"app": "insforge"}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "insforge", Namespace: f.ns, Labels: map[string]string{integrationsv1alpha1.LabelSecretAccess: "true"}},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptrTo(int32(1)), ServiceName: "insforge",
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "insforge", Image: "insforge/insforge:1",
				Env: []corev1.EnvVar{{Name: "JWT_SECRET", Value: "literal"}, {Name: "ENCRYPTION_KEY", Value: "separate"}},
			}}}},
		},
	}
	if err := f.c.Create(f.ctx, sts); err != nil {
		t.Fatal(err)
	}
	ai := todos("sts")
	ai.Spec.InsForge = &integrationsv1alpha1.InsForgeWorkloads{Workloads: []integrationsv1alpha1.InsForgeWorkload{
		{Kind: integrationsv1alpha1.KindStatefulSet, Name: "insforge"}}}
	f.Create(ai)
	f.reconcileOK("sts")
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: "insforge"}, sts); err != nil {
		t.Fatal(err)
	}
	env := sts.Spec.Template.Spec.Containers[0].Env[0]
	if env.ValueFrom == nil || env.ValueFrom.SecretKeyRef.Name != "sts-jwt" {
		t.Fatalf("StatefulSet env %+v not pointed at the JWT Secret", env)
	}
	controllertest.WantCondition(t, f.Get("sts"), integrationsv1alpha1.ConditionKeyPropagated, metav1.ConditionFalse, integrationsv1alpha1.ReasonRollingOut)
	sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: sts.Generation, Replicas: 1, ReadyReplicas: 1, UpdatedReplicas: 1,
		CurrentReplicas: 1, CurrentRevision: "r2", UpdateRevision: "r2", AvailableReplicas: 1}
	if err := f.c.Status().Update(f.ctx, sts); err != nil {
		t.Fatal(err)
	}
	f.reconcileOK("sts")
	controllertest.WantCondition(t, f.Get("sts"), integrationsv1alpha1.ConditionKeyPropagated, metav1.ConditionTrue, integrationsv1alpha1.ReasonKeyPropagated)
	controllertest.AssertReady(t, f.Get("sts"), integrationsv1alpha1.ReasonReconciled)
}

func TestRemovingTheExchangeRemovesItsObjects(t *testing.T) {
	f := newFixture(t)
	userTable(t, f.db, "todos")
	f.r.Exchange = ExchangeOptions{Image: testImage}
	f.Create(withExchange("gone"))
	f.reconcileOK("gone")
	f.deployment(exchangeName("gone"))
	f.Update("gone", func(ai *integrationsv1alpha1.AuthIntegration) { ai.Spec.Exchange = nil })
	f.reconcileOK("gone")
	for _, o := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}, &corev1.ConfigMap{}} {
		if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: exchangeName("gone")}, o); err == nil {
			t.Errorf("%T of the removed exchange is still there", o)
		}
	}
	if data := f.getSecret(signingSecretName("gone")).Data; len(data) != 0 {
		t.Error("the signing Secret still holds the key after the last signer went")
	}
	controllertest.AssertReady(t, f.Get("gone"), integrationsv1alpha1.ReasonReconciled)
	if f.Get("gone").Status.Exchange != nil {
		t.Error("status.exchange outlived the exchange")
	}
}

// A second integration naming a workload that already runs another's key cannot take it over.
func TestWorkloadFollowsOneIntegration(t *testing.T) {
	f := newFixture(t)
	userTable(t, f.db, "todos")
	f.r.Exchange = ExchangeOptions{Image: testImage}
	f.insforgeDeployment("insforge", "JWT_SECRET", []corev1.EnvVar{{Name: "ENCRYPTION_KEY", Value: "separate"}}, false)
	f.insforgeDeployment("postgrest", "PGRST_JWT_SECRET", nil, false)
	f.Create(rotatingWithWorkloads("first"))
	f.reconcileOK("first")
	if got := f.deployment("insforge").Annotations[annotationJWTIntegration]; got != "first" {
		t.Fatalf("claim annotation %q", got)
	}
	f.Create(rotatingWithWorkloads("second"))
	f.reconcileOK("second")
	controllertest.WantCondition(t, f.Get("second"), integrationsv1alpha1.ConditionStalled, metav1.ConditionTrue, integrationsv1alpha1.ReasonWorkloadClaimed)
	if ref := f.deployment("insforge").Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name; ref != "first-jwt" {
		t.Fatalf("the second integration took the workload over (reads %s)", ref)
	}
	// Once the first is gone, the claim passes.
	if err := f.c.Delete(f.ctx, f.Get("first")); err != nil {
		t.Fatal(err)
	}
	f.reconcileOK("second")
	if ref := f.deployment("insforge").Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name; ref != "second-jwt" {
		t.Fatalf("after the first integration went, the workload reads %s", ref)
	}
}
