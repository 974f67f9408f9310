package authintegration

import (
	"testing"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/rls"
)

func TestOwnedOnTrustsReportedTablesOnlyForTheCurrentGeneration(t *testing.T) {
	ai := todos("app")
	ai.Generation = 3
	if got := ownedOn(ai); got != nil {
		t.Fatalf("never reported: %v, want nil (search everywhere)", got)
	}
	ai.Status.Tables = []integrationsv1alpha1.TableStatus{{Schema: "public", Name: "todos"}, {Schema: "app", Name: "notes"}}
	ai.Status.ObservedGeneration = 2
	if got := ownedOn(ai); got != nil {
		t.Fatalf("reported for an older generation: %v, want nil", got)
	}
	ai.Status.ObservedGeneration = 3
	want := []rls.TableRef{{Schema: "public", Name: "todos"}, {Schema: "app", Name: "notes"}}
	if got := ownedOn(ai); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("ownedOn = %v, want %v", got, want)
	}
}
