package authintegration

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
)

// secretWrite is a Secret to create or update, with what it is for error messages.
type secretWrite struct {
	secret *corev1.Secret
	exists bool
	what   string
}

// plan is what a reconcile does about an integration's Secrets, decided from its facts alone.
// The database step needs no plan here: rls.Reconcile plans against the live catalog itself.
type plan struct {
	now    time.Time
	jwt    jwtOutcome
	jwtErr error
	// decision is the JWT secret's decision (events and metrics); nil when adopted.
	decision *jwtsecret.Decision
	// writes are the Secrets to write, the JWT Secret first, then the exports in spec order.
	writes     []secretWrite
	exportsErr error

	dsn    string // a secret: never log, event or report it
	dsnErr error

	// workloads are the InsForge workloads' plans; workloadsErr why they cannot be planned.
	workloads    []workloadPlan
	workloadsErr error
	// signingKey is the key the exchange and the provider sign with (a secret).
	signingKey string
	// exchange are the exchange's objects to apply; exchangeErr why they cannot be rendered.
	exchange    *exchangeObjects
	exchangeErr error
	// syncer keeps the provider's signing object; providerErr why it cannot.
	syncer      providerSyncer
	providerErr error
}

// decide computes the JWT secret's next state (generated: created, rotated or retired keys;
// adopted: read as is) and the content of each export. It writes nothing; exports are decided
// only when the JWT secret is ready.
func decide(ai *v1alpha1.AuthIntegration, f facts, now time.Time, newSecret func() (string, error), scheme *runtime.Scheme, env sideEnv) plan {
	p := plan{now: now, dsn: f.dsn, dsnErr: f.dsnErr}
	switch {
	case f.jwtErr != nil:
		p.jwtErr = f.jwtErr
	case ai.Spec.JWT.Generate != nil:
		var w *secretWrite
		p.jwt, w, p.decision, p.jwtErr = decideGeneratedJWT(ai, f.jwt, now, newSecret, scheme)
		if w != nil {
			p.writes = append(p.writes, *w)
		}
	case ai.Spec.JWT.ExistingSecretRef != nil:
		p.jwt, p.jwtErr = decideAdoptedJWT(ai, f.jwt)
	default:
		p.jwtErr = stallInvalidJWT()
	}
	if p.jwtErr != nil {
		return p
	}
	if f.exportsErr != nil {
		p.exportsErr = f.exportsErr
		return p
	}
	for i, e := range ai.Spec.Exports {
		w, err := decideExport(ai, e, f.exports[i], p.jwt, scheme)
		if err != nil {
			p.exportsErr = err
			return p
		}
		if w != nil {
			p.writes = append(p.writes, *w)
		}
	}
	decideSide(ai, f, &p, scheme, env)
	return p
}

// sideEnv is what the provider side is decided with besides the facts.
type sideEnv struct {
	exchange  ExchangeOptions
	newSyncer func(ai *v1alpha1.AuthIntegration, creds map[string]string) providerSyncer
}

// decideSide plans the provider side: the InsForge workloads, the signing key and its Secret,
// the exchange's objects and the provider's syncer. It runs only with a ready JWT secret.
func decideSide(ai *v1alpha1.AuthIntegration, f facts, p *plan, scheme *runtime.Scheme, env sideEnv) {
	if f.workloadsErr != nil {
		p.workloadsErr = f.workloadsErr
	} else {
		p.workloads, p.workloadsErr = decideWorkloads(ai, f.workloads, jwtsecret.Fingerprint(p.jwt.current))
	}
	if !hasSigners(ai) {
		return
	}
	if f.refused != nil {
		p.exchangeErr, p.providerErr = f.refused, f.refused
		return
	}
	if f.signingErr != nil {
		p.exchangeErr, p.providerErr = f.signingErr, f.signingErr
		return
	}
	p.signingKey = decideSigningKey(ai, p.jwt.current, p.workloads, f.signing)
	w, err := decideSigningSecret(ai, f.signing, p.signingKey, scheme)
	if err != nil {
		p.exchangeErr, p.providerErr = err, err
		return
	}
	if w != nil {
		p.writes = append(p.writes, *w)
	}
	if ai.Spec.Exchange != nil {
		p.exchange, p.exchangeErr = renderExchange(exchangeRender{AI: ai, Image: env.exchange.Image, PullSecrets: env.exchange.PullSecrets,
			SigningFingerprint: jwtsecret.Fingerprint(p.signingKey)})
	}
	if providerSyncKind(ai) != "" {
		if f.providerErr != nil {
			p.providerErr = f.providerErr
		} else {
			p.syncer = env.newSyncer(ai, f.providerCreds)
		}
	}
}
