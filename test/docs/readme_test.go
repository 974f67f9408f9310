package docs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

// TestReadmeLinksEveryDoc: the README's index links every page under docs/ and each Helm chart's
// README, so a new page is never left where nobody finds it.
func TestReadmeLinksEveryDoc(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	var pages []string
	err = filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, _ := filepath.Rel(root, path)
			pages = append(pages, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	charts, _ := filepath.Glob(filepath.Join(root, "charts", "*", "Chart.yaml"))
	for _, c := range charts {
		rel, _ := filepath.Rel(root, filepath.Join(filepath.Dir(c), "README.md"))
		pages = append(pages, filepath.ToSlash(rel))
	}
	if len(pages) < 10 {
		t.Fatalf("found only %v", pages)
	}
	for _, p := range pages {
		if !strings.Contains(readme, "]("+p+")") && !strings.Contains(readme, "]("+p+"#") {
			t.Errorf("README.md does not link %s: add it to the Docs section", p)
		}
	}
}
