package kit

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// StalledError is a problem only the user can fix (a missing Secret, a bad spec). It becomes
// Stalled=True with its reason; the message names objects and keys, never values.
type StalledError struct {
	Reason  string
	Message string
}

func (e *StalledError) Error() string { return e.Message }

// Stall returns a StalledError with reason and a formatted message.
func Stall(reason, format string, args ...any) error {
	return &StalledError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// AsStalled returns the StalledError in err's chain, if any.
func AsStalled(err error) (*StalledError, bool) {
	var st *StalledError
	ok := errors.As(err, &st)
	return st, ok
}

// IsAPIError reports whether err came from the Kubernetes API (a conflict, a timeout): it is
// retried with backoff and not reported in status, since the next attempt usually succeeds and
// writing status would only fail the same way.
func IsAPIError(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := AsStalled(err); ok {
		return false
	}
	return apierrors.ReasonForError(err) != ""
}
