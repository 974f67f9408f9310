package controller

import (
	"errors"
	"fmt"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/rls"
	"github.com/jackc/pgx/v5/pgconn"
)

// stalledError is a problem only the user can fix (a missing Secret, a bad spec). It becomes
// Stalled=True with its reason; the message names objects and keys, never values.
type stalledError struct {
	reason  string
	message string
}

func (e *stalledError) Error() string { return e.message }

func stalled(reason, format string, args ...any) error {
	return &stalledError{reason: reason, message: fmt.Sprintf(format, args...)}
}

// classify maps an error to (terminal, reason). Terminal errors stall the integration; the others
// are retried with backoff.
func classify(err error) (terminal bool, reason string) {
	var st *stalledError
	if errors.As(err, &st) {
		return true, st.reason
	}
	if !rls.IsTerminal(err) {
		return false, integrationsv1alpha1.ReasonDatabaseError
	}
	var (
		colType  *rls.ColumnTypeError
		table    *rls.TableMissingError
		column   *rls.ColumnMissingError
		conflict *rls.ConflictError
		pgErr    *pgconn.PgError
	)
	switch {
	case errors.As(err, &colType) && colType.IsUUID():
		return true, integrationsv1alpha1.ReasonUUIDUserID
	case errors.As(err, &table), errors.As(err, &column):
		return true, integrationsv1alpha1.ReasonTableMissing
	case errors.As(err, &conflict):
		return true, integrationsv1alpha1.ReasonPolicyConflict
	case errors.As(err, &pgErr) && len(pgErr.Code) == 5 && pgErr.Code[:2] == "28":
		return true, integrationsv1alpha1.ReasonAuthFailed
	}
	return true, integrationsv1alpha1.ReasonInvalidSpec
}
