package kit

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// Events records Kubernetes events about one kind's objects. Notes name objects and
// fingerprints, never values; they are clipped like condition messages. The zero value (no
// recorder) records nothing, for reconcilers driven directly by tests.
type Events struct {
	Recorder events.EventRecorder
}

// Emit records an event of type typ ("Normal" or "Warning") about obj.
func (e Events) Emit(obj runtime.Object, typ, reason, action, format string, args ...any) {
	if e.Recorder == nil {
		return
	}
	e.Recorder.Eventf(obj, nil, typ, reason, action, "%s", Clip(fmt.Sprintf(format, args...)))
}
