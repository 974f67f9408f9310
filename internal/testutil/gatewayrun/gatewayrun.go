// Package gatewayrun runs the x402 gateway of a PaymentRoute as a local process from the
// Deployment and ConfigMap the operator rendered (envtest has no kubelet), and marks that
// Deployment available once the gateway answers /readyz. The e2e suite and `make demo` use it.
//
// Only what a pod network would provide is changed: the listen addresses become free 127.0.0.1
// ports and mount paths become local directories. Command, args, env (Secrets resolved) and the
// rest of the config file are taken as rendered.
package gatewayrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
	gwconfig "github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/podrun"
	"github.com/insforge/integrations-operator/internal/testutil/proc"
)

// Options say which route's gateway to run.
type Options struct {
	Client client.Client
	// Route is the PaymentRoute whose Deployment to run.
	Route client.ObjectKey
	// Binary is the locally built cmd/gateway.
	Binary string
	// Dir holds the materialised volumes.
	Dir string
	// Log receives the gateway's output.
	Log io.Writer
}

// Gateway is a running gateway.
type Gateway struct {
	// URL is the data plane, e.g. http://127.0.0.1:41234.
	URL string
	// AdminURL serves /healthz, /readyz and /metrics.
	AdminURL   string
	Deployment *appsv1.Deployment
	Process    *podrun.Process
}

// Start waits for the operator to render the route's Deployment, runs it, waits until it is
// ready and marks the Deployment available.
func Start(ctx context.Context, o Options) (*Gateway, error) {
	d, err := renderedDeployment(ctx, o.Client, o.Route)
	if err != nil {
		return nil, err
	}
	listen, err := freeport.Addr()
	if err != nil {
		return nil, fmt.Errorf("gatewayrun: %w", err)
	}
	admin, err := freeport.Addr()
	if err != nil {
		return nil, fmt.Errorf("gatewayrun: %w", err)
	}
	edit := func(_ string, data []byte, mounts map[string]string) ([]byte, error) {
		return localConfig(data, listen, admin, mounts)
	}
	p, err := podrun.Start(ctx, podrun.Options{
		Client: o.Client, Deployment: d,
		Binaries: map[string]string{"/gateway": o.Binary},
		Dir:      o.Dir, Edit: edit, Stdout: o.Log, Stderr: o.Log,
	})
	if err != nil {
		return nil, err
	}
	g := &Gateway{URL: "http://" + listen, AdminURL: "http://" + admin, Deployment: d, Process: p}
	if err := g.waitReady(ctx); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	if err := podrun.MarkAvailable(ctx, o.Client, d); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return g, nil
}

// Stop stops the gateway as the kubelet would (SIGTERM, then the grace period).
func (g *Gateway) Stop() error { return g.Process.Stop(60 * time.Second) }

// renderedDeployment finds the Deployment controlled by the route, as `kubectl get deploy
// -l app.kubernetes.io/instance=<route>` would, waiting for the operator to apply it.
func renderedDeployment(ctx context.Context, c client.Client, route client.ObjectKey) (*appsv1.Deployment, error) {
	for {
		var r integrationsv1alpha1.PaymentRoute
		if err := c.Get(ctx, route, &r); err != nil {
			return nil, fmt.Errorf("gatewayrun: reading PaymentRoute %s: %w", route, err)
		}
		var list appsv1.DeploymentList
		if err := c.List(ctx, &list, client.InNamespace(route.Namespace),
			client.MatchingLabels{"app.kubernetes.io/instance": route.Name}); err != nil {
			return nil, fmt.Errorf("gatewayrun: listing Deployments: %w", err)
		}
		for i := range list.Items {
			if owner := metav1.GetControllerOf(&list.Items[i]); owner != nil && owner.UID == r.UID {
				return &list.Items[i], nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("gatewayrun: no Deployment rendered for PaymentRoute %s: %w", route, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// localConfig rewrites the listen addresses and remaps mount paths in the rendered config file;
// every other field stays as rendered (unknown ones included).
func localConfig(data []byte, listen, admin string, mounts map[string]string) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("the rendered %s is not JSON: %w", gwconfig.ConfigMapKey, err)
	}
	m["listen"], m["adminListen"] = listen, admin
	gw, _ := m["gateway"].(map[string]any)
	if gw == nil {
		return nil, errors.New("the rendered config has no gateway section")
	}
	if dir, ok := gw["spoolDir"].(string); ok {
		gw["spoolDir"] = podrun.Remap(dir, mounts)
	}
	return json.MarshalIndent(m, "", "  ")
}

// waitReady polls /readyz until it answers 200 or the process exits.
func (g *Gateway) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	switch err := g.Process.WaitReady(ctx, 100*time.Millisecond, proc.HTTPReady(g.AdminURL+gwconfig.PathReadyz)); {
	case errors.Is(err, proc.ErrExited):
		return fmt.Errorf("gatewayrun: the gateway exited during start-up: %v", g.Process.Cmd.ProcessState)
	case err != nil:
		return fmt.Errorf("gatewayrun: the gateway's %s did not answer 200: %w", gwconfig.PathReadyz, err)
	}
	return nil
}
