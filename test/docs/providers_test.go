package docs

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.Shutdown()
	os.Exit(code)
}

// yamlBlock is a fenced ```yaml block of a markdown file.
var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// guideProviders maps each provider guide to the spec.provider its AuthIntegration sets.
var guideProviders = map[string]v1.AuthProvider{
	"clerk.md": v1.ProviderClerk, "auth0.md": v1.ProviderAuth0, "workos.md": v1.ProviderWorkOS,
	"kinde.md": v1.ProviderKinde, "stytch.md": v1.ProviderStytch, "betterauth.md": v1.ProviderBetterAuth,
}

// TestProviderGuidesApply: each provider guide leads with a complete AuthIntegration, and the API
// server accepts it as written (strict decoding catches a misspelt field, a server-side dry run
// the CEL rules); a field fragment shown as an alternative is accepted once merged into it.
func TestProviderGuidesApply(t *testing.T) {
	env := kubetest.Shared(t)
	ns := env.Namespace(t)
	dir := filepath.Join(env.Root, "docs", "providers")
	for page, provider := range guideProviders {
		t.Run(page, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, page))
			if err != nil {
				t.Fatal(err)
			}
			var full *v1.AuthIntegration
			var fragments []string
			for _, m := range yamlBlock.FindAllStringSubmatch(string(raw), -1) {
				block := m[1]
				if !strings.Contains(block, "kind: AuthIntegration") {
					if strings.HasPrefix(block, "spec:") {
						fragments = append(fragments, block)
					}
					continue
				}
				if full != nil {
					t.Fatal("more than one complete AuthIntegration")
				}
				full = &v1.AuthIntegration{}
				if err := yaml.UnmarshalStrict([]byte(block), full); err != nil {
					t.Fatalf("decoding the AuthIntegration: %v", err)
				}
			}
			if full == nil {
				t.Fatal("no complete AuthIntegration in a ```yaml block")
			}
			if full.Spec.Provider != provider {
				t.Errorf("spec.provider %q, want %q", full.Spec.Provider, provider)
			}
			if full.Spec.InsForge == nil || full.Spec.JWT.Generate == nil || full.Spec.JWT.Generate.Rotation == nil {
				t.Error("the guide's AuthIntegration should show spec.insforge and jwt.generate.rotation")
			}
			dryRun(t, env.Client, ns, full)
			for i, frag := range fragments {
				// A fragment replaces the provider section (the alternative does without the
				// API credentials) and adds the rest.
				merged := full.DeepCopy()
				merged.Spec.Clerk, merged.Spec.Auth0 = nil, nil
				if err := yaml.UnmarshalStrict([]byte(frag), merged); err != nil {
					t.Errorf("fragment %d: %v", i+1, err)
					continue
				}
				dryRun(t, env.Client, ns, merged)
			}
		})
	}
}

func dryRun(t *testing.T, c client.Client, ns string, ai *v1.AuthIntegration) {
	t.Helper()
	obj := ai.DeepCopy()
	obj.Namespace = ns
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Create(ctx, obj, client.DryRunAll); err != nil {
		t.Errorf("the API server refuses the guide's AuthIntegration: %v", err)
	}
}
