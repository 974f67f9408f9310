package kit

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MaxMessage bounds condition and event messages: readable, and within API limits.
const MaxMessage = 1024

// Clip shortens a message to MaxMessage bytes, on a UTF-8 boundary.
func Clip(s string) string {
	if len(s) <= MaxMessage {
		return s
	}
	cut := MaxMessage - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// Time returns t as an API time.
func Time(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}

// OptTime returns t as an API time, or nil for the zero time.
func OptTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return Time(t)
}

// PatchStatus writes obj's status as a merge patch against base, the object as read. Callers
// decide first whether anything changed: a steady state writes nothing.
func PatchStatus(ctx context.Context, c client.Client, base, obj client.Object) error {
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("patching the status: %w", err)
	}
	return nil
}
