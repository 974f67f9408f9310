package podrun

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MarkAvailable writes the status a Deployment controller and kubelet would write once every
// replica is up (envtest runs neither), so that controllers watching it see it available.
func MarkAvailable(ctx context.Context, c client.Client, d *appsv1.Deployment) error {
	var cur appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKeyFromObject(d), &cur); err != nil {
		return fmt.Errorf("podrun: reading Deployment %s: %w", d.Name, err)
	}
	n := int32(1)
	if cur.Spec.Replicas != nil {
		n = *cur.Spec.Replicas
	}
	cur.Status = appsv1.DeploymentStatus{
		ObservedGeneration: cur.Generation,
		Replicas:           n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		Conditions: []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentAvailable, Status: "True", Reason: "MinimumReplicasAvailable",
			Message: "marked available by podrun: the container runs as a local process",
		}},
	}
	if err := c.Status().Update(ctx, &cur); err != nil {
		return fmt.Errorf("podrun: updating the status of Deployment %s: %w", d.Name, err)
	}
	return nil
}
