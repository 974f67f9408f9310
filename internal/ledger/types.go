package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Status is the state of a payment row.
type Status string

// Payment states. See the package documentation for the transitions.
const (
	// StatusVerifying: claimed; verify and (for settle-after routes) upstream under way. No settle yet.
	StatusVerifying Status = "verifying"
	// StatusSettling: settle is about to be or is being called. Money may move from here on.
	StatusSettling Status = "settling"
	// StatusPending: settle was called and its outcome is unknown; the resolver will find it.
	StatusPending Status = "pending"
	// StatusSettled: money moved; tx_hash is set.
	StatusSettled Status = "settled"
	// StatusFailed: settle definitively did not move money (the facilitator or chain said so).
	StatusFailed Status = "failed"
	// StatusReleased: given up before settle (upstream or verify failed); no money moved.
	StatusReleased Status = "released"
)

// Reclaimable reports whether a row in this state may be claimed again with the same
// (payer, nonce): only when the previous attempt provably moved no money.
func (s Status) Reclaimable() bool { return s == StatusReleased || s == StatusFailed }

// Intent is what the gateway knows about a payment when it claims it.
type Intent struct {
	// Payer is the paying address (EIP-3009 "from"); stored lower-case.
	Payer string
	// Nonce is the EIP-3009 bytes32 nonce as 0x-prefixed hex; stored lower-case.
	Nonce string
	// Route identifies the PaymentRoute as "namespace/name"; totals are per route.
	Route string
	// Endpoint is the request path (the guide table's endpoint column).
	Endpoint string
	// Resource is the paid resource URL from the payment requirements.
	Resource string
	// Amount is the price in the asset's atomic units, as a decimal integer.
	Amount string
	// Network is the CAIP-2 chain id, e.g. "eip155:196".
	Network string
	// Asset is the token contract address.
	Asset string
	// PayTo is the receiving address.
	PayTo string
	// Chain is the guide table's human chain name (e.g. "xlayer"); defaults to Network.
	Chain string
	// Facilitator is the facilitator kind (okx, http, onchain, mock).
	Facilitator string
	// Mock marks rows settled by the mock facilitator; they are excluded from real totals.
	Mock bool
	// Payload is the signed payment payload, kept so an unknown outcome can be resolved
	// later without the client.
	Payload json.RawMessage
}

// Ticket is the claim's fencing token: MarkSettling, Release, MarkFailed and MarkPending only act
// on the claim attempt they were given, so a gateway (or a spooled outcome, or a resolver verdict)
// whose attempt was reclaimed meanwhile cannot move the row a later attempt owns. A settled
// outcome is the exception: its tx hash is evidence about the authorization itself, so it is
// applied whichever attempt owns the row.
type Ticket struct {
	ID string
	// Seq is the row's claims count when this attempt won it (1 or more). 0 means no ticket: only
	// spool records written before tickets existed carry it, and they are applied unfenced.
	Seq int
}

// ClaimResult is the answer to Claim.
type ClaimResult struct {
	// Won is true when this call owns the payment and should go on to verify and settle.
	// When false, Payment is the existing row and the caller answers from its Status.
	Won bool
	// Ticket fences the claim; valid when Won.
	Ticket Ticket
	// Payment is the row as of the claim, without Payload.
	Payment Payment
}

// Payment is a ledger row.
type Payment struct {
	ID              string
	Payer           string
	Nonce           string
	Route           string
	Endpoint        string
	Resource        string
	Amount          string
	Network         string
	Asset           string
	PayTo           string
	Chain           string
	Facilitator     string
	Mock            bool
	Status          Status
	TxHash          string
	FailureReason   string
	ResponseSummary string
	// Attempts counts resolver attempts on an unknown outcome.
	Attempts int
	// Claims counts claims of this (payer, nonce), including reclaims after release or failure.
	Claims int
	// Served is true once the payer got the paid content for this settled payment: the gateway's
	// own settled outcome is written served, a resolver's is not, and MarkServed serves a
	// resolver-settled payment once. Meaningful only when Status is settled.
	Served    bool
	Payload   json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
	SettledAt time.Time // zero until settled
}

// Outcome is the result of a settle attempt as the gateway, the spool or a Resolver knows it.
type Outcome struct {
	// Status is StatusSettled, StatusFailed or StatusPending (still unknown).
	Status Status `json:"status"`
	// TxHash is the settlement transaction, required for StatusSettled, optional otherwise.
	TxHash string `json:"txHash,omitempty"`
	// Reason explains a failure or why the outcome is unknown.
	Reason string `json:"reason,omitempty"`
	// ResponseSummary is stored with a settled row (the guide table's response_summary).
	ResponseSummary string `json:"responseSummary,omitempty"`
	// Served marks a settled outcome whose payer got the content (the gateway's own settle);
	// ignored for other statuses.
	Served bool `json:"served,omitempty"`
}

// Errors returned by the ledger. Test with errors.Is.
var (
	// ErrNotFound: no row with that id.
	ErrNotFound = errors.New("ledger: payment not found")
	// ErrInvalidTransition: the row is not in a state that allows the requested change.
	ErrInvalidTransition = errors.New("ledger: invalid state transition")
	// ErrTxHashInUse: another payment already holds this tx hash.
	ErrTxHashInUse = errors.New("ledger: tx hash recorded for another payment")
	// ErrInvalidIntent: the intent is malformed (missing payer, bad nonce or amount).
	ErrInvalidIntent = errors.New("ledger: invalid intent")
	// ErrPayerBusy: Claim refused a payment because the same payer has another payment verifying
	// or settling on the same route (at most one in flight per route and payer, across replicas).
	ErrPayerBusy = errors.New("ledger: another payment of this payer is in flight on this route")
)

// TransitionError says which transition was refused and the row's actual state.
type TransitionError struct {
	ID     string
	To     Status
	Actual Status
	// ActualTxHash is the row's tx hash, if any (e.g. settled with another hash).
	ActualTxHash string
	// Stale is true when the change was refused because a later claim attempt owns the row (the
	// ticket's Seq is not the row's claims).
	Stale bool
}

func (e *TransitionError) Error() string {
	if e.Stale {
		return fmt.Sprintf("ledger: payment %s cannot become %s: a later claim attempt owns it (%s)", e.ID, e.To, e.Actual)
	}
	return fmt.Sprintf("ledger: payment %s cannot become %s from %s", e.ID, e.To, e.Actual)
}

// Is makes errors.Is(err, ErrInvalidTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrInvalidTransition }

// permanent reports whether retrying the same change can never succeed.
func permanent(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidTransition) || errors.Is(err, ErrTxHashInUse)
}
