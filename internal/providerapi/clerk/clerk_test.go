package clerk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/providerapi"
	"github.com/insforge/integrations-operator/internal/providerapi/clerk"
	"github.com/insforge/integrations-operator/internal/providerapi/clerk/clerkfake"
	"github.com/insforge/integrations-operator/internal/testutil/insforgejwt"
)

const secretKey = "sk_test_FAKEclerkSecretKey0123456789"

var (
	key1 = []byte("1111111111111111111111111111111111111111111111111111111111111111")
	key2 = []byte("2222222222222222222222222222222222222222222222222222222222222222")
)

func setup(t *testing.T, cfg clerkfake.Config) (*clerkfake.Server, *clerk.Client) {
	t.Helper()
	if cfg.SecretKey == "" {
		cfg.SecretKey = secretKey
	}
	fake := clerkfake.New(t, cfg)
	return fake, &clerk.Client{BaseURL: fake.URL, SecretKey: secretKey, HTTP: fake.Client()}
}

func want() clerk.Template { return clerk.DesiredTemplate("insforge", 60, 5, false) }

func mustSync(t *testing.T, c *clerk.Client, tmpl clerk.Template, key []byte, last clerk.Record) (clerk.Record, providerapi.Action) {
	t.Helper()
	rec, act, err := c.Sync(context.Background(), tmpl, key, last)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return rec, act
}

func TestDesiredTemplate(t *testing.T) {
	tmpl := clerk.DesiredTemplate("", 0, -1, true)
	if tmpl.Name != "insforge" || tmpl.Lifetime != 60 || tmpl.AllowedClockSkew != 5 {
		t.Fatalf("defaults: %+v", tmpl)
	}
	if tmpl.Claims["role"] != "authenticated" || tmpl.Claims["aud"] != "insforge-api" || tmpl.Claims["email"] != "{{user.primary_email_address}}" || len(tmpl.Claims) != 3 {
		t.Fatalf("claims: %v", tmpl.Claims)
	}
	if c := clerk.DesiredTemplate("x", 120, 0, false).Claims; len(c) != 2 || c["sub"] != nil || c["iss"] != nil {
		t.Fatalf("claims without email: %v", c)
	}
}

func TestCreateThenNoopResync(t *testing.T) {
	fake, c := setup(t, clerkfake.Config{})
	rec, act := mustSync(t, c, want(), key1, clerk.Record{})
	if act.Op != providerapi.OpCreated {
		t.Fatalf("first sync: %+v", act)
	}
	got, ok := fake.Template("insforge")
	if !ok || got.ID != rec.TemplateID || got.UpdatedAt != rec.UpdatedAt {
		t.Fatalf("stored %+v, record %+v", got, rec)
	}
	if !got.CustomSigningKey || got.SigningAlgorithm != "HS256" || !bytes.Equal(got.SigningKey, key1) ||
		got.Claims["role"] != "authenticated" || got.Claims["aud"] != "insforge-api" || got.Lifetime != 60 || got.AllowedClockSkew != 5 {
		t.Fatalf("stored template %+v", got)
	}
	if rec.KeyFingerprint != clerk.Fingerprint(key1) || !strings.HasPrefix(rec.KeyFingerprint, "sha256:") || rec.SpecHash == "" {
		t.Fatalf("record %+v", rec)
	}
	h := fake.LastHeader()
	if h.Get("Clerk-API-Version") != "2021-02-05" || h.Get("User-Agent") == "" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", h)
	}

	writes := fake.Writes()
	rec2, act := mustSync(t, c, want(), key1, rec)
	if act.Op != providerapi.OpUnchanged || rec2 != rec {
		t.Fatalf("resync: %+v, %+v (was %+v)", act, rec2, rec)
	}
	if fake.Writes() != writes {
		t.Fatalf("resync wrote %d times", fake.Writes()-writes)
	}
	if n := fake.Count(http.MethodGet, clerkfake.Path+"/"+rec.TemplateID); n != 1 {
		t.Fatalf("resync read the template %d times, want 1 (by id, no list)", n)
	}
}

func TestDriftIsCorrected(t *testing.T) {
	cases := map[string]struct {
		edit   func(*clerkfake.Template)
		reason string
	}{
		"claims":   {func(tm *clerkfake.Template) { tm.Claims["role"] = "project_admin" }, "claims differ"},
		"lifetime": {func(tm *clerkfake.Template) { tm.Lifetime = 3600 }, "lifetime differs"},
		"skew":     {func(tm *clerkfake.Template) { tm.AllowedClockSkew = 60 }, "allowed clock skew differs"},
		"algorithm": {func(tm *clerkfake.Template) {
			tm.SigningAlgorithm = "RS256"
		}, "signing is not HS256"},
		// Only the key changed: invisible but for updated_at.
		"key only": {func(tm *clerkfake.Template) { tm.SigningKey = []byte("someone else's key material!!!!!") }, "edited outside the operator"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			fake, c := setup(t, clerkfake.Config{})
			rec, _ := mustSync(t, c, want(), key1, clerk.Record{})
			fake.EditOutOfBand("insforge", tc.edit)
			rec2, act := mustSync(t, c, want(), key1, rec)
			if act.Op != providerapi.OpUpdated || !strings.Contains(act.Reason, tc.reason) || !strings.Contains(act.Reason, "edited outside the operator") {
				t.Fatalf("action %+v, want updated with %q", act, tc.reason)
			}
			got, _ := fake.Template("insforge")
			if !bytes.Equal(got.SigningKey, key1) || got.Claims["role"] != "authenticated" || got.Lifetime != 60 || got.SigningAlgorithm != "HS256" {
				t.Fatalf("not restored: %+v", got)
			}
			if rec2.UpdatedAt != got.UpdatedAt || rec2.UpdatedAt <= rec.UpdatedAt {
				t.Fatalf("record %+v after the write, template updated_at %d", rec2, got.UpdatedAt)
			}
			writes := fake.Writes()
			if _, act := mustSync(t, c, want(), key1, rec2); act.Op != providerapi.OpUnchanged || fake.Writes() != writes {
				t.Fatalf("after the repair: %+v, %d writes", act, fake.Writes()-writes)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	fake, c := setup(t, clerkfake.Config{})
	rec, _ := mustSync(t, c, want(), key1, clerk.Record{})
	rec2, act := mustSync(t, c, want(), key2, rec)
	if act.Op != providerapi.OpUpdated || act.Reason != "signing key rotated" {
		t.Fatalf("action %+v", act)
	}
	if !bytes.Equal(fake.SigningKey("insforge"), key2) || rec2.KeyFingerprint != clerk.Fingerprint(key2) || rec2.TemplateID != rec.TemplateID {
		t.Fatalf("after rotation: key %q, record %+v", fake.SigningKey("insforge"), rec2)
	}
}

func TestSpecChange(t *testing.T) {
	fake, c := setup(t, clerkfake.Config{})
	rec, _ := mustSync(t, c, want(), key1, clerk.Record{})
	withEmail := clerk.DesiredTemplate("insforge", 300, 10, true)
	rec2, act := mustSync(t, c, withEmail, key1, rec)
	if act.Op != providerapi.OpUpdated || act.Reason != "claims differ; lifetime differs; allowed clock skew differs" {
		t.Fatalf("action %+v", act)
	}
	if rec2.SpecHash == rec.SpecHash {
		t.Fatal("spec hash unchanged")
	}
	got, _ := fake.Template("insforge")
	if got.Claims["email"] != clerk.EmailShortcode || got.Lifetime != 300 {
		t.Fatalf("stored %+v", got)
	}
	// A rename keeps the template (found by id).
	renamed := clerk.DesiredTemplate("insforge-v2", 300, 10, true)
	rec3, act := mustSync(t, c, renamed, key1, rec2)
	if act.Op != providerapi.OpUpdated || act.Reason != "name differs" || rec3.TemplateID != rec.TemplateID {
		t.Fatalf("rename: %+v %+v", act, rec3)
	}
}

func TestAdoptsTemplateOfTheSameName(t *testing.T) {
	fake, c := setup(t, clerkfake.Config{})
	other := fake.Create(clerkfake.Template{Name: "other", Claims: map[string]any{"x": 1.0}, Lifetime: 60})
	made := fake.Create(clerkfake.Template{Name: "insforge", Claims: map[string]any{"role": "authenticated", "aud": "insforge-api"},
		Lifetime: 60, AllowedClockSkew: 5, CustomSigningKey: true, SigningAlgorithm: "HS256", SigningKey: []byte("pasted by hand, maybe stale key")})
	rec, act := mustSync(t, c, want(), key1, clerk.Record{})
	if act.Op != providerapi.OpUpdated || !strings.Contains(act.Reason, "adopted") || rec.TemplateID != made.ID {
		t.Fatalf("adopt: %+v %+v", act, rec)
	}
	if !bytes.Equal(fake.SigningKey("insforge"), key1) {
		t.Fatal("the adopted template's key was not written")
	}
	if o, _ := fake.Template("other"); o.UpdatedAt != other.UpdatedAt {
		t.Fatal("another template was touched")
	}
}

func TestRecordedTemplateGone(t *testing.T) {
	fake, c := setup(t, clerkfake.Config{})
	rec, _ := mustSync(t, c, want(), key1, clerk.Record{})
	if err := c.Delete(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.Template("insforge"); ok {
		t.Fatal("not deleted")
	}
	if err := c.Delete(context.Background(), rec); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if err := c.Delete(context.Background(), clerk.Record{}); err != nil {
		t.Fatalf("deleting nothing: %v", err)
	}
	rec2, act := mustSync(t, c, want(), key1, rec)
	if act.Op != providerapi.OpCreated || rec2.TemplateID == rec.TemplateID {
		t.Fatalf("after deletion: %+v %+v", act, rec2)
	}
	// Someone deleted ours and made another of the same name: it is found by name and rewritten.
	if err := c.Delete(context.Background(), rec2); err != nil {
		t.Fatal(err)
	}
	fake.Create(clerkfake.Template{Name: "insforge", Claims: map[string]any{"role": "authenticated"}, Lifetime: 60})
	_, act = mustSync(t, c, want(), key1, rec2)
	if act.Op != providerapi.OpUpdated || !strings.Contains(act.Reason, "replaced outside the operator") {
		t.Fatalf("replaced: %+v", act)
	}
}

func TestListShapesAndPages(t *testing.T) {
	for _, bare := range []bool{false, true} {
		t.Run(fmt.Sprintf("bare=%v", bare), func(t *testing.T) {
			fake, c := setup(t, clerkfake.Config{BareList: bare})
			for i := range 130 {
				fake.Create(clerkfake.Template{Name: fmt.Sprintf("t%03d", i), Claims: map[string]any{}, Lifetime: 60})
			}
			made := fake.Create(clerkfake.Template{Name: "insforge", Claims: map[string]any{}, Lifetime: 60})
			rec, act := mustSync(t, c, want(), key1, clerk.Record{})
			if act.Op != providerapi.OpUpdated || rec.TemplateID != made.ID {
				t.Fatalf("found %+v %+v, want the template on the second page", act, rec)
			}
			if n := fake.Count(http.MethodGet, clerkfake.Path); n != 2 {
				t.Fatalf("%d list pages read", n)
			}
		})
	}
}

func TestRateLimitThenSuccess(t *testing.T) {
	fake, c := setup(t, clerkfake.Config{})
	fake.RateLimitNext(1, 7*time.Second)
	_, _, err := c.Sync(context.Background(), want(), key1, clerk.Record{})
	d, ok := clerk.RetryAfter(err)
	if !errors.Is(err, clerk.ErrRateLimited) || !ok || d != 7*time.Second {
		t.Fatalf("err %v, RetryAfter %s %v", err, d, ok)
	}
	if _, ok := clerk.RetryAfter(errors.New("other")); ok {
		t.Fatal("RetryAfter of an unrelated error")
	}
	if _, act := mustSync(t, c, want(), key1, clerk.Record{}); act.Op != providerapi.OpCreated {
		t.Fatalf("after the limit: %+v", act)
	}
}

func TestTypedErrors(t *testing.T) {
	fake, c := setup(t, clerkfake.Config{})
	bad := &clerk.Client{BaseURL: fake.URL, SecretKey: "sk_test_wrong", HTTP: fake.Client()}
	_, _, err := bad.Sync(context.Background(), want(), key1, clerk.Record{})
	if !errors.Is(err, clerk.ErrUnauthorized) || errors.Is(err, clerk.ErrRateLimited) {
		t.Fatalf("wrong key: %v", err)
	}
	fake.FailNext(1, http.StatusForbidden)
	if _, _, err := c.Sync(context.Background(), want(), key1, clerk.Record{}); !errors.Is(err, clerk.ErrUnauthorized) {
		t.Fatalf("403: %v", err)
	}
	fake.FailNext(1, http.StatusPaymentRequired)
	if _, _, err := c.Sync(context.Background(), want(), key1, clerk.Record{}); !errors.Is(err, clerk.ErrPlanRequired) {
		t.Fatalf("402: %v", err)
	}
	// A 422 carries Clerk's message.
	fake.Create(clerkfake.Template{Name: "taken", Claims: map[string]any{}, Lifetime: 60})
	rec, _ := mustSync(t, c, want(), key1, clerk.Record{})
	_, _, err = c.Sync(context.Background(), clerk.DesiredTemplate("taken", 60, 5, false), key1, rec)
	if err == nil || !strings.Contains(err.Error(), "HTTP 422 form_identifier_exists: A JWT template named taken already exists") {
		t.Fatalf("422: %v", err)
	}
}

func TestRefusesUnsafeTemplates(t *testing.T) {
	fake, c := setup(t, clerkfake.Config{})
	cases := map[string]clerk.Template{
		"admin role":    {Name: "insforge", Claims: map[string]any{"role": "project_admin"}},
		"no role":       {Name: "insforge", Claims: map[string]any{"aud": "insforge-api"}},
		"shortcode":     {Name: "insforge", Claims: map[string]any{"role": "{{user.public_metadata.role}}"}},
		"sub":           {Name: "insforge", Claims: map[string]any{"role": "authenticated", "sub": "x"}},
		"iss":           {Name: "insforge", Claims: map[string]any{"role": "authenticated", "iss": "x"}},
		"no name":       {Claims: map[string]any{"role": "authenticated"}},
		"short life":    {Name: "insforge", Claims: map[string]any{"role": "authenticated"}, Lifetime: 10},
		"skew too long": {Name: "insforge", Claims: map[string]any{"role": "authenticated"}, AllowedClockSkew: 301},
	}
	for name, tmpl := range cases {
		if _, _, err := c.Sync(context.Background(), tmpl, key1, clerk.Record{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, _, err := c.Sync(context.Background(), want(), nil, clerk.Record{}); err == nil {
		t.Error("empty key accepted")
	}
	if fake.Writes() != 0 || fake.Count(http.MethodGet, clerkfake.Path) != 0 {
		t.Fatal("a refused template reached Clerk")
	}
}

// TestErrorsNeverQuoteSecrets: even a server that echoes what it was sent does not get the secret
// key or the signing key into an error.
func TestErrorsNeverQuoteSecrets(t *testing.T) {
	ctx := context.Background()
	fake, c := setup(t, clerkfake.Config{EchoSecrets: true})
	taken := fake.Create(clerkfake.Template{Name: "taken", Claims: map[string]any{}, Lifetime: 60})
	rec, _ := mustSync(t, c, want(), key1, clerk.Record{})
	closed := clerkfake.New(t, clerkfake.Config{SecretKey: secretKey})
	closed.Close()
	wrongKey := "sk_test_wrongButStillSecret0123456789"
	cases := map[string]func() error{
		"401 echoing the bearer": func() error {
			bad := &clerk.Client{BaseURL: fake.URL, SecretKey: wrongKey, HTTP: fake.Client()}
			_, _, err := bad.Sync(ctx, want(), key1, clerk.Record{})
			return err
		},
		"422 echoing the signing key": func() error {
			_, _, err := c.Sync(ctx, clerk.DesiredTemplate("taken", 60, 5, false), key2, rec)
			return err
		},
		"local validation": func() error {
			_, _, err := c.Sync(ctx, clerk.Template{Name: "x", Claims: map[string]any{"role": string(key2)}}, key2, rec)
			return err
		},
		"transport": func() error {
			dead := &clerk.Client{BaseURL: closed.URL, SecretKey: secretKey}
			_, _, err := dead.Sync(ctx, want(), key2, rec)
			return err
		},
		"delete": func() error {
			fake.FailNext(1, http.StatusUnauthorized)
			return c.Delete(ctx, clerk.Record{TemplateID: taken.ID})
		},
	}
	for name, run := range cases {
		err := run()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		for _, secret := range []string{secretKey, wrongKey, string(key1), string(key2)} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error quotes a secret: %v", name, err)
			}
		}
	}
}

// TestTemplateTokenPassesInsForge: the token Clerk mints from the synced template verifies with
// HS256 and the key, as InsForge verifies it, with role authenticated and sub the Clerk user.
func TestTemplateTokenPassesInsForge(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	fake, c := setup(t, clerkfake.Config{Now: func() time.Time { return now }})
	mustSync(t, c, clerk.DesiredTemplate("insforge", 60, 5, true), key1, clerk.Record{})
	fake.SetUserEmail("user_2abc", "ada@example.com")
	tok, err := fake.MintTemplateToken("insforge", "user_2abc")
	if err != nil {
		t.Fatal(err)
	}
	id, claims, err := insforgejwt.Verify(tok, key1, now)
	if err != nil {
		t.Fatalf("InsForge would reject the token: %v", err)
	}
	if id.Sub != "user_2abc" || id.Role != "authenticated" || id.Email != "ada@example.com" || claims["role"] != "authenticated" || claims["aud"] != "insforge-api" {
		t.Fatalf("identity %+v, claims %v", id, claims)
	}
	if claims["exp"].(float64)-claims["iat"].(float64) != 60 {
		t.Fatalf("lifetime: %v", claims)
	}
	if _, _, err := insforgejwt.Verify(tok, key2, now); err == nil {
		t.Fatal("verified with another key")
	}
}
