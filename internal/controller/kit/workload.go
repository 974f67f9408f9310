package kit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
)

// Workload is what the operator runs for a resource: a ConfigMap with its config, a
// Deployment, a Service and a PodDisruptionBudget, all named alike and owned by the resource.
type Workload struct {
	ConfigMap  *corev1.ConfigMap
	Deployment *appsv1.Deployment
	Service    *corev1.Service
	PDB        *policyv1.PodDisruptionBudget
}

// Objects lists the workload in apply order: the ConfigMap first (pods mount it).
func (w *Workload) Objects() []client.Object {
	return []client.Object{w.ConfigMap, w.Deployment, w.Service, w.PDB}
}

// Digest digests every object, so any change to what would be applied shows.
func (w *Workload) Digest() (string, error) {
	raw, err := json.Marshal(w.Objects())
	if err != nil {
		return "", fmt.Errorf("digesting the workload: %w", err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// ChildName names a resource's child object: owner+suffix when it fits 63 characters (a Service
// name, DNS-1035), else shortened with a hash of owner, so that distinct owners keep distinct
// names.
func ChildName(owner, suffix string) string {
	name := owner + suffix
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(owner))
	keep := 63 - len(suffix) - 9
	return strings.TrimRight(owner[:keep], "-.") + "-" + hex.EncodeToString(sum[:4]) + suffix
}

// PodSecurity is the hardened pod security context of every managed workload: non-root as uid,
// the runtime's default seccomp profile.
func PodSecurity(uid int64) *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To(uid),
		RunAsGroup:     ptr.To(uid),
		FSGroup:        ptr.To(uid),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// ContainerSecurity is the hardened container security context: no privilege, no capability, a
// read-only root file system.
func ContainerSecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Privileged:               ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// Replicas is a Deployment's desired replica count: the applied spec's, or 1 when unset (the
// count then belongs to whoever scales it).
func Replicas(d *appsv1.Deployment) int32 { return ptr.Deref(d.Spec.Replicas, 1) }

// DeploymentAvailable reads availability from a Deployment's status: the current generation
// observed, every replica updated and available. The message says which is missing.
func DeploymentAvailable(d *appsv1.Deployment) (bool, string) {
	if d == nil {
		return false, "the Deployment is not applied yet"
	}
	want := Replicas(d)
	s := d.Status
	switch {
	case s.ObservedGeneration < d.Generation:
		return false, fmt.Sprintf("Deployment %s: generation %d not observed yet", d.Name, d.Generation)
	case s.UpdatedReplicas < want:
		return false, fmt.Sprintf("Deployment %s: %d of %d replicas updated", d.Name, s.UpdatedReplicas, want)
	case s.AvailableReplicas < want:
		return false, fmt.Sprintf("Deployment %s: %d of %d replicas available", d.Name, s.AvailableReplicas, want)
	}
	return true, fmt.Sprintf("Deployment %s: %d of %d replicas available", d.Name, s.AvailableReplicas, want)
}

// Apply writes a rendered object with server-side apply as ManagerName and reads the server's
// answer back into obj (generation, status, resourceVersion).
//
// Server-side apply rather than CreateOrUpdate: the rendered object is the whole intent and the
// API server merges it field by field, so there is no read-modify-write and no diffing against
// server-side defaults; fields we never render (annotations added by kubectl or other tools,
// defaults) stay with their owners; and applying an unchanged object writes nothing (no new
// resourceVersion, no watch event), so a steady state costs no writes. ForceOwnership takes back
// fields someone edited by hand: the resource is the source of truth for what it renders.
func Apply(ctx context.Context, c client.Client, obj client.Object) error {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("converting %T %s for apply: %w", obj, obj.GetName(), err)
	}
	u := &unstructured.Unstructured{Object: raw}
	// A typed object always carries these; applying them would claim ownership of nothing useful.
	delete(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(ManagerName), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return fmt.Errorf("reading the applied %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// AppliedRecords remembers, per owner, what was last applied: a digest of the rendered objects
// and the resourceVersion and generation of each as the API server answered. While the digest is
// the same and the live children are as applied, the apply is skipped: a burst of events
// triggers many reconciles, and each would otherwise send a no-op apply per child. A child is as
// applied when it still carries that resourceVersion, or, for kinds with a generation
// (Deployments, PodDisruptionBudgets), when its generation is the same and it still carries every
// rendered label and annotation: what changed was its status (the Deployment controller writes
// one for every rollout and pod that comes and goes) or metadata the operator does not render.
// Any other edit of a child is taken back on the reconcile its watch event triggers. Safe for
// concurrent use.
type AppliedRecords struct {
	mu      sync.Mutex
	records map[types.NamespacedName]appliedRecord
}

type appliedRecord struct {
	digest      string
	versions    []string // resourceVersions of the objects, in order
	generations []int64
}

// Unchanged reports whether owner's children (objs, as rendered now, with that digest) are
// exactly as last applied. Read errors count as "changed": the apply then decides.
func (a *AppliedRecords) Unchanged(ctx context.Context, c client.Reader, owner types.NamespacedName, digest string, objs []client.Object) bool {
	a.mu.Lock()
	rec, ok := a.records[owner]
	a.mu.Unlock()
	if !ok || rec.digest != digest || len(rec.versions) != len(objs) {
		return false
	}
	for i, obj := range objs {
		live, ok := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
		if !ok || c.Get(ctx, client.ObjectKeyFromObject(obj), live) != nil {
			return false
		}
		if live.GetResourceVersion() == rec.versions[i] {
			continue
		}
		if rec.generations[i] == 0 || live.GetGeneration() != rec.generations[i] || !ownedAlike(live, obj) ||
			!carries(live.GetLabels(), obj.GetLabels()) || !carries(live.GetAnnotations(), obj.GetAnnotations()) {
			return false
		}
	}
	return true
}

// ownedAlike reports whether live still has every owner rendered has.
func ownedAlike(live, rendered client.Object) bool {
	for _, want := range rendered.GetOwnerReferences() {
		found := false
		for _, got := range live.GetOwnerReferences() {
			if got.UID == want.UID && ptr.Deref(got.Controller, false) == ptr.Deref(want.Controller, false) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// carries reports whether live holds every key of rendered with the same value.
func carries(live, rendered map[string]string) bool {
	for k, v := range rendered {
		if got, ok := live[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Record remembers the applied objects' versions under digest.
func (a *AppliedRecords) Record(owner types.NamespacedName, digest string, applied []client.Object) {
	rec := appliedRecord{digest: digest, versions: make([]string, len(applied)), generations: make([]int64, len(applied))}
	for i, obj := range applied {
		rec.versions[i], rec.generations[i] = obj.GetResourceVersion(), obj.GetGeneration()
	}
	a.mu.Lock()
	if a.records == nil {
		a.records = map[types.NamespacedName]appliedRecord{}
	}
	a.records[owner] = rec
	a.mu.Unlock()
}

// Forget drops owner's record (the owner was deleted).
func (a *AppliedRecords) Forget(owner types.NamespacedName) {
	a.mu.Lock()
	delete(a.records, owner)
	a.mu.Unlock()
}

// Place sets a managed pod spec's placement and pull Secrets from the resource's ManagedPods:
// the resource's image pull Secrets, else the manager's defaults.
func Place(spec *corev1.PodSpec, m integrationsv1alpha1.ManagedPods, defaultPullSecrets []string) {
	spec.ImagePullSecrets = m.ImagePullSecrets
	if len(spec.ImagePullSecrets) == 0 {
		for _, n := range defaultPullSecrets {
			spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
		}
	}
	spec.NodeSelector = m.NodeSelector
	spec.Tolerations = m.Tolerations
	spec.Affinity = m.Affinity
	spec.PriorityClassName = m.PriorityClassName
}

// Resources are a managed container's resources: the resource's, else def.
func Resources(m integrationsv1alpha1.ManagedPods, def corev1.ResourceRequirements) corev1.ResourceRequirements {
	if m.Resources != nil {
		return *m.Resources.DeepCopy()
	}
	return def
}

// Merged returns base overlaid with over (over wins), or nil when both are empty.
func Merged(base, over map[string]string) map[string]string {
	if len(base)+len(over) == 0 {
		return nil
	}
	out := make(map[string]string, len(base)+len(over))
	maps.Copy(out, base)
	maps.Copy(out, over)
	return out
}

// NoLossRollout is the rollout of every managed Deployment: a new pod up before an old one
// goes, so capacity never drops (a missing replica is a lost payment or a failed sign-in).
func NoLossRollout() appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			MaxSurge:       ptr.To(intstr.FromInt32(1)),
		},
	}
}

// OnePodAtATime is the PodDisruptionBudget of every managed Deployment: one pod may be evicted
// at a time (drains, autoscaler scale-downs), whatever the replica count, so a drain never blocks.
func OnePodAtATime(meta metav1.ObjectMeta, selector map[string]string) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta,
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: selector},
		},
	}
}

// HTTPProbe probes path on the named container port.
func HTTPProbe(path, port string, period int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromString(port), Scheme: corev1.URISchemeHTTP,
		}},
		PeriodSeconds: period, TimeoutSeconds: 2, FailureThreshold: 3,
	}
}
