package jwtsecret

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

const (
	oldKey = "0000000000000000000000000000000000000000000000000000000000000000"
	curKey = "1111111111111111111111111111111111111111111111111111111111111111"
)

// keys returns a generator of distinct, recognisable keys.
func keys() func() (string, error) {
	n := 0
	return func() (string, error) {
		n++
		return fmt.Sprintf("new%d-%s", n, strings.Repeat("x", 60)), nil
	}
}

func ts(t time.Time) string { return t.Format(time.RFC3339) }

// generated is a Secret the operator wrote at rotatedAt, optionally with a previous key.
func generated(rotatedAt time.Time, previous string, expires time.Time, trigger string) Secret {
	s := Secret{Exists: true, Data: map[string][]byte{KeyCurrent: []byte(curKey)}, Annotations: map[string]string{
		AnnotationGenerated:   "true",
		AnnotationFingerprint: Fingerprint(curKey),
		AnnotationRotatedAt:   ts(rotatedAt),
	}}
	if previous != "" {
		s.Data[KeyPrevious] = []byte(previous)
		if !expires.IsZero() {
			s.Annotations[AnnotationPreviousExpiresAt] = ts(expires)
		}
	}
	if trigger != "" {
		s.Annotations[AnnotationTrigger] = trigger
	}
	return s
}

func TestDecide(t *testing.T) {
	daily := Policy{Interval: 24 * time.Hour, GracePeriod: time.Hour}
	cases := []struct {
		name    string
		secret  Secret
		policy  Policy
		now     time.Time
		action  Action
		current string // expected JWT_SECRET written ("" = not written)
		prev    string // expected JWT_SECRET_PREVIOUS written
		remove  []string
		requeue time.Duration
		ready   bool
	}{
		{name: "missing secret is created", secret: Secret{}, policy: daily, now: t0,
			action: ActionCreate, current: "new1", remove: []string{KeyPrevious}, requeue: 24 * time.Hour, ready: true},
		{name: "created without rotation has nothing to wait for", secret: Secret{}, policy: Policy{}, now: t0,
			action: ActionCreate, current: "new1", remove: []string{KeyPrevious}, ready: true},
		{name: "current key, nothing due", secret: generated(t0, "", time.Time{}, ""), policy: daily, now: t0.Add(20 * time.Hour),
			action: ActionNone, requeue: 4 * time.Hour, ready: true},
		{name: "interval elapsed rotates and keeps the old key", secret: generated(t0, "", time.Time{}, ""), policy: daily, now: t0.Add(24 * time.Hour),
			action: ActionRotate, current: "new1", prev: curKey, requeue: time.Hour, ready: true},
		{name: "rotation without grace drops the old key", secret: generated(t0, "", time.Time{}, ""), policy: Policy{Interval: time.Hour}, now: t0.Add(2 * time.Hour),
			action: ActionRotate, current: "new1", remove: []string{KeyPrevious}, requeue: time.Hour, ready: true},
		{name: "previous key kept during grace", secret: generated(t0, oldKey, t0.Add(time.Hour), ""), policy: daily, now: t0.Add(10 * time.Minute),
			action: ActionNone, requeue: 50 * time.Minute, ready: true},
		{name: "previous key removed when grace ends", secret: generated(t0, oldKey, t0.Add(time.Hour), ""), policy: daily, now: t0.Add(time.Hour),
			action: ActionExpirePrevious, remove: []string{KeyPrevious}, requeue: 23 * time.Hour, ready: true},
		{name: "previous key without expiry gets one", secret: generated(t0, oldKey, time.Time{}, ""), policy: daily, now: t0.Add(time.Minute),
			action: ActionAnnotate, requeue: time.Hour, ready: true},
		{name: "bumped trigger rotates", secret: generated(t0, "", time.Time{}, "2026-08-01"), policy: Policy{Trigger: "2026-09-01", GracePeriod: time.Hour}, now: t0.Add(time.Minute),
			action: ActionRotate, current: "new1", prev: curKey, requeue: time.Hour, ready: true},
		{name: "trigger already acted on", secret: generated(t0, "", time.Time{}, "2026-09-01"), policy: Policy{Trigger: "2026-09-01"}, now: t0.Add(time.Minute),
			action: ActionNone, ready: true},
		{name: "trigger cleared does not rotate", secret: generated(t0, "", time.Time{}, "2026-09-01"), policy: Policy{}, now: t0.Add(time.Minute),
			action: ActionNone, ready: true},
		{name: "trigger during grace replaces the older previous key", secret: generated(t0, oldKey, t0.Add(time.Hour), "a"), policy: Policy{Trigger: "b", GracePeriod: time.Hour}, now: t0.Add(time.Minute),
			action: ActionRotate, current: "new1", prev: curKey, requeue: time.Hour, ready: true},
		{name: "operator secret lost its key", secret: Secret{Exists: true, Data: map[string][]byte{}, Annotations: map[string]string{AnnotationGenerated: "true"}}, policy: daily, now: t0,
			action: ActionRegenerate, current: "new1", remove: []string{KeyPrevious}, requeue: 24 * time.Hour, ready: true},
		{name: "missing rotation time starts the schedule", secret: func() Secret {
			s := generated(t0, "", time.Time{}, "")
			delete(s.Annotations, AnnotationRotatedAt)
			return s
		}(), policy: daily, now: t0, action: ActionAnnotate, requeue: 24 * time.Hour, ready: true},
		{name: "a user's secret is never written", secret: Secret{Exists: true, Data: map[string][]byte{KeyCurrent: []byte(curKey)}}, policy: daily, now: t0.Add(1000 * time.Hour),
			action: ActionUnmanaged, ready: true},
		{name: "a user's short secret is not ready", secret: Secret{Exists: true, Data: map[string][]byte{KeyCurrent: []byte("dev-secret")}}, policy: daily, now: t0,
			action: ActionUnmanaged, ready: false},
		{name: "a user's secret without the key is not ready", secret: Secret{Exists: true, Data: map[string][]byte{"OTHER": []byte(curKey)}}, policy: daily, now: t0,
			action: ActionUnmanaged, ready: false},
		{name: "a value changed by someone else in the operator's secret is left alone", secret: func() Secret {
			s := generated(t0, "", time.Time{}, "")
			s.Data[KeyCurrent] = []byte("pasted-by-a-human-0123456789abcdef")
			return s
		}(), policy: Policy{Interval: time.Hour, Trigger: "now"}, now: t0.Add(1000 * time.Hour), action: ActionUserModified, ready: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Decide(c.secret, c.policy, c.now, keys())
			if err != nil {
				t.Fatal(err)
			}
			if d.Action != c.action || d.Ready != c.ready || d.RequeueAfter != c.requeue {
				t.Fatalf("got action=%s ready=%v requeue=%s, want %s %v %s (%s)", d.Action, d.Ready, d.RequeueAfter, c.action, c.ready, c.requeue, d.Reason)
			}
			if d.Reason == "" {
				t.Error("no reason")
			}
			wantWrite := c.action != ActionNone && c.action != ActionUnmanaged && c.action != ActionUserModified
			if (d.Write != nil) != wantWrite {
				t.Fatalf("write = %+v, want a write: %v", d.Write, wantWrite)
			}
			if d.Write == nil {
				return
			}
			if got := string(d.Write.Data[KeyCurrent]); !strings.HasPrefix(got, c.current+"-") && got != c.current {
				t.Errorf("JWT_SECRET written = %q, want %q", got, c.current)
			}
			if got := string(d.Write.Data[KeyPrevious]); got != c.prev {
				t.Errorf("JWT_SECRET_PREVIOUS written = %q, want %q", got, c.prev)
			}
			if !slices.Equal(d.Write.RemoveKeys, c.remove) {
				t.Errorf("removed keys %v, want %v", d.Write.RemoveKeys, c.remove)
			}
			if c.current != "" {
				// The bookkeeping must make the next decision a no-op.
				if fp := d.Write.Annotations[AnnotationFingerprint]; fp != Fingerprint(string(d.Write.Data[KeyCurrent])) || fp != d.Status.Fingerprint {
					t.Errorf("fingerprint annotation %q does not match the written key", fp)
				}
			}
		})
	}
}

// TestDecisionsConverge applies each decision to the Secret and decides again at the same
// instant: the second decision must write nothing.
func TestDecisionsConverge(t *testing.T) {
	p := Policy{Interval: 24 * time.Hour, GracePeriod: time.Hour, Trigger: "v2"}
	s := Secret{}
	now := t0
	gen := keys()
	var actions []Action
	for step := 0; step < 12; step++ {
		d, err := Decide(s, p, now, gen)
		if err != nil {
			t.Fatal(err)
		}
		actions = append(actions, d.Action)
		if d.Write != nil {
			s = applyWrite(s, d.Write)
			if d.Action == ActionExpirePrevious && len(s.Data) != 1 {
				t.Fatalf("step %d: after the grace period the Secret holds %d keys, want 1", step, len(s.Data))
			}
			again, err := Decide(s, p, now, gen)
			if err != nil {
				t.Fatal(err)
			}
			if again.Write != nil {
				t.Fatalf("step %d: %s then %s at the same instant", step, d.Action, again.Action)
			}
		}
		if d.RequeueAfter == 0 {
			break
		}
		now = now.Add(d.RequeueAfter)
	}
	// Created (with the trigger counted as acted on), then: previous-free for a day, rotate,
	// expire the previous after the grace period, rotate, ...
	want := []Action{ActionCreate, ActionRotate, ActionExpirePrevious, ActionRotate, ActionExpirePrevious}
	if !slices.Equal(actions[:len(want)], want) {
		t.Fatalf("actions %v, want prefix %v", actions, want)
	}
}

func applyWrite(s Secret, w *Write) Secret {
	out := Secret{Exists: true, Data: map[string][]byte{}, Annotations: map[string]string{}}
	for k, v := range s.Data {
		out.Data[k] = v
	}
	for k, v := range s.Annotations {
		out.Annotations[k] = v
	}
	for k, v := range w.Data {
		out.Data[k] = v
	}
	for _, k := range w.RemoveKeys {
		delete(out.Data, k)
	}
	for k, v := range w.Annotations {
		out.Annotations[k] = v
	}
	for _, k := range w.RemoveAnnotations {
		delete(out.Annotations, k)
	}
	return out
}

func TestPolicyValidate(t *testing.T) {
	for _, p := range []Policy{
		{Interval: -time.Hour},
		{GracePeriod: -time.Second},
		{Interval: time.Hour, GracePeriod: time.Hour},
	} {
		if _, err := Decide(Secret{}, p, t0, keys()); err == nil {
			t.Errorf("policy %+v accepted", p)
		}
	}
}

func TestStatusNeverCarriesValues(t *testing.T) {
	d, err := Decide(generated(t0, "", time.Time{}, ""), Policy{Interval: time.Hour, GracePeriod: time.Minute}, t0.Add(time.Hour), keys())
	if err != nil {
		t.Fatal(err)
	}
	status := fmt.Sprintf("%+v %s", d.Status, d.Reason)
	for _, secret := range []string{curKey, string(d.Write.Data[KeyCurrent])} {
		if strings.Contains(status, secret) {
			t.Fatalf("status or reason reveals a key: %s", status)
		}
	}
	if d.Status.PreviousFingerprint != Fingerprint(curKey) || d.Status.PreviousExpiresAt != t0.Add(time.Hour+time.Minute) {
		t.Fatalf("status = %+v", d.Status)
	}
}
