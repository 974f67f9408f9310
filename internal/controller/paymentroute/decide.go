package paymentroute

import (
	"fmt"
	"time"

	"github.com/insforge/integrations-operator/api/v1alpha1"
	"github.com/insforge/integrations-operator/internal/controller/kit"
	gwconfig "github.com/insforge/integrations-operator/internal/gateway/config"
)

// rpcRetry is how soon an unreachable chain node is asked again.
const rpcRetry = 30 * time.Second

// plan is what a reconcile does about a route, decided from its facts alone.
type plan struct {
	// stopGateway deletes a gateway that must not keep running (a refused mock facilitator).
	stopGateway bool
	// stall is a problem only the user can fix; transient is retried with backoff under
	// transientReason. Either means nothing is migrated or applied.
	stall           *kit.StalledError
	transient       error
	transientReason string
	// apiErr is a Kubernetes API failure while gathering: retried without a status write.
	apiErr     error
	retryAfter time.Duration

	// run: migrate the ledger in the database at dsn, apply objects, read the totals.
	run    bool
	config gwconfig.Config
	dsn    string // a secret: never log, event or report it
	// gatewayRole is the gateway pods' own database role, given the ledger's privileges ("": the
	// gateways use the operator's connection).
	gatewayRole string
	objects     *gatewayObjects

	mockAllowed   bool
	domainChecked bool
	domainWarning string
}

// decide turns a route's facts into a plan. The checks run in order and the first that fails
// decides, so a gateway is never (re)deployed with a refused facilitator, an invalid spec,
// missing credentials or a wrong token domain.
func decide(route *v1alpha1.PaymentRoute, f facts, opts Options) plan {
	var p plan
	stall := func(reason, format string, args ...any) plan {
		p.stall, _ = kit.AsStalled(kit.Stall(reason, format, args...))
		return p
	}
	if f.facilitator.mock {
		if !opts.AllowMockFacilitator {
			// A gateway rendered while mock was allowed would keep handing out content for
			// payments that move no funds: take it down.
			p.stopGateway = true
			return stall(v1alpha1.ReasonMockRefused,
				"the mock facilitator moves no funds and is refused: use okx, http or onchain, or start the manager with --allow-mock-facilitator (demos and tests only)")
		}
		p.mockAllowed = true
	}
	if st, ok := kit.AsStalled(f.policyErr); ok {
		p.stall = st
		return p
	}
	if f.configErr != nil {
		return stall(v1alpha1.ReasonInvalidSpec, "%v", f.configErr)
	}
	if err := f.secretsErr; err != nil {
		switch st, ok := kit.AsStalled(err); {
		case ok:
			p.stall = st
		case kit.IsAPIError(err):
			p.apiErr = err
		default:
			p.transient, p.transientReason = err, v1alpha1.ReasonProgressing
		}
		return p
	}
	if f.checked {
		d := f.domain
		switch {
		case d.Mismatch != "":
			return stall(v1alpha1.ReasonDomainMismatch, "%s", d.Mismatch)
		case d.Err != nil && f.facilitator.rpcRequired:
			// The gateway settles over this node: without it the gateway cannot work.
			p.retryAfter = rpcRetry
			p.transient = fmt.Errorf("checking the token's EIP-712 domain: %w", d.Err)
			p.transientReason = v1alpha1.ReasonRPCUnavailable
			return p
		case d.Err != nil:
			// The facilitator settles; the gateway needs the node only to resolve lost
			// outcomes, so warn, do not block it.
			p.retryAfter = rpcRetry
			p.domainWarning = fmt.Sprintf("the token's EIP-712 domain could not be checked: %v", d.Err)
		default:
			p.domainChecked = true
		}
	}
	objs, err := renderGateway(gatewayRender{Route: route, Image: opts.GatewayImage, SecretVersions: f.secrets.versions,
		PullSecrets: opts.GatewayImagePullSecrets})
	if err != nil {
		return stall(v1alpha1.ReasonInvalidSpec, "%v", err)
	}
	if objs.Deployment.Spec.Template.Spec.Containers[0].Image == "" {
		return stall(v1alpha1.ReasonInvalidSpec, "no gateway image: set spec.gateway.image or start the manager with --gateway-image")
	}
	p.run, p.config, p.dsn, p.gatewayRole, p.objects = true, f.config, f.secrets.dsn, f.secrets.gatewayRole, objs
	return p
}
