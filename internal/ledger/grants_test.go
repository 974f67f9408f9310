package ledger

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
)

// EnsureGatewayAccess grants what is missing and nothing when all is there, and a role holding
// just that settles payments and reads totals.
func TestEnsureGatewayAccessGrantsWhatIsMissing(t *testing.T) {
	l, pool, db := newLedger(t)
	ctx := testCtx(t)
	role := "gwt_" + db.Name
	if _, err := EnsureGatewayAccess(ctx, pool, Options{}, role); !errors.Is(err, ErrNoSuchRole) {
		t.Fatalf("missing role: %v", err)
	}
	// Roles whose privileges reach API clients or other roles are refused, and get nothing.
	db.Exec(t, "CREATE ROLE "+role+"_api NOLOGIN; CREATE ROLE "+role+"_group LOGIN; CREATE ROLE "+role+"_member LOGIN IN ROLE "+role+"_group")
	t.Cleanup(func() { db.Exec(t, "DROP ROLE "+role+"_member; DROP ROLE "+role+"_group; DROP ROLE "+role+"_api") })
	for _, refused := range []string{role + "_api", role + "_group"} {
		if _, err := EnsureGatewayAccess(ctx, pool, Options{}, refused); !errors.Is(err, ErrRoleRefused) {
			t.Errorf("%s: %v, want ErrRoleRefused", refused, err)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = $1`, refused).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s holds %d grants (%v)", refused, n, err)
		}
	}
	db.Exec(t, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() { db.Exec(t, "DROP OWNED BY "+role+"; DROP ROLE "+role) })
	ensure := func(want bool) {
		t.Helper()
		changed, err := EnsureGatewayAccess(ctx, pool, Options{}, role)
		if err != nil || changed != want {
			t.Fatalf("EnsureGatewayAccess = %v, %v; want changed %v", changed, err, want)
		}
	}
	ensure(true)
	ensure(false)
	// Drift: a privilege revoked, then a policy dropped.
	db.Exec(t, "REVOKE DELETE ON x402_payments FROM "+role)
	ensure(true)
	ensure(false)
	db.Exec(t, "DROP POLICY "+gatewayPolicy(role)+" ON x402_payments_totals_delta")
	ensure(true)
	ensure(false)

	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	gwPool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer gwPool.Close()
	gw, err := New(gwPool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	settle(t, gw, intent("ns/r", "1000"))
	if _, err := Migrate(ctx, gwPool, Options{}); err != nil {
		t.Errorf("the start-up check of a migrated ledger needs more than the role has: %v", err)
	}
	tot, err := l.Totals(ctx, "ns/r")
	if err != nil || tot.Real.SettledCount != 1 {
		t.Errorf("totals after the gateway role's payment: %+v, %v", tot, err)
	}
}

func TestGatewayPolicyNameIsCutLikePostgres(t *testing.T) {
	long := ""
	for range 70 {
		long += "é"
	}
	got := gatewayPolicy(long)
	if len(got) > 63 || !utf8.ValidString(got) {
		t.Errorf("policy name %q (%d bytes)", got, len(got))
	}
}

// docs/security.md shows GatewayAccess's statements for the default ledger: they must be these.
func TestSecurityDocShowsTheGatewayAccessStatements(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := GatewayAccess(Options{}, "x402_gateway")
	if err != nil {
		t.Fatal(err)
	}
	if block := strings.Join(stmts, ";\n") + ";\n"; !strings.Contains(string(raw), "```sql\n"+block+"```") {
		t.Errorf("docs/security.md does not show the statements as GatewayAccess makes them:\n%s", block)
	}
}
