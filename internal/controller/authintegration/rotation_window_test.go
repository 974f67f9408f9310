package authintegration

import (
	"context"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/exchangerun"
	"github.com/insforge/integrations-operator/internal/testutil/insforgejwt"
	"github.com/insforge/integrations-operator/internal/testutil/insforgetest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
	"github.com/insforge/integrations-operator/internal/testutil/oidcfake"
	"github.com/insforge/integrations-operator/internal/testutil/podrun"
	excfg "github.com/insforge/integrations-operator/internal/tokenexchange/config"
)

// simulatedRollout is how long the simulated Deployment controller takes to roll a workload.
const simulatedRollout = 300 * time.Millisecond

// cluster plays what envtest lacks: the Deployment controller (a rollout completes
// simulatedRollout after the template changes), InsForge's pods (after a rollout they verify
// with the key their env now reads) and the kubelet (the signing Secret reaches the exchange's
// key file).
type cluster struct {
	t   *testing.T
	f   *fixture
	x   *exchangerun.Exchange
	mu  sync.Mutex
	key map[string]string // workload → key its pods verify with
	at  map[string]time.Time
	// rolled is when each workload last finished a rollout.
	rolled map[string]time.Time
}

func (c *cluster) verifyKey() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.key["insforge"]
}

func (c *cluster) run(ctx context.Context) {
	signing := ""
	for ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
		for _, name := range []string{"insforge", "postgrest"} {
			var d appsv1.Deployment
			if c.f.c.Get(ctx, types.NamespacedName{Namespace: c.f.ns, Name: name}, &d) != nil || d.Status.ObservedGeneration >= d.Generation {
				continue
			}
			c.mu.Lock()
			started, ok := c.at[name]
			if !ok || started.IsZero() {
				c.at[name] = time.Now()
				c.mu.Unlock()
				continue
			}
			c.mu.Unlock()
			if time.Since(started) < simulatedRollout {
				continue
			}
			env := d.Spec.Template.Spec.Containers[0].Env[0]
			k := env.Value
			if env.ValueFrom != nil {
				ref := env.ValueFrom.SecretKeyRef
				var sec corev1.Secret
				if c.f.c.Get(ctx, types.NamespacedName{Namespace: c.f.ns, Name: ref.Name}, &sec) != nil {
					continue
				}
				k = string(sec.Data[ref.Key])
			}
			if podrun.MarkAvailable(ctx, c.f.c, &d) != nil {
				continue
			}
			c.mu.Lock()
			c.key[name], c.at[name], c.rolled[name] = k, time.Time{}, time.Now()
			c.mu.Unlock()
		}
		var d appsv1.Deployment
		if c.f.c.Get(ctx, types.NamespacedName{Namespace: c.f.ns, Name: exchangeName("rot")}, &d) == nil && d.Status.ObservedGeneration < d.Generation {
			_ = podrun.MarkAvailable(ctx, c.f.c, &d)
		}
		var sec corev1.Secret
		if c.x != nil && c.f.c.Get(ctx, types.NamespacedName{Namespace: c.f.ns, Name: signingSecretName("rot")}, &sec) == nil {
			if k := string(sec.Data[excfg.SigningKeyName]); k != signing && k != "" {
				c.x.SetKey(k)
				signing = k
			}
		}
	}
}

// TestRotationWindowMeasured runs the whole rotation with a real manager: a running exchange
// hands out tokens all along (one every few milliseconds) and each is checked the way InsForge's
// pods would check it at that moment. It reports how many were refused and for how long; the
// operator must never switch the exchange before every workload runs the new key.
func TestRotationWindowMeasured(t *testing.T) {
	env := kubetest.Shared(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fixture{t: t, ctx: ctx, env: env, c: env.Client, ns: ns}
	f.Objects = controllertest.Objects[*integrationsv1alpha1.AuthIntegration]{T: t, C: f.c, NS: ns,
		New: func() *integrationsv1alpha1.AuthIntegration { return &integrationsv1alpha1.AuthIntegration{} }}
	f.db = insforgetest.NewDatabase(t, insforgetest.Options{AuthJWT: true})
	userTable(t, f.db, "todos")
	f.secret("insforge-db", map[string]string{"uri": f.db.URL})
	f.insforgeDeployment("insforge", "JWT_SECRET", []corev1.EnvVar{{Name: "ENCRYPTION_KEY", Value: "separate"}}, false)
	f.insforgeDeployment("postgrest", "PGRST_JWT_SECRET", nil, false)

	fake := oidcfake.New(t, oidcfake.Options{TLS: true})
	tenant := fake.Tenant("api.workos.com", oidcfake.TenantOptions{Issuer: "https://api.workos.com/user_management/client_01TEST",
		JWKSPaths: []string{"/sso/jwks/client_01TEST"}, Algs: []string{oidcfake.RS256}})

	sim := &cluster{t: t, f: f, key: map[string]string{}, at: map[string]time.Time{}, rolled: map[string]time.Time{}}
	go sim.run(ctx)
	startManager(t, env, ns)
	f.Create(rotatingWithWorkloads("rot"))
	key := types.NamespacedName{Namespace: ns, Name: "rot"}
	controllertest.Eventually(t, 60*time.Second, func() string { return readyMessage(env.Client, key) })

	cfg := f.exchangeConfigMap("rot")
	sim.x = exchangerun.Start(t, cfg, string(f.getSecret(signingSecretName("rot")).Data[excfg.SigningKeyName]), fake.Client())

	// The prober: a fresh provider token exchanged and checked, again and again.
	type probe struct {
		at time.Time
		ok bool
	}
	var probes []probe
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			tok, status := exchangeToken(t, sim.x.URL, tenant.Mint(tenant.Claims("user_probe"), oidcfake.MintOptions{}))
			_, _, err := insforgejwt.Verify(tok, []byte(sim.verifyKey()), time.Now())
			probes = append(probes, probe{at: time.Now(), ok: status == 200 && err == nil})
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	k1 := string(f.getSecret("rot-jwt").Data[jwtsecret.KeyCurrent])
	rotatedAt := time.Now()
	f.Update("rot", func(ai *integrationsv1alpha1.AuthIntegration) { ai.Spec.JWT.Generate.Rotation.Trigger = "t1" })
	controllertest.Eventually(t, 60*time.Second, func() string {
		ai := f.Get("rot")
		if ai.Status.JWT == nil || ai.Status.JWT.Fingerprint == jwtsecret.Fingerprint(k1) {
			return "not rotated yet"
		}
		if !meta.IsStatusConditionTrue(ai.Status.Conditions, integrationsv1alpha1.ConditionKeyPropagated) ||
			ai.Status.JWT.SigningFingerprint != ai.Status.JWT.Fingerprint {
			return "key not propagated yet"
		}
		return ""
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-done
	completed := time.Now()

	sim.mu.Lock()
	insforgeRolled := sim.rolled["insforge"]
	sim.mu.Unlock()
	refused := 0
	var first, last time.Time
	for _, p := range probes {
		if p.ok {
			continue
		}
		refused++
		if first.IsZero() {
			first = p.at
		}
		last = p.at
		if p.at.Before(insforgeRolled) {
			t.Errorf("a token was refused at %v, before InsForge ran the new key (%v): the signer moved first",
				p.at.Sub(rotatedAt), insforgeRolled.Sub(rotatedAt))
		}
	}
	window := time.Duration(0)
	if refused > 0 {
		window = last.Sub(first)
	}
	t.Logf("rotation: %d exchanges over %v, %d refused; refusal window %v (from InsForge's rollout completing to the exchange signing with the new key; simulated rollout %v)",
		len(probes), completed.Sub(rotatedAt), refused, window, simulatedRollout)
	if len(probes) < 50 {
		t.Fatalf("only %d probes: the measurement saw too little", len(probes))
	}
	if window > 10*time.Second {
		t.Errorf("the exchange kept signing with the old key %v after InsForge moved on", window)
	}
}
