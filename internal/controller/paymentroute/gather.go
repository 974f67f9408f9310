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
