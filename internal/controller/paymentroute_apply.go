package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// applyObject writes a rendered child with server-side apply as managerName and reads the
// server's answer back into obj (generation, status).
//
// Server-side apply rather than CreateOrUpdate: the rendered object is the whole intent and the
// API server merges it field by field, so there is no read-modify-write and no diffing against
// server-side defaults; fields we never render (annotations added by kubectl or other tools,
// defaults) stay with their owners; and applying an unchanged object writes nothing (no new
// resourceVersion, no watch event), so a steady state costs no writes. ForceOwnership takes back
// fields someone edited by hand: the route is the source of truth for what it renders.
func applyObject(ctx context.Context, c client.Client, obj client.Object) error {
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
		client.FieldOwner(managerName), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return fmt.Errorf("reading the applied %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// applyGateway applies the ConfigMap first (pods mount it), then the Deployment, the Service and
// the PodDisruptionBudget.
func applyGateway(ctx context.Context, c client.Client, objs *gatewayObjects) error {
	for _, obj := range []client.Object{objs.ConfigMap, objs.Deployment, objs.Service, objs.PDB} {
		if err := applyObject(ctx, c, obj); err != nil {
			return err
		}
	}
	return nil
}
