// Package kit is the machinery every reconciler of this operator shares: how a problem is
// classified (stalled, retried, or a Kubernetes API error), how status is written and messages
// are bounded, how events are recorded, how Secrets referenced by a resource trigger its
// reconcile, and how a managed workload (ConfigMap, Deployment, Service, PodDisruptionBudget) is
// hardened, applied and checked. A kind's package decides what to do; kit does it the same way
// for every kind.
package kit
