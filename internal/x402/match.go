package x402

import "strings"

// Match finds the requirement in offered that the client's accepted refers to, comparing scheme,
// network, amount, asset and payTo (addresses case-insensitively, since checksummed and
// lower-case hex name the same account). It returns the server's own copy: that copy, never the
// client's, is what a facilitator must be given. When nothing matches, the error is an
// *InvalidError with reason no_matching_payment_requirements whose message names the field that
// differs from the closest offer.
func Match(accepted PaymentRequirements, offered []PaymentRequirements) (PaymentRequirements, error) {
	if len(offered) == 0 {
		return PaymentRequirements{}, Invalid(ReasonNoMatchingRequirement, "the server offers no payment requirements")
	}
	bestField := ""
	bestScore := -1
	for _, o := range offered {
		field, score := firstDifference(accepted, o)
		if field == "" {
			return o, nil
		}
		if score > bestScore {
			bestField, bestScore = field, score
		}
	}
	return PaymentRequirements{}, Invalid(ReasonNoMatchingRequirement, "accepted %s does not match any offered requirement", bestField)
}

// firstDifference returns the first field that differs and how many fields matched before it.
func firstDifference(a, o PaymentRequirements) (string, int) {
	checks := []struct {
		name string
		eq   bool
	}{
		{"scheme", a.Scheme == o.Scheme},
		{"network", a.Network == o.Network},
		{"asset", strings.EqualFold(a.Asset, o.Asset)},
		{"payTo", strings.EqualFold(a.PayTo, o.PayTo)},
		{"amount", a.Amount == o.Amount},
	}
	for i, c := range checks {
		if !c.eq {
			return c.name, i
		}
	}
	return "", len(checks)
}
