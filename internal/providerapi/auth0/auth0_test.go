package auth0_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/providerapi"
	"github.com/insforge/integrations-operator/internal/providerapi/auth0"
	"github.com/insforge/integrations-operator/internal/providerapi/auth0/auth0fake"
	"github.com/insforge/integrations-operator/internal/testutil/insforgejwt"
)

const (
	domain       = "tenant.fake.invalid"
	clientID     = "m2mClientID0001"
	clientSecret = "m2m-client-secret-FAKE-0123456789abcdef"
)

var (
	key1 = []byte("1111111111111111111111111111111111111111111111111111111111111111")
	key2 = []byte("2222222222222222222222222222222222222222222222222222222222222222")
)

// clock is a settable clock shared by the client and the fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func setup(t *testing.T, cfg auth0fake.Config) (*auth0fake.Server, *auth0.Client, *clock) {
	t.Helper()
	clk := newClock()
	cfg.Domain, cfg.ClientID, cfg.ClientSecret = domain, clientID, clientSecret
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	fake := auth0fake.New(t, cfg)
	return fake, client(fake, clk), clk
}

func client(fake *auth0fake.Server, clk *clock) *auth0.Client {
	return &auth0.Client{Domain: domain, ClientID: clientID, ClientSecret: clientSecret, BaseURL: fake.URL,
		HTTP: fake.Client(), PollInterval: time.Millisecond, BuildTimeout: 5 * time.Second, Now: clk.Now}
}

func syncRS(t *testing.T, c *auth0.Client, rs auth0.ResourceServer, key []byte, last auth0.Record) (auth0.Record, providerapi.Action) {
	t.Helper()
	rec, act, err := c.SyncResourceServer(context.Background(), rs, key, last)
	if err != nil {
		t.Fatalf("SyncResourceServer: %v", err)
	}
	return rec, act
}

func syncAction(t *testing.T, c *auth0.Client, a auth0.Action, key []byte, last auth0.Record) (auth0.Record, providerapi.Action) {
	t.Helper()
	rec, act, err := c.SyncAction(context.Background(), a, key, last)
	if err != nil {
		t.Fatalf("SyncAction: %v", err)
	}
	return rec, act
}

func TestResourceServerLifecycle(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{})
	rec, act := syncRS(t, c, auth0.ResourceServer{}, key1, auth0.Record{})
	if act.Op != providerapi.OpCreated {
		t.Fatalf("create: %+v", act)
	}
	rs, ok := fake.ResourceServer("insforge-api")
	if !ok || rs.ID != rec.ID || rs.SigningAlg != "HS256" || rs.SigningSecret != string(key1) || rs.TokenLifetime != 3600 ||
		rs.Name != "InsForge" || rs.AllowOfflineAccess {
		t.Fatalf("stored %+v, record %+v", rs, rec)
	}
	if rec.KeyFingerprint != providerapi.Fingerprint(key1) || rec.SpecHash == "" {
		t.Fatalf("record %+v", rec)
	}

	writes := fake.Writes()
	rec2, act := syncRS(t, c, auth0.ResourceServer{}, key1, rec)
	if act.Op != providerapi.OpUnchanged || rec2 != rec || fake.Writes() != writes {
		t.Fatalf("resync: %+v %+v, %d writes", act, rec2, fake.Writes()-writes)
	}

	rec3, act := syncRS(t, c, auth0.ResourceServer{}, key2, rec2)
	if act.Op != providerapi.OpUpdated || act.Reason != "signing key rotated" || fake.SigningSecret("insforge-api") != string(key2) ||
		rec3.KeyFingerprint != providerapi.Fingerprint(key2) {
		t.Fatalf("rotate: %+v %+v", act, rec3)
	}

	fake.EditResourceServer("insforge-api", func(rs *auth0fake.ResourceServer) { rs.TokenLifetime, rs.SigningAlg = 86400, "RS256" })
	_, act = syncRS(t, c, auth0.ResourceServer{}, key2, rec3)
	if act.Op != providerapi.OpUpdated || act.Reason != "signing algorithm is not HS256; token lifetime differs" {
		t.Fatalf("drift: %+v", act)
	}
	if rs, _ := fake.ResourceServer("insforge-api"); rs.SigningAlg != "HS256" || rs.TokenLifetime != 3600 || rs.SigningSecret != string(key2) {
		t.Fatalf("not restored: %+v", rs)
	}

	if err := c.DeleteResourceServer(context.Background(), rec3); err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.ResourceServer("insforge-api"); ok {
		t.Fatal("not deleted")
	}
	if err := c.DeleteResourceServer(context.Background(), rec3); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if _, ok := fake.ResourceServer("https://" + domain + "/api/v2/"); !ok {
		t.Fatal("the system API was touched")
	}
}

func TestResourceServerAdoptionAndIdentifierChange(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{})
	first, _ := syncRS(t, c, auth0.ResourceServer{}, key1, auth0.Record{})
	// The record is lost: the API of that identifier is adopted, and its key rewritten.
	adopted, act := syncRS(t, c, auth0.ResourceServer{}, key2, auth0.Record{})
	if act.Op != providerapi.OpUpdated || !strings.Contains(act.Reason, "adopted") || adopted.ID != first.ID || fake.SigningSecret("insforge-api") != string(key2) {
		t.Fatalf("adopt: %+v %+v", act, adopted)
	}
	moved, act := syncRS(t, c, auth0.ResourceServer{Identifier: "https://api.example.test/insforge"}, key2, adopted)
	if act.Op != providerapi.OpUpdated || !strings.Contains(act.Reason, "deleted the API of the previous identifier") || moved.ID == first.ID {
		t.Fatalf("identifier change: %+v %+v", act, moved)
	}
	if _, ok := fake.ResourceServer("insforge-api"); ok {
		t.Fatal("the API of the old identifier still signs with the key")
	}
	if fake.SigningSecret("https://api.example.test/insforge") != string(key2) {
		t.Fatal("the new API has not the key")
	}
	// An identifier with a slash is read back by identifier.
	if _, act := syncRS(t, c, auth0.ResourceServer{Identifier: "https://api.example.test/insforge"}, key2, auth0.Record{}); act.Op != providerapi.OpUpdated {
		t.Fatalf("adopting by an identifier with slashes: %+v", act)
	}
}

func TestResourceServerRefusals(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{})
	if _, _, err := c.SyncResourceServer(context.Background(), auth0.ResourceServer{}, []byte("fifteen bytes!!"), auth0.Record{}); err == nil ||
		!strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("short key: %v", err)
	}
	if fake.TokenFetches() != 0 {
		t.Fatal("a refused key reached Auth0")
	}
	if _, _, err := c.SyncResourceServer(context.Background(), auth0.ResourceServer{Identifier: "https://" + domain + "/api/v2/"}, key1, auth0.Record{}); err == nil ||
		!strings.Contains(err.Error(), "system API") {
		t.Fatalf("system API: %v", err)
	}
	bad := client(fake, newClock())
	bad.Domain = "https://" + domain
	if _, _, err := bad.SyncResourceServer(context.Background(), auth0.ResourceServer{}, key1, auth0.Record{}); err == nil || !strings.Contains(err.Error(), "host name") {
		t.Fatalf("domain with a scheme: %v", err)
	}
}

// TestSecretReadBack: where Auth0 returns signing_secret, a change made in the dashboard shows.
func TestSecretReadBack(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{ReturnSigningSecret: true})
	rec, _ := syncRS(t, c, auth0.ResourceServer{}, key1, auth0.Record{})
	fake.EditResourceServer("insforge-api", func(rs *auth0fake.ResourceServer) { rs.SigningSecret = "pasted-in-the-dashboard" })
	_, act := syncRS(t, c, auth0.ResourceServer{}, key1, rec)
	if act.Op != providerapi.OpUpdated || act.Reason != "signing secret changed outside the operator" || fake.SigningSecret("insforge-api") != string(key1) {
		t.Fatalf("%+v", act)
	}
}

func TestTokenCachedAcrossCalls(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{})
	rec, _ := syncRS(t, c, auth0.ResourceServer{}, key1, auth0.Record{})
	for range 5 {
		syncRS(t, c, auth0.ResourceServer{}, key1, rec)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	fresh := client(fake, newClock())
	for range 20 {
		wg.Go(func() {
			_, _, err := fresh.SyncResourceServer(context.Background(), auth0.ResourceServer{}, key1, rec)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.TokenFetches(); n != 2 {
		t.Fatalf("%d token fetches, want one per client", n)
	}
}

func TestExpiredTokenRefetched(t *testing.T) {
	fake, c, clk := setup(t, auth0fake.Config{TokenLifetime: time.Hour})
	rec, _ := syncRS(t, c, auth0.ResourceServer{}, key1, auth0.Record{})
	clk.Add(58 * time.Minute)
	syncRS(t, c, auth0.ResourceServer{}, key1, rec)
	if n := fake.TokenFetches(); n != 1 {
		t.Fatalf("%d fetches before expiry", n)
	}
	// Within a minute of expiry the token is renewed before use: no call is refused.
	clk.Add(90 * time.Second)
	syncRS(t, c, auth0.ResourceServer{}, key1, rec)
	if n := fake.TokenFetches(); n != 2 {
		t.Fatalf("%d fetches after expiry, want 2", n)
	}
	// A token revoked early: the call answers 401, the token is dropped and the call made again.
	fake.ExpireTokens()
	gets := fake.Count(http.MethodGet, "/api/v2/resource-servers/"+rec.ID)
	if _, act := syncRS(t, c, auth0.ResourceServer{}, key1, rec); act.Op != providerapi.OpUnchanged {
		t.Fatalf("%+v", act)
	}
	if n := fake.TokenFetches(); n != 3 || fake.Count(http.MethodGet, "/api/v2/resource-servers/"+rec.ID) != gets+2 {
		t.Fatalf("%d fetches, want 3 (and the refused read made again)", n)
	}
}

func TestInsufficientScope(t *testing.T) {
	scopes := []string{"read:resource_servers", "update:resource_servers", "delete:resource_servers"}
	_, c, _ := setup(t, auth0fake.Config{Scopes: scopes})
	_, _, err := c.SyncResourceServer(context.Background(), auth0.ResourceServer{}, key1, auth0.Record{})
	scope, ok := auth0.MissingScope(err)
	if !errors.Is(err, auth0.ErrInsufficientScope) || !errors.Is(err, auth0.ErrUnauthorized) || !ok || scope != "create:resource_servers" ||
		!strings.Contains(err.Error(), "create:resource_servers") {
		t.Fatalf("err %v, scope %q", err, scope)
	}
	if _, ok := auth0.MissingScope(errors.New("x")); ok {
		t.Fatal("MissingScope of an unrelated error")
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	fake, _, clk := setup(t, auth0fake.Config{})
	wrong := client(fake, clk)
	wrong.ClientSecret = "not-the-secret-0123456789"
	_, _, err := wrong.SyncResourceServer(context.Background(), auth0.ResourceServer{}, key1, auth0.Record{})
	if !errors.Is(err, auth0.ErrUnauthorized) || !strings.Contains(err.Error(), clientID) {
		t.Fatalf("wrong secret: %v", err)
	}
	otherTenant := client(fake, clk)
	otherTenant.Domain = "other.fake.invalid"
	if _, _, err := otherTenant.SyncResourceServer(context.Background(), auth0.ResourceServer{}, key1, auth0.Record{}); !errors.Is(err, auth0.ErrUnauthorized) {
		t.Fatalf("wrong audience: %v", err)
	}
}

func TestRateLimitThenSuccess(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{})
	fake.RateLimitNext(1, 5*time.Second)
	_, _, err := c.SyncResourceServer(context.Background(), auth0.ResourceServer{}, key1, auth0.Record{})
	if d, ok := auth0.RetryAfter(err); !errors.Is(err, auth0.ErrRateLimited) || !ok || d != 5*time.Second {
		t.Fatalf("err %v, delay %s", err, d)
	}
	syncRS(t, c, auth0.ResourceServer{}, key1, auth0.Record{}) // the token call was the limited one
	fake.RateLimitNext(1, 3*time.Second)
	_, _, err = c.SyncResourceServer(context.Background(), auth0.ResourceServer{}, key1, auth0.Record{})
	if d, ok := auth0.RetryAfter(err); !ok || d != 3*time.Second {
		t.Fatalf("management call: %v", err)
	}
	if _, act := syncRS(t, c, auth0.ResourceServer{}, key1, auth0.Record{}); act.Op != providerapi.OpUpdated {
		t.Fatalf("after the limit: %+v", act)
	}
}

// TestResourceServerTokenPassesInsForge: the access token Auth0 issues for the synced API
// verifies with HS256 and the key. It has no role claim, which InsForge reads as authenticated.
func TestResourceServerTokenPassesInsForge(t *testing.T) {
	fake, c, clk := setup(t, auth0fake.Config{})
	syncRS(t, c, auth0.ResourceServer{}, key1, auth0.Record{})
	tok, err := fake.MintAccessToken("insforge-api", "auth0|65f0c0ffee")
	if err != nil {
		t.Fatal(err)
	}
	id, claims, err := insforgejwt.Verify(tok, key1, clk.Now())
	if err != nil {
		t.Fatalf("InsForge would reject the token: %v", err)
	}
	if _, has := claims["role"]; has {
		t.Fatalf("Auth0 access tokens carry no role claim: %v", claims)
	}
	if id.Sub != "auth0|65f0c0ffee" || id.Role != "authenticated" {
		t.Fatalf("identity %+v", id)
	}
	if _, _, err := insforgejwt.Verify(tok, key2, clk.Now()); err == nil {
		t.Fatal("verified with another key")
	}
}

func TestActionCreateDeployBindKeepsUserBindings(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{BuildAfterGets: 3})
	userA := fake.AddUserBinding("post-login", "user-rules", "User rules")
	userB := fake.AddUserBinding("post-login", "user-audit", "Audit")
	rec, act := syncAction(t, c, auth0.Action{}, key1, auth0.Record{})
	if act.Op != providerapi.OpCreated || !strings.Contains(act.Reason, "bound to post-login") {
		t.Fatalf("create: %+v", act)
	}
	a, _ := fake.Action("insforge-token")
	if a.ID != rec.ID || a.Status != "built" || !a.AllChangesDeployed || a.DeployedVersion != rec.DeployedVersion || a.Runtime != "node22" ||
		len(a.Dependencies) != 1 || a.Dependencies[0] != (auth0fake.Dependency{Name: "jsonwebtoken", Version: auth0.JSONWebTokenVersion}) ||
		len(a.Triggers) != 1 || a.Triggers[0] != "post-login" {
		t.Fatalf("action %+v, record %+v", a, rec)
	}
	if fake.ActionSecret("insforge-token", "INSFORGE_JWT_SECRET") != string(key1) || fake.DeployedSecret("insforge-token", "INSFORGE_JWT_SECRET") != string(key1) {
		t.Fatal("the deployed Action does not hold the key")
	}
	for _, want := range []string{`role: "authenticated"`, `aud: "insforge-api"`, `expiresIn: 3600`, `sub: event.user.user_id`,
		`event.secrets.INSFORGE_JWT_SECRET`, `api.idToken.setCustomClaim("https://insforge.dev/insforge_token", token)`,
		`api.accessToken.setCustomClaim("https://insforge.dev/insforge_token", token)`, `algorithm: "HS256"`} {
		if !strings.Contains(a.Code, want) {
			t.Errorf("code lacks %s:\n%s", want, a.Code)
		}
	}
	bs := fake.Bindings("post-login")
	if len(bs) != 3 || bs[0].ID != userA || bs[1].ID != userB || bs[2].ActionID != rec.ID || bs[0].DisplayName != "User rules" {
		t.Fatalf("bindings %+v", bs)
	}

	writes := fake.Writes()
	rec2, act := syncAction(t, c, auth0.Action{}, key1, rec)
	if act.Op != providerapi.OpUnchanged || rec2 != rec || fake.Writes() != writes {
		t.Fatalf("resync: %+v %+v, %d writes", act, rec2, fake.Writes()-writes)
	}
}

func TestActionKeyRotationRedeploys(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{})
	user := fake.AddUserBinding("post-login", "user-rules", "User rules")
	rec, _ := syncAction(t, c, auth0.Action{}, key1, auth0.Record{})
	before := fake.Bindings("post-login")
	rec2, act := syncAction(t, c, auth0.Action{}, key2, rec)
	if act.Op != providerapi.OpUpdated || act.Reason != "signing key rotated" {
		t.Fatalf("rotate: %+v", act)
	}
	if rec2.DeployedVersion == rec.DeployedVersion || rec2.KeyFingerprint != providerapi.Fingerprint(key2) {
		t.Fatalf("not redeployed: %+v", rec2)
	}
	if fake.DeployedSecret("insforge-token", "INSFORGE_JWT_SECRET") != string(key2) {
		t.Fatal("the live version still has the old key")
	}
	after := fake.Bindings("post-login")
	if len(after) != 2 || after[0].ID != user || after[1] != before[1] {
		t.Fatalf("bindings changed: %+v → %+v", before, after)
	}
}

func TestActionEditsOutsideTheOperator(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{})
	rec, _ := syncAction(t, c, auth0.Action{}, key1, auth0.Record{})

	fake.SetActionSecret("insforge-token", "INSFORGE_JWT_SECRET", "a key typed into the dashboard")
	rec, act := syncAction(t, c, auth0.Action{}, key1, rec)
	if act.Op != providerapi.OpUpdated || act.Reason != "changes made outside the operator are not deployed" ||
		fake.DeployedSecret("insforge-token", "INSFORGE_JWT_SECRET") != string(key1) {
		t.Fatalf("undeployed edit: %+v", act)
	}

	fake.SetActionSecret("insforge-token", "INSFORGE_JWT_SECRET", "a key typed into the dashboard")
	fake.DeployOutOfBand("insforge-token")
	rec, act = syncAction(t, c, auth0.Action{}, key1, rec)
	if act.Op != providerapi.OpUpdated || act.Reason != "a version the operator did not deploy is live" ||
		fake.DeployedSecret("insforge-token", "INSFORGE_JWT_SECRET") != string(key1) {
		t.Fatalf("deployed edit: %+v", act)
	}

	_, act = syncAction(t, c, auth0.Action{Claim: "https://example.test/t", LifetimeSeconds: 600}, key1, rec)
	if act.Op != providerapi.OpUpdated || act.Reason != "code differs" {
		t.Fatalf("spec change: %+v", act)
	}
	if a, _ := fake.Action("insforge-token"); !strings.Contains(a.Code, `expiresIn: 600`) || !strings.Contains(a.Code, `"https://example.test/t"`) {
		t.Fatalf("code %s", a.Code)
	}
}

func TestActionBuildProblems(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{})
	rec, _ := syncAction(t, c, auth0.Action{}, key1, auth0.Record{})
	fake.FailBuild("insforge-token")
	if _, _, err := c.SyncAction(context.Background(), auth0.Action{}, key2, rec); err == nil || !strings.Contains(err.Error(), "build failed") {
		t.Fatalf("failed build: %v", err)
	}

	slow, c2, _ := setup(t, auth0fake.Config{BuildAfterGets: 1 << 30})
	c2.BuildTimeout = 50 * time.Millisecond
	_, _, err := c2.SyncAction(context.Background(), auth0.Action{}, key1, auth0.Record{})
	if err == nil || !strings.Contains(err.Error(), "still") || len(slow.Bindings("post-login")) != 0 {
		t.Fatalf("slow build: %v", err)
	}
}

func TestActionAdoptionAndTriggerConflict(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{})
	fake.AddUserBinding("post-login", "insforge-token", "Hand-made")
	rec, act := syncAction(t, c, auth0.Action{}, key1, auth0.Record{})
	if act.Op != providerapi.OpUpdated || !strings.HasPrefix(act.Reason, "adopted") || strings.Contains(act.Reason, "bound") {
		t.Fatalf("adopt: %+v", act)
	}
	if len(fake.Bindings("post-login")) != 1 || fake.DeployedSecret("insforge-token", "INSFORGE_JWT_SECRET") != string(key1) || rec.DeployedVersion == "" {
		t.Fatalf("adopted action %+v", fake.Bindings("post-login"))
	}
	fake.AddUserBinding("credentials-exchange", "other-trigger", "x")
	if _, _, err := c.SyncAction(context.Background(), auth0.Action{Name: "other-trigger"}, key1, auth0.Record{}); err == nil ||
		!strings.Contains(err.Error(), "another trigger") {
		t.Fatalf("trigger conflict: %v", err)
	}
}

func TestDeleteActionUnbindsOnlyOurs(t *testing.T) {
	fake, c, _ := setup(t, auth0fake.Config{})
	userA := fake.AddUserBinding("post-login", "user-rules", "User rules")
	rec, _ := syncAction(t, c, auth0.Action{}, key1, auth0.Record{})
	userB := fake.AddUserBinding("post-login", "user-audit", "Audit")
	if err := c.DeleteAction(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	bs := fake.Bindings("post-login")
	if len(bs) != 2 || bs[0].ID != userA || bs[1].ID != userB {
		t.Fatalf("bindings after delete: %+v", bs)
	}
	if _, ok := fake.Action("insforge-token"); ok {
		t.Fatal("action not deleted")
	}
	if _, ok := fake.Action("user-rules"); !ok {
		t.Fatal("a user's action was deleted")
	}
	if err := c.DeleteAction(context.Background(), rec); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
}

// TestErrorsNeverQuoteSecrets: even a server that echoes what it was sent does not get the client
// secret, the access token or the signing key into an error.
func TestErrorsNeverQuoteSecrets(t *testing.T) {
	ctx := context.Background()
	fake, c, clk := setup(t, auth0fake.Config{EchoSecrets: true})
	rsRec, _ := syncRS(t, c, auth0.ResourceServer{}, key1, auth0.Record{})
	actRec, _ := syncAction(t, c, auth0.Action{}, key1, auth0.Record{})
	var tokens []string
	cases := map[string]func() error{
		"token endpoint echoing the client secret": func() error {
			bad := client(fake, clk)
			bad.ClientSecret = "wrong-client-secret-0123456789"
			tokens = append(tokens, bad.ClientSecret)
			_, _, err := bad.SyncResourceServer(ctx, auth0.ResourceServer{}, key1, rsRec)
			return err
		},
		"resource server write echoing the request": func() error {
			fake.FailNextWrite(http.StatusBadRequest)
			_, _, err := c.SyncResourceServer(ctx, auth0.ResourceServer{}, key2, rsRec)
			return err
		},
		"resource server validation echoing the secret": func() error {
			_, _, err := c.SyncResourceServer(ctx, auth0.ResourceServer{TokenLifetime: 9_999_999}, key2, rsRec)
			return err
		},
		"action write echoing the request": func() error {
			fake.FailNextWrite(http.StatusBadRequest)
			_, _, err := c.SyncAction(ctx, auth0.Action{}, key2, actRec)
			return err
		},
		"expired bearer echoed": func() error {
			// The fake's clock jumps two hours at each reading: every token has expired by the
			// time it is used, while the client's clock says it is fresh.
			var mu sync.Mutex
			fakeNow := clk.Now()
			jumpy := func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				fakeNow = fakeNow.Add(2 * time.Hour)
				return fakeNow
			}
			ahead := auth0fake.New(t, auth0fake.Config{Domain: domain, ClientID: clientID, ClientSecret: clientSecret, EchoSecrets: true,
				TokenLifetime: time.Hour, Now: jumpy})
			_, _, err := client(ahead, clk).SyncResourceServer(ctx, auth0.ResourceServer{}, key1, auth0.Record{})
			if ahead.TokenFetches() != 2 {
				t.Errorf("a 401 was retried with %d tokens, want 2", ahead.TokenFetches())
			}
			return err
		},
	}
	for name, run := range cases {
		err := run()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), "fake_at_") {
			t.Errorf("%s: error quotes an access token: %v", name, err)
		}
		for _, secret := range append([]string{clientSecret, string(key1), string(key2)}, tokens...) {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error quotes a secret: %v", name, err)
			}
		}
		if !strings.Contains(err.Error(), "[REDACTED]") {
			t.Errorf("%s: the echo was not exercised: %v", name, err)
		}
	}
}
