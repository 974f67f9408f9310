package eip3009

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
)

// domainSeparatorSelector is the 4-byte selector of DOMAIN_SEPARATOR().
var domainSeparatorSelector = []byte{0x36, 0x44, 0xe5, 0x15}

// ReadDomainSeparator calls token.DOMAIN_SEPARATOR() at the latest block.
func ReadDomainSeparator(ctx context.Context, caller ethereum.ContractCaller, token common.Address) (common.Hash, error) {
	out, err := caller.CallContract(ctx, ethereum.CallMsg{To: &token, Data: domainSeparatorSelector}, nil)
	if err != nil {
		return common.Hash{}, fmt.Errorf("call DOMAIN_SEPARATOR() on %s: %w", token.Hex(), err)
	}
	if len(out) != 32 {
		return common.Hash{}, fmt.Errorf("DOMAIN_SEPARATOR() on %s returned %d bytes, want 32 (not an EIP-712 token?)", token.Hex(), len(out))
	}
	return common.BytesToHash(out), nil
}

// CheckDomain verifies that the configured domain d reproduces the token's on-chain
// DOMAIN_SEPARATOR(). A mismatch means every payment signed for d would be rejected by the
// token, so a route using d must not be served.
func CheckDomain(ctx context.Context, caller ethereum.ContractCaller, d Domain) error {
	onChain, err := ReadDomainSeparator(ctx, caller, d.VerifyingContract)
	if err != nil {
		return err
	}
	if want := d.Separator(); onChain != want {
		return fmt.Errorf("token %s: DOMAIN_SEPARATOR() is %s but name %q version %q chain %s give %s",
			d.VerifyingContract.Hex(), onChain.Hex(), d.Name, d.Version, d.ChainID, want.Hex())
	}
	return nil
}
