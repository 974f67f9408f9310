package sampleoverlay_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	v1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
	"github.com/insforge/integrations-operator/internal/testutil/sampleoverlay"
)

const samplesDir = "../../../config/samples"

// referencedSecrets returns the Secrets a sample names, each with the keys the operator reads.
func referencedSecrets(t *testing.T, path string) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ Kind string }
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	refs := map[string][]string{}
	add := func(name string, keys ...string) { refs[name] = append(refs[name], keys...) }
	switch meta.Kind {
	case "AuthIntegration":
		var ai v1.AuthIntegration
		if err := yaml.UnmarshalStrict(raw, &ai); err != nil {
			t.Fatal(err)
		}
		db := ai.Spec.Database.ConnectionSecretRef
		add(db.Name, db.KeyOrDefault(v1.DefaultConnectionSecretKey))
		if ref := ai.Spec.JWT.ExistingSecretRef; ref != nil {
			add(ref.Name, ref.KeyOrDefault(jwtsecret.KeyCurrent))
		}
	case "PaymentRoute":
		var pr v1.PaymentRoute
		if err := yaml.UnmarshalStrict(raw, &pr); err != nil {
			t.Fatal(err)
		}
		db := pr.Spec.Database.ConnectionSecretRef
		add(db.Name, db.KeyOrDefault(v1.DefaultConnectionSecretKey))
		f := pr.Spec.Facilitator
		if f.OKX != nil {
			add(f.OKX.CredentialsSecretRef.Name, v1.OKXAPIKeyKey, v1.OKXSecretKeyKey, v1.OKXPassphraseKey)
		}
		if f.Onchain != nil {
			ref := f.Onchain.RelayerKeySecretRef
			add(ref.Name, ref.KeyOrDefault(v1.DefaultRelayerKeySecretKey))
		}
		if f.HTTP != nil && f.HTTP.HeadersSecretRef != nil {
			add(f.HTTP.HeadersSecretRef.Name)
		}
	default:
		t.Fatalf("unexpected kind %q", meta.Kind)
	}
	return refs
}

// TestSamplesTemplateTheirSecrets checks the commented Secret templates at the top of every
// sample: exactly the Secrets the sample names, each opted in with the access label, holding the
// keys the operator reads, with placeholder values only.
func TestSamplesTemplateTheirSecrets(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(samplesDir, "*.yaml"))
	if err != nil || len(files) < 8 {
		t.Fatalf("want at least 8 samples, found %d (%v)", len(files), err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			refs := referencedSecrets(t, path)
			templates, err := sampleoverlay.SecretTemplates(path)
			if err != nil {
				t.Fatal(err)
			}
			var names, want []string
			for _, s := range templates {
				names = append(names, s.Name)
				if s.Labels[v1.LabelSecretAccess] != "true" {
					t.Errorf("template %s lacks the label %s: \"true\"", s.Name, v1.LabelSecretAccess)
				}
				if len(s.Data) > 0 {
					t.Errorf("template %s has base64 data; use stringData with placeholders", s.Name)
				}
				for _, k := range refs[s.Name] {
					if _, ok := s.StringData[k]; !ok {
						t.Errorf("template %s has no key %s, which the sample reads", s.Name, k)
					}
				}
				for k, v := range s.StringData {
					if !strings.Contains(v, "REPLACE-WITH-") && !strings.Contains(v, "USER:PASSWORD@") {
						t.Errorf("template %s: %s is not an obvious placeholder", s.Name, k)
					}
				}
			}
			for name := range refs {
				want = append(want, name)
			}
			sort.Strings(names)
			sort.Strings(want)
			if strings.Join(names, ",") != strings.Join(want, ",") {
				t.Errorf("templates for Secrets %v, the sample names %v", names, want)
			}
		})
	}
}

// TestSecretTemplatesAreOnlyComments makes sure that the templates cannot be applied by accident:
// without its comments, a sample is the one object it describes.
func TestSecretTemplatesAreOnlyComments(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(samplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(raw), "\n") {
			if strings.TrimSpace(line) == "---" || strings.HasPrefix(line, "kind: Secret") {
				t.Errorf("%s:%d: %q outside a comment: the templates must not be applied with the sample", filepath.Base(path), i+1, line)
			}
		}
	}
}
