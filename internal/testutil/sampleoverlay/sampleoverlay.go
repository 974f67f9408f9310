// Package sampleoverlay adapts the samples in config/samples/ to a local environment with a
// kustomize overlay, so that the e2e suite and `make demo` apply the samples users read, not
// copies: the overlay references the sample files and patches only what differs locally
// (namespace, RPC URL, token address, network, payTo, upstream).
package sampleoverlay

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Op is one JSON6902 operation.
type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Patch applies Ops to the object of Kind and Name.
type Patch struct {
	Kind, Name string
	Ops        []Op
}

// Overlay is a kustomization over some sample files.
type Overlay struct {
	// SamplesDir is config/samples of the repository.
	SamplesDir string
	// Namespace is set on every object.
	Namespace string
	// Samples are file names in SamplesDir.
	Samples []string
	Patches []Patch
}

// Build writes the overlay into dir (which must be empty or new) and returns what `kustomize
// build` renders from it. The samples live outside dir, hence LoadRestrictionsNone.
func (o Overlay) Build(ctx context.Context, kustomize, dir string) ([]byte, error) {
	if _, err := os.Stat(kustomize); err != nil {
		return nil, fmt.Errorf("sampleoverlay: no kustomize at %s: run `make kustomize`", kustomize)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sampleoverlay: creating %s: %w", dir, err)
	}
	k := map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
		"namespace":  o.Namespace,
	}
	var resources []string
	for _, s := range o.Samples {
		rel, err := filepath.Rel(dir, filepath.Join(o.SamplesDir, s))
		if err != nil {
			return nil, fmt.Errorf("sampleoverlay: locating %s: %w", s, err)
		}
		resources = append(resources, rel)
	}
	k["resources"] = resources
	var patches []map[string]any
	for _, p := range o.Patches {
		ops, err := json.Marshal(p.Ops)
		if err != nil {
			return nil, fmt.Errorf("sampleoverlay: encoding the patch of %s/%s: %w", p.Kind, p.Name, err)
		}
		patches = append(patches, map[string]any{
			"target": map[string]string{"kind": p.Kind, "name": p.Name},
			"patch":  string(ops),
		})
	}
	if len(patches) > 0 {
		k["patches"] = patches
	}
	// JSON is YAML, and encoding/json needs no extra dependency.
	raw, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sampleoverlay: encoding the kustomization: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), raw, 0o644); err != nil {
		return nil, fmt.Errorf("sampleoverlay: writing the kustomization: %w", err)
	}
	cmd := exec.CommandContext(ctx, kustomize, "build", "--load-restrictor", "LoadRestrictionsNone", dir)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		return nil, fmt.Errorf("sampleoverlay: kustomize build %s: %w\n%s", dir, err, stderr)
	}
	return out, nil
}

// Local describes the local stand-ins for what the samples point at.
type Local struct {
	// Upstream is the URL of the service behind the gateway.
	Upstream string
	// RPCURL, Network and Token point the route at the dev chain and its test token.
	RPCURL, Network, Token string
	// PayTo receives the payments.
	PayTo string
}

// OnchainRoute patches the reports-onchain sample: upstream, network, token, RPC URL and payTo.
// The token must be deployed with the sample's EIP-712 name and version.
func OnchainRoute(name string, l Local) Patch {
	return Patch{Kind: "PaymentRoute", Name: name, Ops: []Op{
		{Op: "replace", Path: "/spec/upstream", Value: map[string]string{"url": l.Upstream}},
		{Op: "replace", Path: "/spec/network", Value: l.Network},
		{Op: "replace", Path: "/spec/asset/address", Value: l.Token},
		{Op: "replace", Path: "/spec/facilitator/onchain/rpcURL", Value: l.RPCURL},
		{Op: "replace", Path: "/spec/payTo", Value: l.PayTo},
	}}
}

// OKXRoute patches the weather-okx sample: upstream, network, the asset (the sample relies on
// the USDG default), the OKX API base URL and the dev chain's RPC URL (the gateway's
// resolver and the operator's domain check use it).
func OKXRoute(name, okxBaseURL string, l Local, asset map[string]any) Patch {
	return Patch{Kind: "PaymentRoute", Name: name, Ops: []Op{
		{Op: "replace", Path: "/spec/upstream", Value: map[string]string{"url": l.Upstream}},
		{Op: "add", Path: "/spec/network", Value: l.Network},
		{Op: "add", Path: "/spec/asset", Value: asset},
		{Op: "add", Path: "/spec/facilitator/okx/baseURL", Value: okxBaseURL},
		{Op: "add", Path: "/spec/facilitator/okx/rpcURL", Value: l.RPCURL},
		{Op: "replace", Path: "/spec/payTo", Value: l.PayTo},
	}}
}
