package auth0fake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

type harness struct {
	t *testing.T
	s *Server
}

func (h harness) token(scopes ...string) string {
	h.t.Helper()
	if scopes != nil {
		h.s.SetScopes(scopes)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"cid"}, "client_secret": {"csecret-0123456789"},
		"audience": {"https://t.fake.invalid/api/v2/"}}
	resp, err := h.s.Client().PostForm(h.s.URL+"/oauth/token", form)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.AccessToken
}

func (h harness) do(method, path, tok, body string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.s.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.s.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestChecksLikeAuth0(t *testing.T) {
	h := harness{t, New(t, Config{Domain: "t.fake.invalid", ClientID: "cid", ClientSecret: "csecret-0123456789", BuildAfterGets: 2})}
	tok := h.token()
	if code, _ := h.do("GET", "/api/v2/resource-servers", "nope", ""); code != 401 {
		t.Fatalf("unknown bearer: %d", code)
	}
	// Resource servers.
	const rs = `{"identifier":"insforge-api","name":"InsForge","signing_alg":"HS256","signing_secret":"0123456789abcdef","token_lifetime":3600}`
	code, body := h.do("POST", "/api/v2/resource-servers", tok, rs)
	if code != 201 || strings.Contains(body, "signing_secret") {
		t.Fatalf("create: %d %s", code, body)
	}
	var created struct{ ID string }
	_ = json.Unmarshal([]byte(body), &created)
	for name, c := range map[string]struct {
		method, path, body string
		code               int
	}{
		"duplicate identifier": {"POST", "/api/v2/resource-servers", rs, 409},
		"short secret":         {"POST", "/api/v2/resource-servers", `{"identifier":"b","signing_alg":"HS256","signing_secret":"short"}`, 400},
		"bad algorithm":        {"POST", "/api/v2/resource-servers", `{"identifier":"b","signing_alg":"none"}`, 400},
		"no identifier":        {"POST", "/api/v2/resource-servers", `{"name":"b"}`, 400},
		"identifier on PATCH":  {"PATCH", "/api/v2/resource-servers/" + created.ID, `{"identifier":"other"}`, 400},
		"read by identifier":   {"GET", "/api/v2/resource-servers/insforge-api", "", 200},
	} {
		if code, body := h.do(c.method, c.path, tok, c.body); code != c.code {
			t.Errorf("%s: %d %s, want %d", name, code, body, c.code)
		}
	}
	// Scope: a token without read:actions gets Auth0's 403.
	narrow := h.token("read:resource_servers")
	code, body = h.do("GET", "/api/v2/actions/actions", narrow, "")
	if code != 403 || !strings.Contains(body, `"Insufficient scope, expected any of: read:actions"`) {
		t.Fatalf("scope: %d %s", code, body)
	}
	// Actions: secrets never returned, deploy only once built, secrets replaced on PATCH.
	tok = h.token(AllScopes()...)
	const act = `{"name":"a","supported_triggers":[{"id":"post-login","version":"v3"}],"code":"x","runtime":"node22","secrets":[{"name":"S1","value":"v1-secret"},{"name":"S2","value":"v2-secret"}]}`
	code, body = h.do("POST", "/api/v2/actions/actions", tok, act)
	if code != 200 || strings.Contains(body, "v1-secret") {
		t.Fatalf("create action: %d %s", code, body)
	}
	var a struct{ ID string }
	_ = json.Unmarshal([]byte(body), &a)
	if code, _ := h.do("POST", "/api/v2/actions/actions", tok, act); code != 409 {
		t.Errorf("duplicate action name: %d", code)
	}
	if code, _ := h.do("POST", "/api/v2/actions/actions/"+a.ID+"/deploy", tok, ""); code != 400 {
		t.Errorf("deploy before built: %d", code)
	}
	if code, _ := h.do("PATCH", "/api/v2/actions/triggers/post-login/bindings", tok, `{"bindings":[{"ref":{"type":"action_id","value":"`+a.ID+`"}}]}`); code != 400 {
		t.Errorf("binding an undeployed action: %d", code)
	}
	statuses := []string{}
	for range 2 {
		_, body := h.do("GET", "/api/v2/actions/actions/"+a.ID, tok, "")
		var v struct{ Status string }
		_ = json.Unmarshal([]byte(body), &v)
		statuses = append(statuses, v.Status)
	}
	if strings.Join(statuses, ",") != "building,built" {
		t.Fatalf("build progress %v", statuses)
	}
	if code, _ := h.do("POST", "/api/v2/actions/actions/"+a.ID+"/deploy", tok, ""); code != 200 {
		t.Errorf("deploy when built: %d", code)
	}
	if code, _ := h.do("PATCH", "/api/v2/actions/actions/"+a.ID, tok, `{"secrets":[{"name":"S1","value":"new"}]}`); code != 200 {
		t.Fatalf("patch secrets: %d", code)
	}
	if v, _ := h.s.Action("a"); strings.Join(v.SecretNames, ",") != "S1" || h.s.ActionSecret("a", "S1") != "new" || v.AllChangesDeployed {
		t.Fatalf("after PATCH: %+v", v)
	}
	// Bindings: unknown refs are 404, the list replaces the trigger's.
	user := h.s.AddUserBinding("post-login", "user", "User")
	if code, _ := h.do("PATCH", "/api/v2/actions/triggers/post-login/bindings", tok, `{"bindings":[{"ref":{"type":"binding_id","value":"nope"}}]}`); code != 404 {
		t.Errorf("unknown binding ref: %d", code)
	}
	if code, _ := h.do("PATCH", "/api/v2/actions/triggers/post-login/bindings", tok, `{"bindings":[{"ref":{"type":"action_name","value":"nope"}}]}`); code != 404 {
		t.Errorf("unknown action ref: %d", code)
	}
	if code, _ := h.do("PATCH", "/api/v2/actions/triggers/post-login/bindings", tok, `{"bindings":[{"ref":{"type":"action_id","value":"`+a.ID+`"}}]}`); code != 200 {
		t.Fatalf("bind: %d", code)
	}
	if bs := h.s.Bindings("post-login"); len(bs) != 1 || bs[0].ActionID != a.ID {
		t.Fatalf("the list did not replace the trigger's bindings (user binding %s): %+v", user, bs)
	}
	if code, _ := h.do("DELETE", "/api/v2/actions/actions/"+a.ID, tok, ""); code != 400 {
		t.Errorf("deleting a bound action: %d", code)
	}
}
