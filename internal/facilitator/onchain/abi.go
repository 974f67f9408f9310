package onchain

import (
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
)

// tokenABI is the part of an EIP-3009 token this facilitator calls and whose events it reads.
// transferWithAuthorization uses the (v, r, s) form defined by ERC-3009, which USDC- and
// USDG-style tokens implement.
const tokenABI = `[
 {"type":"function","name":"transferWithAuthorization","stateMutability":"nonpayable","outputs":[],"inputs":[
  {"name":"from","type":"address"},{"name":"to","type":"address"},{"name":"value","type":"uint256"},
  {"name":"validAfter","type":"uint256"},{"name":"validBefore","type":"uint256"},{"name":"nonce","type":"bytes32"},
  {"name":"v","type":"uint8"},{"name":"r","type":"bytes32"},{"name":"s","type":"bytes32"}]},
 {"type":"function","name":"authorizationState","stateMutability":"view","outputs":[{"name":"","type":"bool"}],"inputs":[
  {"name":"authorizer","type":"address"},{"name":"nonce","type":"bytes32"}]},
 {"type":"function","name":"balanceOf","stateMutability":"view","outputs":[{"name":"","type":"uint256"}],"inputs":[
  {"name":"account","type":"address"}]},
 {"type":"event","name":"AuthorizationUsed","anonymous":false,"inputs":[
  {"name":"authorizer","type":"address","indexed":true},{"name":"nonce","type":"bytes32","indexed":true}]},
 {"type":"event","name":"AuthorizationCanceled","anonymous":false,"inputs":[
  {"name":"authorizer","type":"address","indexed":true},{"name":"nonce","type":"bytes32","indexed":true}]},
 {"type":"event","name":"Transfer","anonymous":false,"inputs":[
  {"name":"from","type":"address","indexed":true},{"name":"to","type":"address","indexed":true},
  {"name":"value","type":"uint256","indexed":false}]}
]`

func parseTokenABI() (abi.ABI, error) {
	a, err := abi.JSON(strings.NewReader(tokenABI))
	if err != nil {
		return abi.ABI{}, fmt.Errorf("parse token ABI: %w", err)
	}
	return a, nil
}
