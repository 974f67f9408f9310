package paymentroute

import (
	"context"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	gwconfig "github.com/insforge/integrations-operator/internal/gateway/config"
	"github.com/insforge/integrations-operator/internal/tokendomain"
)

// facts is what one reconcile read about a route before deciding anything. Reading stops at the
// first problem, in the order decide checks them, so a route with a bad spec never makes the
// operator read its Secrets or dial its chain node.
type facts struct {
	// policyErr is an image or URL the operator's allow-lists refuse (checked first).
	policyErr error
	// config is the rendered gateway config; configErr says why the spec does not render.
	config    gwconfig.Config
	configErr error
	// facilitator is what the route's facilitator kind implies.
	facilitator facilitator
	// secrets are the referenced Secrets; secretsErr is a missing one (stalled) or a read error.
	secrets    routeSecrets
	secretsErr error
	// domain is the token's EIP-712 domain check; checked is false when there is no node.
	domain  tokendomain.Result
	checked bool
}

// gather reads the route's config, Secrets and token domain.
func (r *Reconciler) gather(ctx context.Context, route *v1alpha1.PaymentRoute) facts {
	var f facts
	f.facilitator, _ = facilitatorOf(route.Spec.Facilitator)
	if f.facilitator.mock && !r.AllowMockFacilitator {
		return f // refused before anything else is read
	}
	if f.policyErr = r.checkAllowLists(route); f.policyErr != nil {
		return f // refused before a Secret is read or a node dialled
	}
	if f.config, f.configErr = gatewayConfig(route); f.configErr != nil {
		return f
	}
	if f.secrets, f.secretsErr = readSecrets(ctx, kit.SecretReader{Client: r.Client, Live: r.Live}, route); f.secretsErr != nil {
		return f
	}
	if rpc := f.facilitator.rpcURL; rpc != "" {
		a := f.config.Asset
		f.domain = r.domains.Check(ctx, rpc, tokendomain.Domain{
			Asset: a.Address, Name: a.EIP712Name, Version: a.EIP712Version, Network: f.config.Network,
		})
		f.checked = true
	}
	return f
}

// Reasons for routes the operator's allow-lists refuse.
const (
	reasonImageNotAllowed = v1alpha1.ReasonImageNotAllowed
	reasonURLNotAllowed   = v1alpha1.ReasonURLNotAllowed
)

// checkAllowLists refuses a gateway image override that --gateway-image-allow does not list and
// a URL the route dials (facilitator, OKX base URL, chain node) whose origin --egress-allow does
// not list: whoever edits a route must not choose what runs with its Secrets or where the
// operator and the gateway send requests (and credentials).
func (r *Reconciler) checkAllowLists(route *v1alpha1.PaymentRoute) error {
	if img := route.Spec.Gateway.Image; img != "" && img != r.GatewayImage && !r.GatewayImages.Allows(img) {
		return kit.Stall(reasonImageNotAllowed,
			"spec.gateway.image %q is not allowed: gateways run the manager's image unless the manager's --gateway-image-allow lists the image or its registry path", img)
	}
	f := route.Spec.Facilitator
	var urls [][2]string
	switch {
	case f.HTTP != nil:
		urls = [][2]string{{"spec.facilitator.http.url", f.HTTP.URL}, {"spec.facilitator.http.rpcURL", f.HTTP.RPCURL}}
	case f.OKX != nil:
		urls = [][2]string{{"spec.facilitator.okx.baseURL", f.OKX.BaseURL}, {"spec.facilitator.okx.rpcURL", f.OKX.RPCURL}}
	case f.Onchain != nil:
		urls = [][2]string{{"spec.facilitator.onchain.rpcURL", f.Onchain.RPCURL}}
	}
	for _, u := range urls {
		if u[1] != "" && !r.Egress.Allows(u[1]) {
			return kit.Stall(reasonURLNotAllowed, "%s %q is not allowed: its origin is not in the manager's --egress-allow (%s)",
				u[0], u[1], r.Egress)
		}
	}
	return nil
}
