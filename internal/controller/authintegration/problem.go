package authintegration

import (
	"errors"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	"github.com/insforge/integrations-operator/internal/pgpool"
	"github.com/insforge/integrations-operator/internal/rls"
)

// classify maps an error to (terminal, reason). Terminal errors stall the integration; the others
// are retried with backoff.
func classify(err error) (terminal bool, reason string) {
	if st, ok := kit.AsStalled(err); ok {
		return true, st.Reason
	}
	var side *sideError
	if errors.As(err, &side) {
		return false, side.reason
	}
	if !rls.IsTerminal(err) {
		return false, integrationsv1alpha1.ReasonDatabaseError
	}
	var (
		colType  *rls.ColumnTypeError
		table    *rls.TableMissingError
		column   *rls.ColumnMissingError
		conflict *rls.ConflictError
	)
	switch {
	case errors.As(err, &colType) && colType.IsUUID():
		return true, integrationsv1alpha1.ReasonUUIDUserID
	case errors.As(err, &table), errors.As(err, &column):
		return true, integrationsv1alpha1.ReasonTableMissing
	case errors.As(err, &conflict):
		return true, integrationsv1alpha1.ReasonPolicyConflict
	case pgpool.IsAuthFailure(err):
		return true, integrationsv1alpha1.ReasonAuthFailed
	}
	return true, integrationsv1alpha1.ReasonInvalidSpec
}
