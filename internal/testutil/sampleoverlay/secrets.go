package sampleoverlay

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// SecretTemplates returns the Secrets that a sample file documents as commented YAML at its top
// (kubectl and kustomize see only comments there, so no placeholder is ever applied): the comment
// lines from the first "# apiVersion:" up to the first line that is not a comment, with the
// leading "# " removed and split into documents at "# ---".
func SecretTemplates(path string) ([]corev1.Secret, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sampleoverlay: %w", err)
	}
	var docs []string
	var cur []string
	in := false
	flush := func() {
		if len(cur) > 0 {
			docs = append(docs, strings.Join(cur, "\n"))
		}
		cur = nil
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		body := strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
		if !in {
			if !strings.HasPrefix(body, "apiVersion:") {
				continue
			}
			in = true
		}
		if body == "---" {
			flush()
			continue
		}
		cur = append(cur, body)
	}
	flush()
	out := make([]corev1.Secret, 0, len(docs))
	for i, d := range docs {
		var s corev1.Secret
		if err := yaml.UnmarshalStrict([]byte(d), &s); err != nil {
			return nil, fmt.Errorf("sampleoverlay: %s: template %d: %w", filepath.Base(path), i+1, err)
		}
		if s.Kind != "Secret" || s.APIVersion != "v1" || s.Name == "" {
			return nil, fmt.Errorf("sampleoverlay: %s: template %d is not a named v1 Secret", filepath.Base(path), i+1)
		}
		out = append(out, s)
	}
	return out, nil
}
