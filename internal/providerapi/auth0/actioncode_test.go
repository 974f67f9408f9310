package auth0_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/insforge/integrations-operator/internal/providerapi/auth0"
	"github.com/insforge/integrations-operator/internal/testutil/insforgejwt"
)

// jwtStub stands in for the jsonwebtoken package (not downloadable here): sign(payload, secret,
// {algorithm, expiresIn}) with iat and exp added as jsonwebtoken adds them, HS256 only.
const jwtStub = `
const crypto = require("crypto");
const b64 = (b) => Buffer.from(b).toString("base64url");
exports.sign = (payload, secret, opts) => {
  if (opts.algorithm !== "HS256") throw new Error("unexpected algorithm " + opts.algorithm);
  if (typeof secret !== "string" || secret === "") throw new Error("secret missing");
  const iat = Math.floor(Date.now() / 1000);
  const body = Object.assign({}, payload, { iat, exp: iat + opts.expiresIn });
  const input = b64(JSON.stringify({ alg: "HS256", typ: "JWT" })) + "." + b64(JSON.stringify(body));
  return input + "." + crypto.createHmac("sha256", secret).update(input).digest("base64url");
};
`

// runner executes the Action's handler with a post-login event and prints the claims it set.
const runner = `
const action = require("./action.js");
const set = { id: {}, access: {} };
const api = {
  idToken: { setCustomClaim: (k, v) => { set.id[k] = v; } },
  accessToken: { setCustomClaim: (k, v) => { set.access[k] = v; } },
};
const event = {
  user: { user_id: "auth0|65f0c0ffee", email: "ada@example.com", app_metadata: { role: "project_admin" } },
  secrets: { INSFORGE_JWT_SECRET: process.argv[2] },
};
action.onExecutePostLogin(event, api).then(() => console.log(JSON.stringify(set)), (e) => { console.error(e); process.exit(1); });
`

// TestActionCodeRuns executes the generated post-login code with Node and checks the token it
// attaches the way InsForge verifies it: HS256 with the key, role authenticated whatever the
// user's metadata says, sub the Auth0 user id.
func TestActionCodeRuns(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	cases := map[string]auth0.Action{
		"defaults": {},
		// A hostile claim name stays a string literal.
		"quoted claim": {Claim: `https://x.test/t"); process.exit(3); ("`, Audience: "aud\u2028x", LifetimeSeconds: 120},
	}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(rel, content string) {
				p := filepath.Join(dir, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("node_modules/jsonwebtoken/index.js", jwtStub)
			write("action.js", a.Code())
			write("run.js", runner)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "run.js", string(key1))
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			var set struct{ ID, Access map[string]string }
			if err := json.Unmarshal(out, &set); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			claim, aud, life := a.Claim, a.Audience, a.LifetimeSeconds
			if claim == "" {
				claim, aud, life = auth0.DefaultClaim, auth0.DefaultAudience, auth0.DefaultActionLifetime
			}
			tok := set.ID[claim]
			if tok == "" || set.Access[claim] != tok || len(set.ID) != 1 {
				t.Fatalf("claims set: %+v", set)
			}
			id, claims, err := insforgejwt.Verify(tok, key1, time.Now())
			if err != nil {
				t.Fatalf("InsForge would reject the token: %v", err)
			}
			if id.Sub != "auth0|65f0c0ffee" || id.Role != "authenticated" || claims["role"] != "authenticated" || id.Email != "ada@example.com" ||
				claims["aud"] != aud || claims["exp"].(float64)-claims["iat"].(float64) != float64(life) {
				t.Fatalf("identity %+v, claims %v", id, claims)
			}
		})
	}
}
