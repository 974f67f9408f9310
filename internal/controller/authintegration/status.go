package authintegration

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/rls"
)

// maxDriftItems bounds the differences listed in status.drift.
const maxDriftItems = 32

const (
	// reasonPreviousKeyRemoved: the grace period of a rotated key ended.
	reasonPreviousKeyRemoved = "PreviousKeyRemoved"
	// clerkTemplateNote tells Clerk users where the key goes: Clerk signs the tokens itself.
	clerkTemplateNote = `Clerk: paste key JWT_SECRET of Secret %s as the custom signing key (HS256) of the Clerk JWT template "insforge", with claims {"role":"authenticated","aud":"insforge-api"}`
)

// verdict summarises the status for the caller: how to requeue and what to count.
type verdict struct {
	outcome string
	// transient is the error to return for a retry with backoff.
	transient error
	// driftFound is true when an already-reached state was found changed out of band.
	driftFound bool
	// requeue, when set, is how soon to look again (a rollout in progress).
	requeue time.Duration
}

func removeCondition(conds *[]metav1.Condition, t string) { meta.RemoveStatusCondition(conds, t) }

// computeStatus derives the new status from the old one and the observation. It is pure apart
// from condition transition times.
func computeStatus(ai *integrationsv1alpha1.AuthIntegration, obs observation) (*integrationsv1alpha1.AuthIntegrationStatus, verdict) {
	gen := ai.Generation
	st := ai.Status.DeepCopy()
	st.ObservedGeneration = gen
	if v, ok := kit.RequestedAt(ai); ok {
		st.LastHandledReconcileAt = v
	}
	conds := &st.Conditions
	var v verdict
	var stalls, retries []string
	stallReason, retryReason := "", ""
	fail := func(err error) {
		terminal, reason := classify(err)
		if terminal {
			if stallReason == "" {
				stallReason = reason
			}
			stalls = append(stalls, err.Error())
			return
		}
		if retryReason == "" {
			retryReason = reason
			v.transient = err
		}
		retries = append(retries, err.Error())
	}

	secretStatus(ai, obs, st, fail)
	progress := ""
	if obs.jwtErr == nil && obs.exportsErr == nil {
		progress, v.requeue = sideStatus(ai, obs, st, fail)
	}
	sqlStatus(ai, obs, st, &v, fail)

	verifyFailed := false
	if obs.db != nil && obs.db.result != nil && obs.db.verification == nil && obs.dbErr == nil {
		integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionRLSVerified, metav1.ConditionFalse,
			integrationsv1alpha1.ReasonObserveOnly, "not verified: the database differs from the desired state and observe mode changes nothing")
	}
	if obs.db != nil && obs.db.verification != nil {
		ver := obs.db.verification
		if ver.OK() {
			integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionRLSVerified, metav1.ConditionTrue,
				integrationsv1alpha1.ReasonVerified, fmt.Sprintf("a synthetic authenticated user could reach only its own rows in %d table(s)", len(ver.Tables)))
		} else {
			integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionRLSVerified, metav1.ConditionFalse,
				integrationsv1alpha1.ReasonVerifyFailed, kit.Clip(ver.Summary()))
			verifyFailed = rlsMode(ai) == rls.ModeApply
		}
	}

	switch {
	case len(stalls) > 0:
		integrationsv1alpha1.MarkStalled(conds, gen, stallReason, kit.Clip(strings.Join(stalls, "; ")))
		v.outcome = outcomeStalled
	case len(retries) > 0:
		integrationsv1alpha1.MarkReconciling(conds, gen, retryReason, kit.Clip(strings.Join(retries, "; ")+"; retrying with backoff"))
		v.outcome = outcomeError
	case verifyFailed:
		integrationsv1alpha1.MarkStalled(conds, gen, integrationsv1alpha1.ReasonVerifyFailed,
			kit.Clip("the policies were applied but isolation does not hold (another policy or grant may open the table): "+obs.db.verification.Summary()))
		v.outcome = outcomeStalled
	case progress != "":
		integrationsv1alpha1.MarkReconciling(conds, gen, integrationsv1alpha1.ReasonProgressing, kit.Clip(progress))
		v.outcome = outcomeReady
	case rlsMode(ai) == rls.ModeObserve && obs.db.result.Drifted():
		integrationsv1alpha1.MarkReady(conds, gen, integrationsv1alpha1.ReasonObserveOnly,
			fmt.Sprintf("observe mode: %d difference(s) reported in the Drifted condition, nothing changed", len(obs.db.result.Differences)))
		v.outcome = outcomeReady
	default:
		integrationsv1alpha1.MarkReady(conds, gen, integrationsv1alpha1.ReasonReconciled, "row-level security in place and verified; JWT secret ready")
		v.outcome = outcomeReady
	}
	return st, v
}

// secretStatus sets SecretReady and status.jwt.
func secretStatus(ai *integrationsv1alpha1.AuthIntegration, obs observation, st *integrationsv1alpha1.AuthIntegrationStatus, fail func(error)) {
	gen := ai.Generation
	if obs.jwt.status != nil {
		st.JWT = obs.jwt.status
	}
	err := obs.jwtErr
	if err == nil {
		err = obs.exportsErr
	}
	if err != nil {
		_, reason := classify(err)
		integrationsv1alpha1.SetCondition(&st.Conditions, gen, integrationsv1alpha1.ConditionSecretReady, metav1.ConditionFalse, reason, kit.Clip(err.Error()))
		fail(err)
		return
	}
	reason := integrationsv1alpha1.ReasonSecretGenerated
	if ai.Spec.JWT.ExistingSecretRef != nil {
		reason = integrationsv1alpha1.ReasonSecretAdopted
	}
	msg := fmt.Sprintf("JWT secret in Secret %s (%s)", obs.jwt.secretName, obs.jwt.status.Fingerprint)
	if n := len(ai.Spec.Exports); n > 0 {
		names := make([]string, n)
		for i, e := range ai.Spec.Exports {
			names[i] = e.SecretName + "/" + exportKey(e)
		}
		msg += "; exported to " + strings.Join(names, ", ")
	}
	if ai.Spec.Provider == integrationsv1alpha1.ProviderClerk && providerSyncKind(ai) == "" && ai.Spec.Exchange == nil {
		msg += ". " + fmt.Sprintf(clerkTemplateNote, obs.jwt.secretName)
	}
	integrationsv1alpha1.SetCondition(&st.Conditions, gen, integrationsv1alpha1.ConditionSecretReady, metav1.ConditionTrue, reason, kit.Clip(msg))
}

// sqlStatus sets SQLApplied, Drifted and the database fields of the status.
func sqlStatus(ai *integrationsv1alpha1.AuthIntegration, obs observation, st *integrationsv1alpha1.AuthIntegrationStatus, v *verdict, fail func(error)) {
	gen := ai.Generation
	conds := &st.Conditions
	if obs.db == nil || obs.db.result == nil {
		if terminal, reason := classify(obs.dbErr); terminal {
			integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionSQLApplied, metav1.ConditionFalse, reason, kit.Clip(obs.dbErr.Error()))
		}
		fail(obs.dbErr)
		return
	}
	if obs.dbErr != nil { // verification could not run
		fail(obs.dbErr)
	}
	res, hash := obs.db.result, obs.db.hash
	st.LastDriftCheckTime = kit.Time(obs.now)
	st.Tables = tableStatuses(obs.db)
	drifts := make([]string, 0, len(res.Differences))
	for i, d := range res.Differences {
		if i == maxDriftItems {
			drifts = append(drifts, fmt.Sprintf("… and %d more", len(res.Differences)-i))
			break
		}
		drifts = append(drifts, d.String())
	}

	if rlsMode(ai) == rls.ModeObserve {
		st.AppliedHash = hash
		if res.Drifted() {
			st.Drift = drifts
			v.driftFound = !meta.IsStatusConditionTrue(ai.Status.Conditions, integrationsv1alpha1.ConditionDrifted)
			integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionSQLApplied, metav1.ConditionFalse, integrationsv1alpha1.ReasonObserveOnly,
				fmt.Sprintf("observe mode: %d difference(s) not applied", len(res.Differences)))
			integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionDrifted, metav1.ConditionTrue, integrationsv1alpha1.ReasonDriftDetected, kit.Clip(res.Summary()))
			return
		}
		st.Drift = nil
		integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionSQLApplied, metav1.ConditionTrue, integrationsv1alpha1.ReasonInSync, "the database matches the desired state")
		integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionDrifted, metav1.ConditionFalse, integrationsv1alpha1.ReasonInSync, "the database matches the desired state")
		return
	}

	// Differences for a state this integration had already reached are drift; differences for a
	// new desired state are just the apply.
	drift := res.Drifted() && ai.Status.AppliedHash == hash
	st.AppliedHash = hash
	if res.StatementCount() > 0 {
		st.LastAppliedTime = kit.Time(obs.now)
	}
	if drift {
		st.Drift = drifts
		v.driftFound = true
		integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionDrifted, metav1.ConditionTrue, integrationsv1alpha1.ReasonDriftCorrected,
			kit.Clip("found and corrected: "+res.Summary()))
	} else {
		st.Drift = nil
		integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionDrifted, metav1.ConditionFalse, integrationsv1alpha1.ReasonInSync, "no out-of-band changes found")
	}
	// The same message whether or not this pass executed anything, so that a steady resync does
	// not rewrite the condition; the Applied event and lastAppliedTime tell the difference.
	integrationsv1alpha1.SetCondition(conds, gen, integrationsv1alpha1.ConditionSQLApplied, metav1.ConditionTrue, integrationsv1alpha1.ReasonReconciled,
		"the database matches the desired state")
}

// tableStatuses reports each managed table from the reconcile and the verification.
func tableStatuses(db *dbOutcome) []integrationsv1alpha1.TableStatus {
	missing := map[string]bool{}
	for _, d := range db.result.Differences {
		missing[d.Object] = d.Problem == "missing"
	}
	// After an apply every policy exists; in observe mode the missing ones are not listed.
	applied := db.result.StatementCount() > 0 || !db.result.Drifted()
	out := make([]integrationsv1alpha1.TableStatus, 0, len(db.spec.Tables))
	for i, t := range db.spec.Tables {
		ref := t.Ref()
		ts := integrationsv1alpha1.TableStatus{Schema: ref.Schema, Name: ref.Name}
		for _, c := range t.Cmds() {
			name := db.spec.PolicyName(t, c)
			if applied || !missing["policy "+name+" on "+ref.String()] {
				ts.Policies = append(ts.Policies, name)
			}
		}
		if db.verification != nil && i < len(db.verification.Tables) {
			tv := db.verification.Tables[i]
			ts.RLSEnabled = tv.RLSEnabled
			ts.Verified = tv.OK() && tv.Isolation == rls.IsolationPassed
			switch {
			case !tv.OK():
				ts.Message = kit.Clip(strings.Join(tv.Problems, "; "))
			case tv.Note != "":
				ts.Message = kit.Clip("isolation not exercised: " + tv.Note)
			}
		}
		out = append(out, ts)
	}
	return out
}

// eventsFor emits the events of state changes between the old and the new status.
func (r *Reconciler) emitEvents(ai *integrationsv1alpha1.AuthIntegration, old *integrationsv1alpha1.AuthIntegrationStatus, obs observation, v verdict) {
	if obs.db != nil && obs.db.result != nil {
		res := obs.db.result
		switch {
		case v.driftFound && rlsMode(ai) == rls.ModeApply:
			r.Events.Emit(ai, corev1.EventTypeWarning, integrationsv1alpha1.ReasonDriftCorrected, "CorrectDrift", "Corrected out-of-band changes: %s", res.Summary())
		case v.driftFound:
			r.Events.Emit(ai, corev1.EventTypeWarning, integrationsv1alpha1.ReasonDriftDetected, "ObserveDrift", "The database differs from the spec (observe mode, nothing changed): %s", res.Summary())
		case res.StatementCount() > 0:
			r.Events.Emit(ai, corev1.EventTypeNormal, "Applied", "ApplySQL", "Executed %d statement(s) for %d difference(s)", res.StatementCount(), len(res.Differences))
		}
	}
	if v.outcome == outcomeStalled {
		ready := meta.FindStatusCondition(ai.Status.Conditions, integrationsv1alpha1.ConditionReady)
		oldReady := meta.FindStatusCondition(old.Conditions, integrationsv1alpha1.ConditionReady)
		if oldReady == nil || !meta.IsStatusConditionTrue(old.Conditions, integrationsv1alpha1.ConditionStalled) ||
			oldReady.Reason != ready.Reason || oldReady.Message != ready.Message {
			r.Events.Emit(ai, corev1.EventTypeWarning, ready.Reason, "Reconcile", "%s", ready.Message)
		}
	}
}
