package attack

import (
	"testing"

	"github.com/insforge/integrations-operator/internal/testutil/gatewayproc"
	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestAttack builds the gateway once and runs every attack group in parallel, each against
// gateway processes of its own configuration. The main gateway's config uses only options
// today's gateway knows, so its answers before and after the hardening can be compared.
func TestAttack(t *testing.T) {
	w := newWorld(t, gatewayproc.Build(t))

	t.Run("main", func(t *testing.T) {
		t.Parallel()
		s := w.newStack(t, stackOpts{route: "shop/main", routes: mainRoutes})
		// First and alone: it counts the bridge's eth_calls.
		t.Run("unfunded payer is verified once", func(t *testing.T) { testNegativeCache(t, w, s) })
		t.Run("paths", func(t *testing.T) { t.Parallel(); testPaths(t, w, s) })
		t.Run("replay", func(t *testing.T) { t.Parallel(); testReplay(t, w, s) })
		t.Run("50 concurrent copies", func(t *testing.T) { t.Parallel(); testConcurrentCopies(t, w, s) })
		t.Run("paid spelling", func(t *testing.T) { t.Parallel(); testPaidSpelling(t, w, s) })
		t.Run("validity", func(t *testing.T) { t.Parallel(); testValidity(t, w, s) })
		t.Run("abuse", func(t *testing.T) { t.Parallel(); testAbuse(t, w, s) })
	})
	t.Run("replay window", func(t *testing.T) { t.Parallel(); testReplayWindow(t, w) })
	t.Run("phantom revenue", func(t *testing.T) { t.Parallel(); testPhantomRevenue(t, w) })
	t.Run("http facilitator", func(t *testing.T) { t.Parallel(); testHTTPFacilitator(t, w) })
	t.Run("per-route resolution", func(t *testing.T) { t.Parallel(); testPerRouteResolution(t, w) })
	t.Run("mock rows after switch", func(t *testing.T) { t.Parallel(); testMockRowsAfterSwitch(t, w) })
	t.Run("transport", func(t *testing.T) { t.Parallel(); testTransport(t, w) })
	t.Run("retention", func(t *testing.T) { t.Parallel(); testRetention(t, w) })
}
