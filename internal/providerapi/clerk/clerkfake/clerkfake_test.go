package clerkfake

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func do(t *testing.T, s *Server, method, path, bearer, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestValidatesLikeClerk: the checks the client relies on the fake to make.
func TestValidatesLikeClerk(t *testing.T) {
	s := New(t, Config{SecretKey: "sk_test_x"})
	const ok = `{"name":"a","claims":{"role":"authenticated"},"custom_signing_key":true,"signing_algorithm":"HS256","signing_key":"k1k1k1k1k1k1k1k1"}`
	if code, _ := do(t, s, "POST", Path, "sk_test_other", ok); code != 401 {
		t.Fatalf("wrong bearer: %d", code)
	}
	code, body := do(t, s, "POST", Path, "sk_test_x", ok)
	if code != 200 || strings.Contains(body, `"signing_key"`) || strings.Contains(body, "k1k1") {
		t.Fatalf("create: %d %s", code, body)
	}
	var created struct {
		ID        string `json:"id"`
		UpdatedAt int64  `json:"updated_at"`
	}
	_ = json.Unmarshal([]byte(body), &created)
	bad := map[string]string{
		"no name":        `{"claims":{}}`,
		"no claims":      `{"name":"b"}`,
		"null claims":    `{"name":"b","claims":null}`,
		"reserved sub":   `{"name":"b","claims":{"sub":"x"}}`,
		"reserved jti":   `{"name":"b","claims":{"jti":"x"}}`,
		"short lifetime": `{"name":"b","claims":{},"lifetime":29}`,
		"long lifetime":  `{"name":"b","claims":{},"lifetime":315360001}`,
		"skew":           `{"name":"b","claims":{},"allowed_clock_skew":301}`,
		"no algorithm":   `{"name":"b","claims":{},"custom_signing_key":true,"signing_key":"abcdabcdabcdabcd"}`,
		"no key":         `{"name":"b","claims":{},"custom_signing_key":true,"signing_algorithm":"HS256"}`,
		"bad algorithm":  `{"name":"b","claims":{},"custom_signing_key":true,"signing_algorithm":"none","signing_key":"k"}`,
		"duplicate name": `{"name":"a","claims":{}}`,
		"unknown field":  `{"name":"b","claims":{},"signingKey":"x"}`,
	}
	for name, b := range bad {
		if code, body := do(t, s, "POST", Path, "sk_test_x", b); code != 422 || !strings.Contains(body, `"errors"`) {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if code, _ := do(t, s, "PATCH", Path+"/"+created.ID, "sk_test_x", `{"claims":{}}`); code != 422 {
		t.Errorf("PATCH without name: %d", code)
	}
	code, body = do(t, s, "PATCH", Path+"/"+created.ID, "sk_test_x", ok)
	var patched struct {
		UpdatedAt int64 `json:"updated_at"`
	}
	_ = json.Unmarshal([]byte(body), &patched)
	if code != 200 || patched.UpdatedAt <= created.UpdatedAt {
		t.Fatalf("PATCH: %d %s (updated_at must move forward)", code, body)
	}
	if _, body := do(t, s, "GET", Path, "sk_test_x", ""); !strings.HasPrefix(body, "[") {
		t.Errorf("unpaginated list is not an array: %s", body)
	}
	if _, body := do(t, s, "GET", Path+"?paginated=true", "sk_test_x", ""); !strings.Contains(body, `"total_count":1`) {
		t.Errorf("paginated list: %s", body)
	}
	if code, _ := do(t, s, "DELETE", Path+"/"+created.ID, "sk_test_x", ""); code != 200 {
		t.Errorf("delete: %d", code)
	}
	if code, _ := do(t, s, "GET", Path+"/"+created.ID, "sk_test_x", ""); code != 404 {
		t.Errorf("get after delete: %d", code)
	}
}
