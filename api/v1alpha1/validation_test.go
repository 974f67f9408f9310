package v1alpha1_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.Shutdown()
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func validAuth(ns string) *v1.AuthIntegration {
	return &v1.AuthIntegration{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: v1.AuthIntegrationSpec{
			Provider: v1.ProviderClerk,
			Database: v1.AuthDatabase{DatabaseConnection: v1.DatabaseConnection{
				ConnectionSecretRef: v1.SecretKeySelector{Name: "db"},
			}},
			Tables: []v1.ManagedTable{{Name: "todos"}},
			JWT:    v1.JWTSecret{Generate: &v1.GeneratedJWTSecret{SecretName: "jwt"}},
		},
	}
}

func validRoute(ns string) *v1.PaymentRoute {
	return &v1.PaymentRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "paid", Namespace: ns},
		Spec: v1.PaymentRouteSpec{
			Upstream: v1.Upstream{URL: "http://upstream.default.svc:8080"},
			Routes:   []v1.PricedRoute{{Path: "/api/weather", Price: "0.01"}},
			PayTo:    "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
			Facilitator: v1.Facilitator{
				OKX: &v1.OKXFacilitator{CredentialsSecretRef: v1.LocalSecretReference{Name: "okx"}, RPCURL: "https://rpc.xlayer.tech"},
			},
			Database: v1.LedgerDatabase{DatabaseConnection: v1.DatabaseConnection{
				ConnectionSecretRef: v1.SecretKeySelector{Name: "db"},
			}},
		},
	}
}

func TestValidObjectsGetDefaultsAndObservedGenerationMinusOne(t *testing.T) {
	env := kubetest.Shared(t)
	ns := env.Namespace(t)
	ctx := ctxT(t)

	auth := validAuth(ns)
	if err := env.Client.Create(ctx, auth); err != nil {
		t.Fatalf("creating a valid AuthIntegration: %v", err)
	}
	var gotAuth v1.AuthIntegration
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(auth), &gotAuth); err != nil {
		t.Fatal(err)
	}
	if gotAuth.Status.ObservedGeneration != -1 {
		t.Errorf("AuthIntegration status.observedGeneration = %d, want -1", gotAuth.Status.ObservedGeneration)
	}
	if gotAuth.Spec.Mode != v1.ModeApply || gotAuth.Spec.DeletionPolicy != v1.DeletionRetain {
		t.Errorf("defaults: mode=%q deletionPolicy=%q, want apply/Retain", gotAuth.Spec.Mode, gotAuth.Spec.DeletionPolicy)
	}
	if d := gotAuth.Spec.DriftCheckInterval; d == nil || d.Duration != 5*time.Minute {
		t.Errorf("driftCheckInterval default = %v, want 5m", d)
	}
	if gotAuth.Spec.JWT.Generate.Ownership != v1.SecretOwned {
		t.Errorf("jwt.generate.ownership default = %q, want Owned", gotAuth.Spec.JWT.Generate.Ownership)
	}

	route := validRoute(ns)
	if err := env.Client.Create(ctx, route); err != nil {
		t.Fatalf("creating a valid PaymentRoute: %v", err)
	}
	var got v1.PaymentRoute
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(route), &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.ObservedGeneration != -1 {
		t.Errorf("PaymentRoute status.observedGeneration = %d, want -1", got.Status.ObservedGeneration)
	}
	s := got.Spec
	checks := []struct {
		field     string
		got, want any
	}{
		{"network", s.Network, v1.DefaultNetwork},
		{"asset.address", s.Asset.Address, v1.DefaultAssetAddress},
		{"asset.decimals", s.Asset.Decimals, int32(v1.DefaultAssetDecimals)},
		{"asset.symbol", s.Asset.Symbol, v1.DefaultAssetSymbol},
		{"asset.eip712.name", s.Asset.EIP712.Name, v1.DefaultEIP712Name},
		{"asset.eip712.version", s.Asset.EIP712.Version, v1.DefaultEIP712Version},
		{"maxTimeoutSeconds", s.MaxTimeoutSeconds, int32(v1.DefaultMaxTimeoutSecs)},
		{"database.schema", s.Database.Schema, v1.DefaultLedgerSchema},
		{"database.table", s.Database.Table, v1.DefaultLedgerTable},
		{"facilitator.okx.apiVersion", s.Facilitator.OKX.APIVersion, v1.OKXAPIv2},
		{"facilitator.okx.syncSettle", *s.Facilitator.OKX.SyncSettle, true},
		{"gateway.service.port", s.Gateway.Service.Port, int32(v1.DefaultGatewayPort)},
		{"gateway.unpricedPaths", s.Gateway.UnpricedPaths, v1.UnpricedProxy},
		{"gateway.trustForwarded set", s.Gateway.TrustForwarded != nil, true},
		{"gateway.trustForwarded", s.Gateway.TrustForwarded != nil && *s.Gateway.TrustForwarded, false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("default of %s = %v, want %v", c.field, c.got, c.want)
		}
	}
	// No default: unset, the count belongs to whoever scales the gateway (an autoscaler).
	if r := s.Gateway.Replicas; r != nil {
		t.Errorf("gateway.replicas defaulted to %d, want it left unset", *r)
	}
}

func TestInvalidObjectsAreRejectedWithAClearMessage(t *testing.T) {
	env := kubetest.Shared(t)
	ns := env.Namespace(t)

	authCases := []struct {
		name   string
		mutate func(*v1.AuthIntegration)
		want   string
	}{
		{"unknown provider", func(a *v1.AuthIntegration) { a.Spec.Provider = "okta" }, `Unsupported value: "okta"`},
		{"no tables for a non-Better-Auth provider", func(a *v1.AuthIntegration) { a.Spec.Tables = nil },
			"tables must list at least one table"},
		{"duplicate table", func(a *v1.AuthIntegration) {
			a.Spec.Tables = []v1.ManagedTable{{Name: "todos"}, {Schema: "public", Name: "todos"}}
		}, "tables must not list the same schema and name twice"},
		{"SQL injection in a table name", func(a *v1.AuthIntegration) { a.Spec.Tables[0].Name = `todos"; DROP TABLE x; --` },
			"spec.tables[0].name"},
		{"table name longer than 63", func(a *v1.AuthIntegration) { a.Spec.Tables[0].Name = strings.Repeat("t", 64) },
			"spec.tables[0].name"},
		{"both JWT sources", func(a *v1.AuthIntegration) {
			a.Spec.JWT.ExistingSecretRef = &v1.SecretKeySelector{Name: "insforge"}
		}, "set exactly one of jwt.generate and jwt.existingSecretRef"},
		{"no JWT source", func(a *v1.AuthIntegration) { a.Spec.JWT = v1.JWTSecret{} },
			"set exactly one of jwt.generate and jwt.existingSecretRef"},
		{"rotation without interval or trigger", func(a *v1.AuthIntegration) {
			a.Spec.JWT.Generate.Rotation = &v1.JWTRotation{}
		}, "rotation needs an interval, a trigger, or both"},
		{"rotation interval too short", func(a *v1.AuthIntegration) {
			a.Spec.JWT.Generate.Rotation = &v1.JWTRotation{Interval: &metav1.Duration{Duration: time.Minute}}
		}, "rotation.interval must be at least 1h"},
		{"export into a browser-bundled variable", func(a *v1.AuthIntegration) {
			a.Spec.Exports = []v1.SecretExport{{SecretName: "web", Key: "NEXT_PUBLIC_INSFORGE_JWT_SECRET"}}
		}, "must not start with NEXT_PUBLIC_ or VITE_"},
		{"bad role name", func(a *v1.AuthIntegration) { a.Spec.Database.Role = "project admin" }, "spec.database.role"},
		{"unknown mode", func(a *v1.AuthIntegration) { a.Spec.Mode = "dryRun" }, `Unsupported value: "dryRun"`},
		{"drift check too often", func(a *v1.AuthIntegration) {
			a.Spec.DriftCheckInterval = &metav1.Duration{Duration: time.Second}
		}, "driftCheckInterval must be at least 10s"},
		{"another provider's section", func(a *v1.AuthIntegration) {
			a.Spec.Auth0 = &v1.Auth0Settings{Domain: "tenant.auth0.com"}
		}, "spec.auth0 is only for provider auth0"},
		{"exchange without the provider's tenant", func(a *v1.AuthIntegration) { a.Spec.Exchange = &v1.TokenExchange{} },
			"exchange needs the provider's section"},
		{"exchange accepting HS256 tokens", func(a *v1.AuthIntegration) {
			a.Spec.Clerk = &v1.ClerkSettings{FrontendAPI: "https://clerk.example.com"}
			a.Spec.Exchange = &v1.TokenExchange{Verification: &v1.TokenVerification{Algorithms: []string{"HS256"}}}
		}, `Unsupported value: "HS256"`},
		{"exchange token lifetime over an hour", func(a *v1.AuthIntegration) {
			a.Spec.Clerk = &v1.ClerkSettings{FrontendAPI: "https://clerk.example.com"}
			a.Spec.Exchange = &v1.TokenExchange{TokenLifetime: &metav1.Duration{Duration: 2 * time.Hour}}
		}, "exchange.tokenLifetime must be between 30s and 1h"},
		{"CORS origin with a path", func(a *v1.AuthIntegration) {
			a.Spec.Clerk = &v1.ClerkSettings{FrontendAPI: "https://clerk.example.com"}
			a.Spec.Exchange = &v1.TokenExchange{AllowedOrigins: []string{"https://app.example.com/login"}}
		}, "spec.exchange.allowedOrigins[0]"},
		{"Clerk API URL with a query", func(a *v1.AuthIntegration) {
			a.Spec.Clerk = &v1.ClerkSettings{APIURL: "https://api.clerk.com?x=1"}
		}, "spec.clerk.apiURL"},
		{"InsForge workload of another kind", func(a *v1.AuthIntegration) {
			a.Spec.InsForge = &v1.InsForgeWorkloads{Workloads: []v1.InsForgeWorkload{{Kind: "DaemonSet", Name: "insforge"}}}
		}, `Unsupported value: "DaemonSet"`},
	}
	for _, c := range authCases {
		t.Run("AuthIntegration/"+c.name, func(t *testing.T) {
			obj := validAuth(ns)
			c.mutate(obj)
			expectRejected(t, env, obj, c.want)
		})
	}

	routeCases := []struct {
		name   string
		mutate func(*v1.PaymentRoute)
		want   string
	}{
		{"two facilitators", func(r *v1.PaymentRoute) { r.Spec.Facilitator.Mock = &v1.MockFacilitator{} },
			"set exactly one facilitator: okx, http, onchain or mock"},
		{"pod labels that would take over the operator's selector", func(r *v1.PaymentRoute) {
			r.Spec.Gateway.PodLabels = map[string]string{"team": "pay", "app.kubernetes.io/instance": "other"}
		}, "podLabels may not set app.kubernetes.io/name"},
		{"no facilitator", func(r *v1.PaymentRoute) { r.Spec.Facilitator = v1.Facilitator{} },
			"set exactly one facilitator: okx, http, onchain or mock"},
		{"okx without a chain node", func(r *v1.PaymentRoute) { r.Spec.Facilitator.OKX.RPCURL = "" },
			"okx.rpcURL must be an absolute http(s) or ws(s) URL"},
		{"http without a chain node", func(r *v1.PaymentRoute) {
			r.Spec.Facilitator = v1.Facilitator{HTTP: &v1.HTTPFacilitator{URL: "https://facilitator.example"}}
		}, "http.rpcURL must be an absolute http(s) or ws(s) URL"},
		{"zero price", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Price = "0.000" }, "price must be greater than zero"},
		{"negative price", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Price = "-1" }, "spec.routes[0].price"},
		{"float-looking price", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Price = "1e-3" }, "spec.routes[0].price"},
		{"more fractional digits than the asset has", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Price = "0.0000001" },
			"more fractional digits than the asset's decimals"},
		{"payTo not an address", func(r *v1.PaymentRoute) { r.Spec.PayTo = "0x1234" }, "spec.payTo"},
		{"payTo zero address", func(r *v1.PaymentRoute) { r.Spec.PayTo = "0x0000000000000000000000000000000000000000" },
			"payTo must not be the zero address"},
		{"asset address not an address", func(r *v1.PaymentRoute) { r.Spec.Asset.Address = "usdg" }, "spec.asset.address"},
		{"path without leading slash", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "api/weather" }, "spec.routes[0].path"},
		{"wildcard in the middle of a path", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api/*/weather" }, "spec.routes[0].path"},
		{"duplicate route", func(r *v1.PaymentRoute) { r.Spec.Routes = append(r.Spec.Routes, r.Spec.Routes[0]) },
			"routes must not repeat the same path and method"},
		{"non-EVM network", func(r *v1.PaymentRoute) { r.Spec.Network = "solana:mainnet" }, "spec.network"},
		{"both upstream forms", func(r *v1.PaymentRoute) {
			r.Spec.Upstream.Service = &v1.UpstreamService{Name: "api", Port: 80}
		}, "set exactly one of upstream.url and upstream.service"},
		{"upstream URL with another scheme", func(r *v1.PaymentRoute) { r.Spec.Upstream.URL = "ftp://files.example" },
			"upstream.url must be an absolute http or https URL"},
		{"ledger table name injection", func(r *v1.PaymentRoute) { r.Spec.Database.Table = "payments;drop" }, "spec.database.table"},
		{"no routes", func(r *v1.PaymentRoute) { r.Spec.Routes = nil }, "spec.routes"},
		// Paths must be canonical: the gateway matches canonical request paths only.
		{"repeated slash in a path", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api//weather" }, "path must not contain empty, . or .. segments"},
		{"dot segment in a path", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api/./weather" }, "path must not contain empty, . or .. segments"},
		{"dot-dot segment in a path", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/x/../api/*" }, "path must not contain empty, . or .. segments"},
		{"trailing dot segment", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api/." }, "path must not contain empty, . or .. segments"},
		{"trailing dot-dot segment", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api/.." }, "path must not contain empty, . or .. segments"},
		{"path parameter", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api/weather;v=1" }, "path must not contain ;"},
		{"malformed escape", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api/%zz" }, "path escapes must be % and two upper-case hex digits"},
		{"truncated escape", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api/%4" }, "path escapes must be % and two upper-case hex digits"},
		{"lower-case escape", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/caf%c3%a9" }, "path escapes must be % and two upper-case hex digits"},
		{"escaped unreserved letter", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api/%41" }, "path must not percent-encode unreserved characters"},
		{"escaped dots", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/x/%2E%2E/api" }, "path must not percent-encode unreserved characters"},
		{"escaped tilde", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/%7Euser" }, "path must not percent-encode unreserved characters"},
		{"encoded slash", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api%2Fweather" }, "path must not encode a slash, a backslash or a control character"},
		{"encoded backslash", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api%5Cweather" }, "path must not encode a slash, a backslash or a control character"},
		{"encoded NUL", func(r *v1.PaymentRoute) { r.Spec.Routes[0].Path = "/api%00" }, "path must not encode a slash, a backslash or a control character"},
		{"unknown trailingSlash", func(r *v1.PaymentRoute) { r.Spec.Routes[0].TrailingSlash = "Ignored" }, `Unsupported value: "Ignored"`},
	}
	for _, c := range routeCases {
		t.Run("PaymentRoute/"+c.name, func(t *testing.T) {
			obj := validRoute(ns)
			c.mutate(obj)
			expectRejected(t, env, obj, c.want)
		})
	}
}

// Canonical paths, escapes included, and the path options are accepted and kept as written.
func TestCanonicalPathsAndPathOptionsAreAccepted(t *testing.T) {
	env := kubetest.Shared(t)
	ns := env.Namespace(t)
	ctx := ctxT(t)
	route := validRoute(ns)
	route.Spec.Routes = []v1.PricedRoute{
		{Path: "/api/weather", Price: "0.01"},
		{Path: "/caf%C3%A9/menu/*", Price: "0.02", CaseSensitive: true, TrailingSlash: v1.TrailingSlashDistinct},
		{Path: "/a:b@c/100%25/.well-known/x..y/", Price: "0.03", TrailingSlash: v1.TrailingSlashEquivalent},
	}
	if err := env.Client.Create(ctx, route); err != nil {
		t.Fatalf("canonical paths rejected: %v", err)
	}
	var got v1.PaymentRoute
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(route), &got); err != nil {
		t.Fatal(err)
	}
	r := got.Spec.Routes
	if r[0].CaseSensitive || r[0].TrailingSlash != "" || !r[1].CaseSensitive || r[1].TrailingSlash != v1.TrailingSlashDistinct ||
		r[2].Path != "/a:b@c/100%25/.well-known/x..y/" || r[2].TrailingSlash != v1.TrailingSlashEquivalent {
		t.Errorf("routes stored as %+v", r)
	}
}

func TestImmutableFieldsRejectChanges(t *testing.T) {
	env := kubetest.Shared(t)
	ns := env.Namespace(t)
	ctx := ctxT(t)

	auth := validAuth(ns)
	if err := env.Client.Create(ctx, auth); err != nil {
		t.Fatal(err)
	}
	route := validRoute(ns)
	if err := env.Client.Create(ctx, route); err != nil {
		t.Fatal(err)
	}

	authChanges := []struct {
		name   string
		mutate func(*v1.AuthIntegration)
		want   string
	}{
		{"provider", func(a *v1.AuthIntegration) { a.Spec.Provider = v1.ProviderAuth0 }, "provider is immutable"},
		{"generated secret name", func(a *v1.AuthIntegration) { a.Spec.JWT.Generate.SecretName = "other" },
			"jwt.generate.secretName is immutable"},
	}
	for _, c := range authChanges {
		t.Run("AuthIntegration/"+c.name, func(t *testing.T) {
			var cur v1.AuthIntegration
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(auth), &cur); err != nil {
				t.Fatal(err)
			}
			c.mutate(&cur)
			expectInvalid(t, env.Client.Update(ctx, &cur), c.want)
		})
	}

	routeChanges := []struct {
		name   string
		mutate func(*v1.PaymentRoute)
		want   string
	}{
		{"network", func(r *v1.PaymentRoute) { r.Spec.Network = "eip155:1952" }, "network is immutable"},
		{"asset address", func(r *v1.PaymentRoute) { r.Spec.Asset.Address = "0x779Ded0c9e1022225f8E0630b35a9b54bE713736" },
			"asset.address is immutable"},
		{"ledger table", func(r *v1.PaymentRoute) { r.Spec.Database.Table = "payments" }, "database.table is immutable"},
	}
	for _, c := range routeChanges {
		t.Run("PaymentRoute/"+c.name, func(t *testing.T) {
			var cur v1.PaymentRoute
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(route), &cur); err != nil {
				t.Fatal(err)
			}
			c.mutate(&cur)
			expectInvalid(t, env.Client.Update(ctx, &cur), c.want)
		})
	}

	// Mutable fields still change.
	var cur v1.PaymentRoute
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(route), &cur); err != nil {
		t.Fatal(err)
	}
	cur.Spec.Routes[0].Price = "0.02"
	if err := env.Client.Update(ctx, &cur); err != nil {
		t.Fatalf("changing a price was rejected: %v", err)
	}
}

func TestEverySampleIsAccepted(t *testing.T) {
	env := kubetest.Shared(t)
	ns := env.Namespace(t)
	ctx := ctxT(t)

	files, err := filepath.Glob(filepath.Join(env.Root, "config", "samples", "*.yaml"))
	if err != nil || len(files) < 8 {
		t.Fatalf("want at least 8 samples (six providers, OKX and on-chain routes), found %d (%v)", len(files), err)
	}
	kinds := map[string]int{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		obj.SetNamespace(ns)
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Errorf("%s rejected: %v", filepath.Base(f), err)
			continue
		}
		kinds[obj.GetKind()]++
		if obj.GetKind() == "AuthIntegration" {
			provider, _, _ := unstructured.NestedString(obj.Object, "spec", "provider")
			kinds["provider:"+provider]++
		}
	}
	for _, p := range []v1.AuthProvider{v1.ProviderClerk, v1.ProviderAuth0, v1.ProviderWorkOS, v1.ProviderKinde, v1.ProviderStytch, v1.ProviderBetterAuth} {
		if kinds["provider:"+string(p)] == 0 {
			t.Errorf("no sample for provider %s", p)
		}
	}
	if kinds["PaymentRoute"] < 2 {
		t.Errorf("want PaymentRoute samples for OKX and on-chain, got %d", kinds["PaymentRoute"])
	}
}

// TestKubectlServerSideDryRunAcceptsSamples runs what a user runs: kubectl against the apiserver.
func TestKubectlServerSideDryRunAcceptsSamples(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl not found on PATH: install kubectl to run this test (it checks `kubectl apply --dry-run=server -f config/samples/`)")
	}
	env := kubetest.Shared(t)
	ns := env.Namespace(t)
	cmd := exec.CommandContext(ctxT(t), kubectl, "--kubeconfig", env.Kubeconfig(t), "--namespace", ns,
		"apply", "--dry-run=server", "-f", filepath.Join(env.Root, "config", "samples"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server failed: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "(server dry run)"); n < 8 {
		t.Fatalf("kubectl accepted %d objects, want every sample:\n%s", n, out)
	}
}

func expectRejected(t *testing.T, env *kubetest.Env, obj client.Object, want string) {
	t.Helper()
	expectInvalid(t, env.Client.Create(ctxT(t), obj, client.DryRunAll), want)
}

func expectInvalid(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want a rejection mentioning %q", want)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("rejected with %v; want an Invalid error", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("rejection %q does not mention %q", err, want)
	}
}
