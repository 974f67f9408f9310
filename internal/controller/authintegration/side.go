package authintegration

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/jwtsecret"
)

// rolloutPoll is how often a rolling InsForge workload is looked at again: they are not
// watched (the operator does not own them).
const rolloutPoll = 3 * time.Second

// sideOutcome is what the provider side found: the InsForge workloads, the exchange and the
// provider object.
type sideOutcome struct {
	workloads    []workloadPlan
	workloadsErr error
	signingKey   string // a secret

	exchange    *appsv1.Deployment
	exchangeErr error

	provider       *v1alpha1.ProviderSyncStatus
	providerAction syncAction
	providerErr    error
}

// actSide rolls the InsForge workloads that are not on the current key, applies the exchange and
// brings the provider's object to the signing key. Each part goes on whatever the others did.
func (r *Reconciler) actSide(ctx context.Context, ai *v1alpha1.AuthIntegration, p plan) sideOutcome {
	out := sideOutcome{workloads: p.workloads, workloadsErr: p.workloadsErr, signingKey: p.signingKey,
		exchangeErr: p.exchangeErr, providerErr: p.providerErr}
	if out.workloadsErr == nil {
		for i := range out.workloads {
			w := &out.workloads[i]
			if w.patched == nil {
				continue
			}
			if err := r.patchWorkload(ctx, *w); err != nil {
				out.workloadsErr = &sideError{reason: v1alpha1.ReasonProgressing, err: err}
				break
			}
			w.state, w.message = v1alpha1.ConsumerRolling, "rolling to the current key"
			r.Events.Emit(ai, corev1.EventTypeNormal, v1alpha1.ReasonRollingOut, "RollWorkload",
				"Rolling %s %s to the JWT secret %s", w.ref.Kind, w.ref.Name, jwtsecret.Fingerprint(p.jwt.current))
		}
	}
	if !hasSigners(ai) || ai.Spec.Exchange == nil {
		if err := r.removeUnused(ctx, ai); err != nil {
			out.exchangeErr = &sideError{reason: v1alpha1.ReasonProgressing, err: err}
		}
	}
	if p.exchange != nil && out.exchangeErr == nil {
		if out.exchange, out.exchangeErr = r.applyExchange(ctx, ai, p.exchange); out.exchangeErr != nil {
			out.exchangeErr = &sideError{reason: v1alpha1.ReasonDeploymentPending, err: out.exchangeErr}
		}
	}
	if p.syncer != nil && out.providerErr == nil {
		last := v1alpha1.ProviderSyncStatus{Kind: providerSyncKind(ai)}
		if s := ai.Status.Provider; s != nil && s.Kind == last.Kind {
			last = *s
		}
		callCtx, cancel := context.WithTimeout(ctx, providerCallTimeout)
		st, action, err := p.syncer.Sync(callCtx, []byte(p.signingKey), last)
		cancel()
		if err != nil {
			out.providerErr = err
		} else {
			if action != "" {
				st.LastSyncTime = kit.Time(p.now)
				r.Events.Emit(ai, corev1.EventTypeNormal, v1alpha1.ReasonProviderSynced, "SyncProvider", "%s %s: %s", st.Kind, st.Name, action)
			} else {
				st.LastSyncTime = last.LastSyncTime
			}
			out.provider, out.providerAction = &st, action
		}
	}
	return out
}

// removeUnused deletes the exchange's objects once spec.exchange is gone, and empties the signing
// Secret once nothing signs: left behind, they would keep a copy of the key running or stored. Only
// objects this integration controls are deleted.
func (r *Reconciler) removeUnused(ctx context.Context, ai *v1alpha1.AuthIntegration) error {
	var objs []client.Object
	if ai.Spec.Exchange == nil {
		name := exchangeName(ai.Name)
		objs = append(objs, &appsv1.Deployment{}, &corev1.Service{}, &corev1.ConfigMap{}, &policyv1.PodDisruptionBudget{})
		for _, o := range objs {
			o.SetName(name)
		}
		r.applied.Forget(objectKey(ai))
	}
	if !hasSigners(ai) {
		// Emptied rather than deleted: the operator may not delete Secrets.
		var sec corev1.Secret
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: ai.Namespace, Name: signingSecretName(ai.Name)}, &sec)
		if err == nil && metav1.IsControlledBy(&sec, ai) && len(sec.Data) > 0 {
			sec.Data = nil
			if err := r.Client.Update(ctx, &sec); err != nil {
				return fmt.Errorf("emptying the signing Secret %s: %w", sec.Name, err)
			}
		}
	}
	for _, o := range objs {
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: ai.Namespace, Name: o.GetName()}, o)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return fmt.Errorf("reading %T %s: %w", o, o.GetName(), err)
		case !metav1.IsControlledBy(o, ai):
			continue
		}
		if err := r.Client.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// applyExchange applies the exchange's objects unless they are exactly as last applied, and
// returns its Deployment as the API server has it.
func (r *Reconciler) applyExchange(ctx context.Context, ai *v1alpha1.AuthIntegration, objs *exchangeObjects) (*appsv1.Deployment, error) {
	digest, err := objs.Digest()
	if err != nil {
		return nil, err
	}
	key := objectKey(ai)
	prev := &appsv1.Deployment{}
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(objs.Deployment), prev)
	switch {
	case apierrors.IsNotFound(err):
		prev = nil
	case err != nil:
		return nil, fmt.Errorf("reading the exchange Deployment: %w", err)
	}
	if prev != nil && r.applied.Unchanged(ctx, r.Client, key, digest, objs.Objects()) {
		return prev, nil
	}
	for _, obj := range objs.Objects() {
		if err := kit.Apply(ctx, r.Client, obj); err != nil {
			return nil, err
		}
	}
	r.applied.Record(key, digest, objs.Objects())
	return objs.Deployment, nil
}

// sideStatus sets ExchangeAvailable, ProviderSynced, KeyPropagated and the status fields of the
// provider side. It returns why the integration is still progressing ("" when it is not) and
// how soon to look again.
func sideStatus(ai *v1alpha1.AuthIntegration, obs observation, st *v1alpha1.AuthIntegrationStatus, fail func(error)) (progress string, requeue time.Duration) {
	gen := ai.Generation
	conds := &st.Conditions
	side := obs.side
	var pending []string
	set := func(cond string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		v1alpha1.SetCondition(conds, gen, cond, status, reason, kit.Clip(msg))
	}
	failed := func(cond string, err error) {
		_, reason := classify(err)
		set(cond, false, reason, err.Error())
		fail(err)
	}

	// Exchange.
	switch x := ai.Spec.Exchange; {
	case x == nil:
		st.Exchange = nil
		removeCondition(conds, v1alpha1.ConditionExchangeAvailable)
	case side.exchangeErr != nil:
		failed(v1alpha1.ConditionExchangeAvailable, side.exchangeErr)
	case side.exchange != nil:
		ok, msg := kit.DeploymentAvailable(side.exchange)
		st.Exchange = &v1alpha1.ExchangeStatus{URL: exchangeURL(ai), ReadyReplicas: side.exchange.Status.ReadyReplicas,
			KeyFingerprint: jwtsecret.Fingerprint(side.signingKey)}
		if ok {
			set(v1alpha1.ConditionExchangeAvailable, true, v1alpha1.ReasonAvailable, msg)
		} else {
			set(v1alpha1.ConditionExchangeAvailable, false, v1alpha1.ReasonDeploymentPending, msg)
			pending = append(pending, "exchange: "+msg)
		}
	}

	// Provider.
	switch kind := providerSyncKind(ai); {
	case kind == "":
		st.Provider = nil
		removeCondition(conds, v1alpha1.ConditionProviderSynced)
	case side.providerErr != nil:
		failed(v1alpha1.ConditionProviderSynced, side.providerErr)
	case side.provider != nil:
		st.Provider = side.provider
		set(v1alpha1.ConditionProviderSynced, true, v1alpha1.ReasonProviderSynced,
			fmt.Sprintf("%s %s signs with key %s", side.provider.Kind, side.provider.Name, side.provider.KeyFingerprint))
	}

	// Consumers of the key and its propagation.
	if st.JWT != nil {
		st.JWT.SigningFingerprint = ""
		st.JWT.Consumers = nil
		if hasSigners(ai) && side.signingKey != "" {
			st.JWT.SigningFingerprint = jwtsecret.Fingerprint(side.signingKey)
		}
	}
	if ai.Spec.InsForge == nil && !hasSigners(ai) {
		removeCondition(conds, v1alpha1.ConditionKeyPropagated)
		return strings.Join(pending, "; "), 0
	}
	if side.workloadsErr != nil {
		failed(v1alpha1.ConditionKeyPropagated, side.workloadsErr)
		return "", 0
	}
	current := ""
	if st.JWT != nil {
		current = st.JWT.Fingerprint
	}
	var consumers []v1alpha1.ConsumerStatus
	var rolling []string
	for _, w := range side.workloads {
		c := v1alpha1.ConsumerStatus{Kind: string(w.ref.Kind), Name: w.ref.Name, State: w.state, Message: kit.Clip(w.message)}
		if w.state == v1alpha1.ConsumerCurrent {
			c.KeyFingerprint = current
		} else {
			rolling = append(rolling, fmt.Sprintf("%s %s", w.ref.Kind, w.ref.Name))
		}
		consumers = append(consumers, c)
	}
	signing := jwtsecret.Fingerprint(side.signingKey)
	signerState := func(fp string) v1alpha1.ConsumerState {
		if fp == current {
			return v1alpha1.ConsumerCurrent
		}
		return v1alpha1.ConsumerPending
	}
	if ai.Spec.Exchange != nil && side.exchange != nil {
		consumers = append(consumers, v1alpha1.ConsumerStatus{Kind: "Exchange", Name: side.exchange.Name,
			State: signerState(signing), KeyFingerprint: signing})
	}
	if side.provider != nil {
		consumers = append(consumers, v1alpha1.ConsumerStatus{Kind: side.provider.Kind, Name: side.provider.Name,
			State: signerState(side.provider.KeyFingerprint), KeyFingerprint: side.provider.KeyFingerprint})
	}
	if st.JWT != nil {
		st.JWT.Consumers = consumers
	}
	if len(rolling) > 0 {
		msg := fmt.Sprintf("rolling %s to key %s; the exchange and the provider keep signing with %s until they run it",
			strings.Join(rolling, ", "), current, signing)
		set(v1alpha1.ConditionKeyPropagated, false, v1alpha1.ReasonRollingOut, msg)
		pending = append(pending, msg)
		return strings.Join(pending, "; "), rolloutPoll
	}
	if hasSigners(ai) && signing != current {
		// The signing Secret is switched by this very reconcile; the next one confirms it.
		set(v1alpha1.ConditionKeyPropagated, false, v1alpha1.ReasonRollingOut, "switching the signers to key "+current)
		pending = append(pending, "switching the signers to key "+current)
		return strings.Join(pending, "; "), time.Second
	}
	set(v1alpha1.ConditionKeyPropagated, true, v1alpha1.ReasonKeyPropagated,
		fmt.Sprintf("every reader of the JWT secret runs key %s", current))
	return strings.Join(pending, "; "), 0
}
