package authintegration

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
)

// TestDecide covers decide's outcomes for the JWT secret and the exports: each case is the
// Secrets one reconcile read and what must be written or reported.
func TestDecide(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := integrationsv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("k", 64)
	newSecret := func() (string, error) { return key, nil }
	now := controllertest.T0

	generated := func(mutate func(*integrationsv1alpha1.AuthIntegration)) *integrationsv1alpha1.AuthIntegration {
		ai := todos("app")
		ai.Namespace, ai.UID = "ns", "uid-1"
		ai.Spec.Exports = []integrationsv1alpha1.SecretExport{{SecretName: "insforge-env"}}
		if mutate != nil {
			mutate(ai)
		}
		return ai
	}
	adopted := func(name string) *integrationsv1alpha1.AuthIntegration {
		return generated(func(ai *integrationsv1alpha1.AuthIntegration) {
			ai.Spec.JWT = integrationsv1alpha1.JWTSecret{ExistingSecretRef: &integrationsv1alpha1.SecretKeySelector{Name: name}}
			ai.Spec.Exports = nil
		})
	}
	missing := func(name string) readSecret {
		return readSecret{secret: corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}}
	}
	existing := func(name string, data map[string]string, annotations map[string]string, owner *integrationsv1alpha1.AuthIntegration) readSecret {
		s := readSecret{exists: true, secret: corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Annotations: annotations}}}
		s.secret.Data = map[string][]byte{}
		for k, v := range data {
			s.secret.Data[k] = []byte(v)
		}
		if owner != nil {
			s.secret.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, integrationsv1alpha1.GroupVersion.WithKind("AuthIntegration"))}
		}
		return s
	}
	ai := generated(nil)
	// The state a first reconcile leaves: the generated Secret and the export, both owned.
	first := decide(ai, facts{jwt: missing("app-jwt"), exports: []readSecret{missing("insforge-env")}}, now, newSecret, scheme, sideEnv{})
	if first.jwtErr != nil || first.exportsErr != nil || len(first.writes) != 2 {
		t.Fatalf("first decide: %+v", first)
	}
	settledJWT := readSecret{exists: true, secret: *first.writes[0].secret}
	settledExport := readSecret{exists: true, secret: *first.writes[1].secret}

	for _, tc := range []struct {
		name   string
		ai     *integrationsv1alpha1.AuthIntegration
		facts  facts
		writes []string // names of the Secrets to write, in order
		stall  string   // the stall reason, "" for none
		check  func(t *testing.T, p plan)
	}{
		{name: "first reconcile generates the key and the export", ai: ai,
			facts:  facts{jwt: missing("app-jwt"), exports: []readSecret{missing("insforge-env")}},
			writes: []string{"app-jwt", "insforge-env"},
			check: func(t *testing.T, p plan) {
				if p.decision == nil || p.decision.Action != jwtsecret.ActionCreate || p.jwt.current != key {
					t.Errorf("decision %+v, current %q", p.decision, p.jwt.current)
				}
				if string(p.writes[1].secret.Data[integrationsv1alpha1.DefaultExportKey]) != key ||
					!metav1.IsControlledBy(p.writes[1].secret, ai) || p.writes[1].exists {
					t.Errorf("export write %+v", p.writes[1])
				}
			}},
		{name: "steady state writes nothing", ai: ai,
			facts: facts{jwt: settledJWT, exports: []readSecret{settledExport}}},
		{name: "invalid rotation policy", ai: generated(func(ai *integrationsv1alpha1.AuthIntegration) {
			ai.Spec.JWT.Generate.Rotation = &integrationsv1alpha1.JWTRotation{Interval: &metav1.Duration{Duration: 1}}
		}), facts: facts{jwt: missing("app-jwt")}, stall: integrationsv1alpha1.ReasonInvalidSpec},
		{name: "export Secret of someone else", ai: ai,
			facts: facts{jwt: settledJWT, exports: []readSecret{existing("insforge-env", map[string]string{"x": "y"}, nil, nil)}},
			stall: reasonExportNotOwned},
		{name: "adopted Secret missing", ai: adopted("mine"), facts: facts{jwt: missing("mine")},
			stall: integrationsv1alpha1.ReasonSecretNotFound},
		{name: "adopted Secret without the key", ai: adopted("mine"), facts: facts{jwt: existing("mine", map[string]string{"other": key}, nil, nil)},
			stall: integrationsv1alpha1.ReasonSecretKeyMissing},
		{name: "adopted key too short for PostgREST", ai: adopted("mine"), facts: facts{jwt: existing("mine", map[string]string{jwtsecret.KeyCurrent: "short"}, nil, nil)},
			stall: integrationsv1alpha1.ReasonInvalidSpec},
		{name: "adopted Secret is read, never written", ai: adopted("mine"),
			facts: facts{jwt: existing("mine", map[string]string{jwtsecret.KeyCurrent: key, jwtsecret.KeyCurrent + "_PREVIOUS": "old" + key}, nil, nil)},
			check: func(t *testing.T, p plan) {
				if p.jwt.current != key || p.jwt.previous != "old"+key || p.decision != nil {
					t.Errorf("jwt %+v", p.jwt)
				}
			}},
		{name: "neither generate nor adopt", ai: generated(func(ai *integrationsv1alpha1.AuthIntegration) { ai.Spec.JWT = integrationsv1alpha1.JWTSecret{} }),
			stall: integrationsv1alpha1.ReasonInvalidSpec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := decide(tc.ai, tc.facts, now, newSecret, scheme, sideEnv{})
			err := p.jwtErr
			if err == nil {
				err = p.exportsErr
			}
			gotStall := ""
			if st, ok := kit.AsStalled(err); ok {
				gotStall = st.Reason
			} else if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			var names []string
			for _, w := range p.writes {
				names = append(names, w.secret.Name)
			}
			if gotStall != tc.stall || strings.Join(names, ",") != strings.Join(tc.writes, ",") {
				t.Fatalf("stall %q, writes %v; want stall %q, writes %v", gotStall, names, tc.stall, tc.writes)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}

	t.Run("a failed read decides nothing", func(t *testing.T) {
		readErr := errors.New("reading the JWT Secret app-jwt: timeout")
		p := decide(ai, facts{jwtErr: readErr, exports: []readSecret{missing("insforge-env")}}, now, newSecret, scheme, sideEnv{})
		if !errors.Is(p.jwtErr, readErr) || len(p.writes) != 0 {
			t.Fatalf("plan %+v", p)
		}
	})
}
