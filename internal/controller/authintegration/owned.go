package authintegration

import (
	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/rls"
)

// ownedOn are the tables where the integration's policies may be besides its spec's
// (rls.Options.OwnedOn), so that a drift check does not scan every integration's policy comments.
//
// status.tables are the tables of the last reconcile whose rls.Reconcile succeeded, written in
// the same patch as status.observedGeneration. While that generation is the current one, every
// apply since then was of this spec (its tables) and the last successful one dropped the
// integration's policies elsewhere, so its policies are all on status.tables. When the
// generations differ (a new spec, or a status write lost after an apply committed) or nothing was
// reported yet, nil makes rls search the whole database.
func ownedOn(ai *integrationsv1alpha1.AuthIntegration) []rls.TableRef {
	if ai.Status.Tables == nil || ai.Status.ObservedGeneration != ai.Generation {
		return nil
	}
	out := make([]rls.TableRef, 0, len(ai.Status.Tables))
	for _, t := range ai.Status.Tables {
		out = append(out, rls.TableRef{Schema: t.Schema, Name: t.Name})
	}
	return out
}
