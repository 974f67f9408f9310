package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestConditionMarkersFollowKstatus(t *testing.T) {
	var conds []metav1.Condition

	MarkReconciling(&conds, 3, ReasonProgressing, "applying")
	assertCondition(t, conds, ConditionReconciling, metav1.ConditionTrue, 3)
	assertCondition(t, conds, ConditionReady, metav1.ConditionFalse, 3)
	if meta.FindStatusCondition(conds, ConditionStalled) != nil {
		t.Fatal("Stalled present while reconciling")
	}

	MarkStalled(&conds, 4, ReasonUUIDUserID, "user_id is uuid")
	assertCondition(t, conds, ConditionStalled, metav1.ConditionTrue, 4)
	assertCondition(t, conds, ConditionReady, metav1.ConditionFalse, 4)
	if meta.FindStatusCondition(conds, ConditionReconciling) != nil {
		t.Fatal("Reconciling present while stalled")
	}
	if got := meta.FindStatusCondition(conds, ConditionReady).Reason; got != ReasonUUIDUserID {
		t.Fatalf("Ready reason = %q, want the stall's reason", got)
	}

	MarkReady(&conds, 5, ReasonReconciled, "")
	assertCondition(t, conds, ConditionReady, metav1.ConditionTrue, 5)
	for _, gone := range []string{ConditionReconciling, ConditionStalled} {
		if meta.FindStatusCondition(conds, gone) != nil {
			t.Fatalf("%s still present after MarkReady", gone)
		}
	}
}

func TestSetConditionKeepsTransitionTimeWhenStatusIsUnchanged(t *testing.T) {
	var conds []metav1.Condition
	SetCondition(&conds, 1, ConditionDrifted, metav1.ConditionFalse, ReasonInSync, "")
	first := meta.FindStatusCondition(conds, ConditionDrifted).LastTransitionTime
	first.Time = first.Add(-3600e9)
	conds[0].LastTransitionTime = first

	SetCondition(&conds, 2, ConditionDrifted, metav1.ConditionFalse, ReasonInSync, "still in sync")
	c := meta.FindStatusCondition(conds, ConditionDrifted)
	if !c.LastTransitionTime.Equal(&first) {
		t.Fatalf("transition time moved from %v to %v without a status change", first, c.LastTransitionTime)
	}
	if c.ObservedGeneration != 2 || c.Message != "still in sync" {
		t.Fatalf("condition not updated: %+v", c)
	}
}

func assertCondition(t *testing.T, conds []metav1.Condition, condType string, status metav1.ConditionStatus, gen int64) {
	t.Helper()
	c := meta.FindStatusCondition(conds, condType)
	if c == nil {
		t.Fatalf("condition %s missing", condType)
	}
	if c.Status != status || c.ObservedGeneration != gen {
		t.Fatalf("condition %s = %s gen %d, want %s gen %d", condType, c.Status, c.ObservedGeneration, status, gen)
	}
}
