/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Defaults: USDG on X Layer, the pair OKX's facilitator settles.
const (
	DefaultNetwork        = "eip155:196"
	DefaultAssetAddress   = "0x4ae46a509f6b1d9056937ba4500cb143933d2dc8"
	DefaultAssetDecimals  = 6
	DefaultAssetSymbol    = "USDG"
	DefaultEIP712Name     = "Global Dollar"
	DefaultEIP712Version  = "1"
	DefaultLedgerSchema   = "public"
	DefaultLedgerTable    = "x402_payments"
	DefaultGatewayPort    = 8080
	DefaultMaxTimeoutSecs = 60
)

// Upstream is the HTTP service behind the gateway. Set exactly one of url and service.
// +kubebuilder:validation:XValidation:rule="has(self.url) != has(self.service)",message="set exactly one of upstream.url and upstream.service"
type Upstream struct {
	// url of the upstream, http or https, for example `http://weather.default.svc:8080`.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https') && url(self).getHostname() != ''",message="upstream.url must be an absolute http or https URL"
	URL string `json:"url,omitempty"`

	// service is a Service in the same namespace.
	// +optional
	Service *UpstreamService `json:"service,omitempty"`
}

// UpstreamService is a Service in the route's namespace.
type UpstreamService struct {
	// name of the Service.
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// port of the Service.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// scheme used to reach it. Defaults to http.
	// +optional
	// +kubebuilder:validation:Enum=http;https
	Scheme string `json:"scheme,omitempty"`
}

// SettleTiming says when the payment is settled relative to the upstream call.
// +kubebuilder:validation:Enum=afterUpstream;beforeUpstream
type SettleTiming string

const (
	// SettleAfterUpstream buffers the upstream response and settles only if its status is below
	// 400, so payers never pay for a failed call. The default for GET and HEAD requests.
	SettleAfterUpstream SettleTiming = "afterUpstream"
	// SettleBeforeUpstream settles first and then streams the upstream response: for streaming
	// or costly upstreams. The default for every method but GET and HEAD.
	SettleBeforeUpstream SettleTiming = "beforeUpstream"
)

// PricedRoute is a path that costs a fixed price per request.
// +kubebuilder:validation:XValidation:rule="!self.price.matches('^0*\\\\.?0*$')",message="price must be greater than zero"
// +kubebuilder:validation:XValidation:rule="!has(self.replayWindow) || !has(self.settle) || self.settle != 'beforeUpstream'",message="replayWindow needs a buffered route: settle beforeUpstream streams the response"
// +kubebuilder:validation:XValidation:rule="!has(self.replayWindow) || !has(self.method) || self.method in ['GET', 'HEAD']",message="replayWindow applies to GET and HEAD only"
type PricedRoute struct {
	// path to charge for: an exact path (`/api/weather`) or a prefix ending in `/*`
	// (`/api/reports/*`). The gateway matches requests in canonical form (repeated slashes
	// merged, `.` and `..` resolved, `;params` removed, unreserved characters unescaped), so the
	// path must be canonical itself: no `//`, `.` or `..` segments, `;`, malformed or lower-case
	// `%` escapes, escapes of unreserved characters, or encoded `/`, `\` or control characters.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9._~!$&'()+,;=:@%/-]*(/\*)?$`
	// +kubebuilder:validation:XValidation:rule="!self.contains('//') && !self.matches('/[.][.]?(/|$)')",message="path must not contain empty, . or .. segments (//, /./, /../): requests are matched after these are resolved"
	// +kubebuilder:validation:XValidation:rule="!self.contains(';')",message="path must not contain ; (path parameters are removed from requests before matching)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('%([^0-9A-F]|.[^0-9A-F]|.?$)')",message="path escapes must be % and two upper-case hex digits"
	// +kubebuilder:validation:XValidation:rule="!self.matches('%(2[DE]|3[0-9]|[46][1-9A-F]|5[0-9AF]|7[0-9AE])')",message="path must not percent-encode unreserved characters (A-Z a-z 0-9 - . _ ~): write them as they are"
	// +kubebuilder:validation:XValidation:rule="!self.matches('%(2F|5C|[01][0-9A-F]|7F)')",message="path must not encode a slash, a backslash or a control character"
	Path string `json:"path"`

	// method restricts the price to one HTTP method. Empty means any method.
	// +optional
	// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;PATCH;DELETE
	Method string `json:"method,omitempty"`

	// price per request in token units as a decimal string, for example `0.01` (USDG has 6
	// decimals, so at most 6 fractional digits).
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]*)(\.[0-9]+)?$`
	Price string `json:"price"`

	// description shown to payers in the 402 challenge.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Description string `json:"description,omitempty"`

	// mimeType of the paid response, shown in the 402 challenge.
	// +optional
	// +kubebuilder:validation:MaxLength=127
	MimeType string `json:"mimeType,omitempty"`

	// settle is `afterUpstream` or `beforeUpstream`. Unset, GET and HEAD requests settle after
	// the upstream answered (a failed call is not charged) and every other method settles
	// before the upstream is called: a non-idempotent request must not take effect for a
	// payment that then fails to settle.
	// +optional
	Settle SettleTiming `json:"settle,omitempty"`

	// replayWindow lets a payer whose response was lost repeat the very same request (method,
	// path, query and body) within this window and get the stored response again, without a
	// second upstream call. Unset or 0 (the default): a payment buys exactly one response, and
	// a replay gets 402 with the receipt of the settled transaction. At most 5m; GET and HEAD
	// requests on afterUpstream routes only. Stored responses live in the gateway's memory
	// (bounded), so a retry that reaches another replica gets the 402.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('5m')",message="replayWindow must be between 0s and 5m"
	ReplayWindow *metav1.Duration `json:"replayWindow,omitempty"`
	// caseSensitive makes path match only requests that spell it in the same case. By default
	// (false) `/Reports/x` is priced like `/reports/x`, as case-insensitive upstreams (Express,
	// many Windows servers) serve them as one resource. Set it only when the upstream is
	// case-sensitive too, or other spellings reach the content unpaid.
	// +optional
	CaseSensitive bool `json:"caseSensitive,omitempty"`

	// trailingSlash: `Equivalent` (empty, the default) prices `/a/` like `/a` (and `/a` like
	// `/a/*`), as most upstreams serve them as one resource; `Distinct` matches the path only as
	// written.
	// +optional
	TrailingSlash TrailingSlashPolicy `json:"trailingSlash,omitempty"`
}

// TrailingSlashPolicy says whether a trailing slash changes the resource a path names.
// +kubebuilder:validation:Enum=Equivalent;Distinct
type TrailingSlashPolicy string

const (
	// TrailingSlashEquivalent prices `/a/` like `/a`. The default.
	TrailingSlashEquivalent TrailingSlashPolicy = "Equivalent"
	// TrailingSlashDistinct prices a path only as written.
	TrailingSlashDistinct TrailingSlashPolicy = "Distinct"
)

// EIP712Domain is the token's EIP-712 signing domain. It must reproduce the token's
// DOMAIN_SEPARATOR() on chain; the operator checks this when it can reach an RPC endpoint.
type EIP712Domain struct {
	// name of the domain. USDG on X Layer uses `Global Dollar`.
	// +optional
	// +kubebuilder:default="Global Dollar"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name,omitempty"`

	// version of the domain. USDG on X Layer uses `1`.
	// +optional
	// +kubebuilder:default="1"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Version string `json:"version,omitempty"`
}

// Asset is the EIP-3009 token payers pay with. The defaults describe USDG on X Layer.
type Asset struct {
	// address of the token contract.
	// +optional
	// +kubebuilder:default="0x4ae46a509f6b1d9056937ba4500cb143933d2dc8"
	// +kubebuilder:validation:Pattern=`^0x[0-9a-fA-F]{40}$`
	// +kubebuilder:validation:XValidation:rule="self.lowerAscii() == oldSelf.lowerAscii()",message="asset.address is immutable: settled totals would mix tokens; create a new PaymentRoute"
	Address string `json:"address,omitempty"`

	// decimals of the token: a price of 1 is 10^decimals atomic units.
	// +optional
	// +kubebuilder:default=6
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=36
	Decimals int32 `json:"decimals,omitempty"`

	// symbol shown next to totals.
	// +optional
	// +kubebuilder:default="USDG"
	// +kubebuilder:validation:MaxLength=16
	Symbol string `json:"symbol,omitempty"`

	// eip712 is the token's signing domain.
	// +optional
	// +kubebuilder:default={}
	EIP712 EIP712Domain `json:"eip712,omitempty"`
}

// Facilitator verifies and settles payments. Set exactly one member.
// +kubebuilder:validation:XValidation:rule="[has(self.okx), has(self.http), has(self.onchain), has(self.mock)].filter(x, x).size() == 1",message="set exactly one facilitator: okx, http, onchain or mock"
type Facilitator struct {
	// okx uses OKX's x402 facilitator API.
	// +optional
	OKX *OKXFacilitator `json:"okx,omitempty"`

	// http uses any facilitator that speaks the standard x402 HTTP API (/verify, /settle, /supported).
	// +optional
	HTTP *HTTPFacilitator `json:"http,omitempty"`

	// onchain settles directly on chain from a relayer key: no third party. The relayer pays gas;
	// payers pay none.
	// +optional
	Onchain *OnchainFacilitator `json:"onchain,omitempty"`

	// mock accepts correctly signed payments without moving funds. The manager refuses it unless
	// started with --allow-mock-facilitator; its payments are kept out of settled totals.
	// +optional
	Mock *MockFacilitator `json:"mock,omitempty"`
}

// OKXAPIVersion picks the generation of OKX's facilitator API.
// +kubebuilder:validation:Enum=v2;legacy
type OKXAPIVersion string

const (
	// OKXAPIv2 is /api/v6/pay/x402 with x402 version 2 bodies. The default.
	OKXAPIv2 OKXAPIVersion = "v2"
	// OKXAPILegacy is /api/v6/x402 with version 1 bodies and chainIndex.
	OKXAPILegacy OKXAPIVersion = "legacy"
)

// OKXFacilitator is OKX's hosted x402 facilitator.
type OKXFacilitator struct {
	// credentialsSecretRef names a Secret with the keys `apiKey`, `secretKey` and `passphrase`
	// of an Onchain OS developer-portal API key.
	CredentialsSecretRef LocalSecretReference `json:"credentialsSecretRef"`

	// baseURL of the API. Defaults to OKX's production endpoint.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="okx.baseURL must be an absolute http or https URL"
	BaseURL string `json:"baseURL,omitempty"`

	// apiVersion is `v2` (default) or `legacy`.
	// +optional
	// +kubebuilder:default=v2
	APIVersion OKXAPIVersion `json:"apiVersion,omitempty"`

	// syncSettle asks OKX to wait for the transaction receipt before answering settle.
	// Defaults to true.
	// +optional
	// +kubebuilder:default=true
	SyncSettle *bool `json:"syncSettle,omitempty"`

	// rpcURL of a node of the route's network. The gateway uses it to resolve settlements whose
	// outcome it did not learn (OKX's status answers are confirmed on chain, and the chain is
	// asked when OKX cannot answer); the operator uses it to check the token's EIP-712 domain.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https', 'ws', 'wss']",message="okx.rpcURL must be an absolute http(s) or ws(s) URL"
	RPCURL string `json:"rpcURL"`
}

// OKX credential keys expected in the credentials Secret.
const (
	OKXAPIKeyKey     = "apiKey"
	OKXSecretKeyKey  = "secretKey"
	OKXPassphraseKey = "passphrase"
)

// HTTPFacilitator is a standard x402 facilitator reached over HTTP.
type HTTPFacilitator struct {
	// url of the facilitator; /verify, /settle and /supported are appended.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="http.url must be an absolute http or https URL"
	URL string `json:"url"`

	// headersSecretRef names a Secret whose keys and values are sent as request headers (for
	// example `Authorization`).
	// +optional
	HeadersSecretRef *LocalSecretReference `json:"headersSecretRef,omitempty"`

	// rpcURL of a node of the route's network. The standard x402 API has no settlement status
	// call, so the gateway resolves settlements whose outcome it did not learn on chain.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https', 'ws', 'wss']",message="http.rpcURL must be an absolute http(s) or ws(s) URL"
	RPCURL string `json:"rpcURL"`
}

// OnchainFacilitator settles with transferWithAuthorization sent from a relayer account.
type OnchainFacilitator struct {
	// rpcURL of a node of the route's network.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https', 'ws', 'wss']",message="onchain.rpcURL must be an absolute http(s) or ws(s) URL"
	RPCURL string `json:"rpcURL"`

	// relayerKeySecretRef names the Secret key holding the relayer's hex private key. The key
	// defaults to `privateKey`. The relayer needs native gas tokens, not the asset.
	RelayerKeySecretRef SecretKeySelector `json:"relayerKeySecretRef"`

	// receiptTimeout bounds the wait for a settlement's receipt; an unconfirmed settlement is
	// recorded as pending and resolved later. Defaults to 30s.
	// +optional
	// +kubebuilder:default="30s"
	ReceiptTimeout *metav1.Duration `json:"receiptTimeout,omitempty"`
}

// DefaultRelayerKeySecretKey is the key read from the relayer Secret when none is given.
const DefaultRelayerKeySecretKey = "privateKey"

// MockFacilitator checks signatures locally and pretends to settle. For demos and tests only.
type MockFacilitator struct{}

// LedgerDatabase is where every payment is recorded, before settle is called. Settled, pending
// and failed payments are announced with pg_notify on the table's channel (the operator updates
// totals from it); when the database has InsForge's realtime schema, settled payments are also
// published with realtime.publish to the channel named after the table (`x402_payments`).
type LedgerDatabase struct {
	DatabaseConnection `json:",inline"`

	// gatewayConnectionSecretRef names the Secret key holding the connection URL the gateway pods
	// use, for a role that holds only the ledger's privileges (no DDL; docs/security.md gives the
	// GRANT statements). Unset, the gateways use connectionSecretRef, the operator's role, which
	// also migrates the ledger schema. The key defaults to `uri`.
	// +optional
	GatewayConnectionSecretRef *SecretKeySelector `json:"gatewayConnectionSecretRef,omitempty"`

	// schema of the payments table. Defaults to `public`.
	// +optional
	// +kubebuilder:default=public
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="database.schema is immutable: changing it would orphan recorded payments"
	Schema string `json:"schema,omitempty"`

	// table of payments, compatible with InsForge's `x402_payments` guide table. Defaults to `x402_payments`.
	// +optional
	// +kubebuilder:default=x402_payments
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="database.table is immutable: changing it would orphan recorded payments"
	Table string `json:"table,omitempty"`
}

// ManagedPods shapes a Deployment the operator runs (the x402 gateway, the token exchange): its
// replicas, image, resources, placement and pod metadata, and the Service in front of it.
type ManagedPods struct {
	// replicas of the Deployment. Unset, the operator leaves the count to whoever scales the
	// Deployment (a HorizontalPodAutoscaler, kubectl scale), and a new Deployment starts with 1.
	// Its PodDisruptionBudget lets one pod at a time be evicted, whatever the count.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Replicas *int32 `json:"replicas,omitempty"`

	// image overrides the image (by default the manager's own image, which holds /gateway and /exchange).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// resources of the container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// imagePullSecrets of the pods. Unset, the manager's (--gateway-image-pull-secrets;
	// the Helm chart passes its own imagePullSecrets).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// nodeSelector of the pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations of the pods.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// affinity of the pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// priorityClassName of the pods.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// podLabels are added to the pods' labels; they may not set the labels the operator
	// selects its pods by (app.kubernetes.io/name, app.kubernetes.io/instance,
	// app.kubernetes.io/managed-by).
	// +optional
	// +kubebuilder:validation:XValidation:rule="!('app.kubernetes.io/name' in self) && !('app.kubernetes.io/instance' in self) && !('app.kubernetes.io/managed-by' in self)",message="podLabels may not set app.kubernetes.io/name, app.kubernetes.io/instance or app.kubernetes.io/managed-by: the operator selects its pods by them"
	PodLabels map[string]string `json:"podLabels,omitempty"`

	// podAnnotations are added to the pods' annotations.
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`

	// service in front of the pods.
	// +optional
	// +kubebuilder:default={}
	Service GatewayService `json:"service,omitempty"`
}

// UnpricedPolicy says what the gateway does with a path that no route prices.
// +kubebuilder:validation:Enum=proxy;reject
type UnpricedPolicy string

const (
	// UnpricedProxy forwards unpriced paths untouched.
	UnpricedProxy UnpricedPolicy = "proxy"
	// UnpricedReject answers unpriced paths with 404.
	UnpricedReject UnpricedPolicy = "reject"
)

// GatewayService is the Service in front of the gateway pods.
type GatewayService struct {
	// type of the Service. Defaults to ClusterIP.
	// +optional
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	Type corev1.ServiceType `json:"type,omitempty"`

	// port the Service exposes. Defaults to 8080.
	// +optional
	// +kubebuilder:default=8080
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
}

// Gateway shapes the managed x402 gateway Deployment.
type Gateway struct {
	ManagedPods `json:",inline"`

	// unpricedPaths: `proxy` (default) forwards paths no route prices; `reject` answers 404.
	// +optional
	// +kubebuilder:default=proxy
	UnpricedPaths UnpricedPolicy `json:"unpricedPaths,omitempty"`

	// payerHeader is the request header that tells the upstream who paid. Defaults to
	// `X-Payment-Payer`.
	// +optional
	// +kubebuilder:default=X-Payment-Payer
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9-]{1,64}$`
	PayerHeader string `json:"payerHeader,omitempty"`

	// trustForwarded makes the gateway believe the X-Forwarded-For, -Host, -Proto and -Prefix
	// headers a request arrives with: they then shape the resource URL of the payment challenge
	// and are passed on to the upstream. Defaults to false: any client can send these headers,
	// so the gateway ignores them and sets its own. Turn it on only when every request reaches
	// the gateway through a proxy (an ingress controller, a load balancer) that overwrites them,
	// so that challenges name the public URL.
	// +optional
	// +kubebuilder:default=false
	TrustForwarded *bool `json:"trustForwarded,omitempty"`

	// upstreamTimeout bounds one upstream call. Defaults to 30s.
	// +optional
	// +kubebuilder:default="30s"
	UpstreamTimeout *metav1.Duration `json:"upstreamTimeout,omitempty"`

	// maxResponseBytes caps the buffered upstream response on afterUpstream routes. Defaults to 8 MiB.
	// +optional
	// +kubebuilder:default=8388608
	// +kubebuilder:validation:Minimum=1024
	MaxResponseBytes int64 `json:"maxResponseBytes,omitempty"`
}

// PaymentRouteSpec is the desired state of a PaymentRoute.
// +kubebuilder:validation:XValidation:rule="self.routes.all(r, !r.price.contains('.') || size(r.price.split('.')[1]) <= self.asset.decimals)",message="a route's price has more fractional digits than the asset's decimals"
// +kubebuilder:validation:XValidation:rule="self.routes.all(r, self.routes.exists_one(o, o.path == r.path && (has(o.method) ? o.method : 'ANY') == (has(r.method) ? r.method : 'ANY')))",message="routes must not repeat the same path and method"
type PaymentRouteSpec struct {
	// upstream is the HTTP service the gateway forwards paid requests to.
	Upstream Upstream `json:"upstream"`

	// routes are the priced paths. The most specific path wins.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Routes []PricedRoute `json:"routes"`

	// network is the CAIP-2 chain id. Defaults to `eip155:196` (X Layer). Immutable, so that
	// settled totals never mix chains.
	// +optional
	// +kubebuilder:default="eip155:196"
	// +kubebuilder:validation:Pattern=`^eip155:[1-9][0-9]{0,17}$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="network is immutable: settled totals would mix chains; create a new PaymentRoute"
	Network string `json:"network,omitempty"`

	// asset is the token payers pay with. Defaults to USDG on X Layer. Its address is immutable,
	// so that settled totals never mix tokens.
	// +optional
	// +kubebuilder:default={}
	Asset Asset `json:"asset,omitempty"`

	// payTo is the address that receives payments.
	// +kubebuilder:validation:Pattern=`^0x[0-9a-fA-F]{40}$`
	// +kubebuilder:validation:XValidation:rule="self != '0x0000000000000000000000000000000000000000'",message="payTo must not be the zero address"
	PayTo string `json:"payTo"`

	// maxTimeoutSeconds is how long a payer's signed authorization must stay valid. Defaults to 60.
	// +optional
	// +kubebuilder:default=60
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=86400
	MaxTimeoutSeconds int32 `json:"maxTimeoutSeconds,omitempty"`

	// facilitator verifies and settles payments.
	Facilitator Facilitator `json:"facilitator"`

	// database holds the payments ledger.
	Database LedgerDatabase `json:"database"`

	// gateway shapes the managed gateway Deployment and Service.
	// +optional
	// +kubebuilder:default={}
	Gateway Gateway `json:"gateway,omitempty"`
}

// SettledTotals sums settled payments.
type SettledTotals struct {
	// count of settled payments.
	// +optional
	Count int64 `json:"count,omitempty"`
	// amount in atomic units of the asset, as a decimal integer string.
	// +optional
	Amount string `json:"amount,omitempty"`
	// total in token units as a decimal string, for example `12.5`.
	// +optional
	Total string `json:"total,omitempty"`
	// lastTxHash is the transaction of the most recent settlement.
	// +optional
	LastTxHash string `json:"lastTxHash,omitempty"`
	// lastSettledTime is when the most recent settlement was recorded.
	// +optional
	LastSettledTime *metav1.Time `json:"lastSettledTime,omitempty"`
}

// PendingPayments counts settlements whose outcome is not known yet.
type PendingPayments struct {
	// count of payments whose settlement is being resolved.
	// +optional
	Count int64 `json:"count,omitempty"`
}

// GatewayStatus describes the managed gateway.
type GatewayStatus struct {
	// serviceURL is the in-cluster URL of the gateway.
	// +optional
	ServiceURL string `json:"serviceURL,omitempty"`
	// replicas desired.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// readyReplicas of the gateway Deployment.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
}

// PaymentRouteStatus is the observed state of a PaymentRoute.
type PaymentRouteStatus struct {
	// observedGeneration is the spec generation this status describes. It is -1 until the
	// operator first reconciles, so GitOps tools wait for it.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: `Ready` always; `Reconciling` or `Stalled` while true; and
	// `GatewayAvailable`, `LedgerReady`.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// settled sums real settled payments (mock payments are excluded).
	// +optional
	Settled SettledTotals `json:"settled,omitzero"`

	// mockSettled sums payments accepted by the mock facilitator; no funds moved.
	// +optional
	MockSettled *SettledTotals `json:"mockSettled,omitempty"`

	// pending counts settlements whose outcome is still being resolved.
	// +optional
	Pending PendingPayments `json:"pending,omitzero"`

	// gateway describes the managed gateway.
	// +optional
	Gateway GatewayStatus `json:"gateway,omitzero"`

	// lastHandledReconcileAt echoes the `reconcile.fluxcd.io/requestedAt` annotation once handled.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=payroute,categories=insforge
// +kubebuilder:printcolumn:name="Network",type=string,JSONPath=`.spec.network`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Settled",type=string,JSONPath=`.status.settled.total`
// +kubebuilder:printcolumn:name="Asset",type=string,JSONPath=`.spec.asset.symbol`
// +kubebuilder:printcolumn:name="Payments",type=integer,JSONPath=`.status.settled.count`
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=`.status.pending.count`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// PaymentRoute puts an HTTP upstream behind pay-per-use billing with the x402 protocol: the
// operator runs a gateway that answers 402 challenges, verifies and settles payments through a
// facilitator, records each one in PostgreSQL, and reports settled totals here.
type PaymentRoute struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is the desired state.
	// +required
	Spec PaymentRouteSpec `json:"spec"`

	// status is the observed state.
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	Status PaymentRouteStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// PaymentRouteList contains a list of PaymentRoute.
type PaymentRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []PaymentRoute `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &PaymentRoute{}, &PaymentRouteList{})
		return nil
	})
}
