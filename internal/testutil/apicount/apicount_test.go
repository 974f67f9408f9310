package apicount

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		method, url, contentType string
		want                     Key
	}{
		{"GET", "/apis/integrations.insforge.dev/v1alpha1/namespaces/a/authintegrations/x", "", Key{"get", "authintegrations"}},
		{"GET", "/apis/integrations.insforge.dev/v1alpha1/namespaces/a/authintegrations?limit=500", "", Key{"list", "authintegrations"}},
		{"GET", "/api/v1/namespaces/a/secrets?watch=true", "", Key{"watch", "secrets"}},
		{"GET", "/api/v1/secrets?watch=1", "", Key{"watch", "secrets"}},
		{"POST", "/api/v1/namespaces/a/secrets", "", Key{"create", "secrets"}},
		{"PUT", "/api/v1/namespaces/a/secrets/s", "", Key{"update", "secrets"}},
		{"PATCH", "/apis/integrations.insforge.dev/v1alpha1/namespaces/a/authintegrations/x/status", "application/merge-patch+json", Key{"patch", "authintegrations/status"}},
		{"PATCH", "/apis/apps/v1/namespaces/a/deployments/d?fieldManager=m", "application/apply-patch+yaml", Key{"apply", "deployments"}},
		{"DELETE", "/api/v1/namespaces/a/configmaps/c", "", Key{"delete", "configmaps"}},
		{"POST", "/apis/events.k8s.io/v1/namespaces/a/events", "", Key{"create", "events"}},
		{"GET", "/api/v1/namespaces/a", "", Key{"get", "namespaces"}},
	} {
		req := httptest.NewRequest(c.method, c.url, nil)
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		if got := Classify(req); got != c.want {
			t.Errorf("%s %s = %v, want %v", c.method, c.url, got, c.want)
		}
	}
}

func TestCountsWritesAndSub(t *testing.T) {
	var c Counter
	for _, r := range []struct{ method, url string }{
		{"GET", "/api/v1/namespaces/a/secrets/s"}, {"POST", "/api/v1/namespaces/a/secrets"},
	} {
		c.add(Classify(httptest.NewRequest(r.method, r.url, nil)))
	}
	before := c.Snapshot()
	c.add(Classify(httptest.NewRequest(http.MethodPut, "/api/v1/namespaces/a/secrets/s", nil)))
	d := c.Snapshot().Sub(before)
	if d.Total() != 1 || d.Writes().Total() != 1 || d[Key{"update", "secrets"}] != 1 {
		t.Fatalf("delta = %v", d)
	}
	if before.Writes().Total() != 1 || before.Total() != 2 {
		t.Fatalf("before = %v", before)
	}
}
