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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The provider sections of an AuthIntegration. Each names the provider's tenant in one or two
// fields, from which the token exchange's issuer and key set URL follow (docs/exchange.md), and,
// for Clerk and Auth0, the API credentials with which the operator configures the provider to
// sign InsForge tokens itself. Only the section of spec.provider may be set.

// ClerkSettings names a Clerk instance.
type ClerkSettings struct {
	// frontendAPI is the instance's Frontend API URL (`https://clerk.example.com` in production,
	// `https://<slug>.clerk.accounts.dev` in development): the issuer of its session tokens.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#]+$`
	FrontendAPI string `json:"frontendAPI,omitempty"`

	// secretKeyRef names the Clerk secret key (`sk_live_…`) with which the operator keeps a JWT
	// template signing InsForge tokens (HS256 with the JWT secret, `role` fixed to
	// `authenticated`). The key defaults to `CLERK_SECRET_KEY`.
	// +optional
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`

	// template shapes the JWT template.
	// +optional
	// +kubebuilder:default={}
	Template ClerkTemplate `json:"template,omitzero"`

	// apiURL is the Backend API's base URL. Defaults to `https://api.clerk.com`; its origin must
	// be allowed by the manager's --egress-allow when that is set.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://[^\s?#]+$`
	APIURL string `json:"apiURL,omitempty"`
}

// ClerkTemplate is the JWT template the operator keeps in Clerk.
type ClerkTemplate struct {
	// name of the template: the app calls `getToken({ template: name })`. Defaults to `insforge`.
	// +optional
	// +kubebuilder:default=insforge
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]{1,64}$`
	Name string `json:"name,omitempty"`

	// lifetime of template tokens. Defaults to 60s (Clerk's default); 30s to 1h.
	// +optional
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('30s') && duration(self) <= duration('1h')",message="template.lifetime must be between 30s and 1h"
	Lifetime *metav1.Duration `json:"lifetime,omitempty"`

	// includeEmail adds the user's primary email address as the `email` claim.
	// +optional
	IncludeEmail bool `json:"includeEmail,omitempty"`
}

// Auth0Settings names an Auth0 tenant.
type Auth0Settings struct {
	// domain of the tenant (`example.eu.auth0.com` or a custom domain), without scheme.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?(:[0-9]{1,5})?$`
	Domain string `json:"domain"`

	// audience is the API identifier the app's access tokens are issued for; the token exchange
	// accepts only tokens carrying it.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Audience string `json:"audience,omitempty"`

	// management lets the operator configure the tenant through the Management API.
	// +optional
	Management *Auth0Management `json:"management,omitempty"`
}

// Auth0SigningMethod chooses how Auth0 signs InsForge tokens.
// +kubebuilder:validation:Enum=ResourceServer;Action
type Auth0SigningMethod string

const (
	// Auth0ResourceServer registers an API that Auth0 signs with HS256 and the JWT secret; apps
	// request access tokens for its identifier. No code runs in the tenant.
	Auth0ResourceServer Auth0SigningMethod = "ResourceServer"
	// Auth0Action deploys a post-login Action that signs an InsForge token into a custom claim.
	Auth0Action Auth0SigningMethod = "Action"
)

// Auth0Management is a machine-to-machine application's credentials and what to configure.
type Auth0Management struct {
	// credentialsSecretRef names a Secret with `AUTH0_CLIENT_ID` and `AUTH0_CLIENT_SECRET` of a
	// machine-to-machine application authorized for the Management API (scopes in
	// docs/providers/auth0.md).
	CredentialsSecretRef LocalSecretReference `json:"credentialsSecretRef"`

	// method: `ResourceServer` (default) or `Action`.
	// +optional
	// +kubebuilder:default=ResourceServer
	Method Auth0SigningMethod `json:"method,omitempty"`

	// identifier of the API (ResourceServer) or audience claim of the minted token (Action).
	// Defaults to `insforge-api`.
	// +optional
	// +kubebuilder:default=insforge-api
	// +kubebuilder:validation:MaxLength=512
	Identifier string `json:"identifier,omitempty"`

	// tokenLifetime of the InsForge tokens Auth0 issues. Defaults to 1h; 1m to 24h.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('24h')",message="tokenLifetime must be between 1m and 24h"
	TokenLifetime *metav1.Duration `json:"tokenLifetime,omitempty"`

	// apiURL overrides the Management API's base URL (`https://<domain>`); its origin must be
	// allowed by the manager's --egress-allow when that is set.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://[^\s?#]+$`
	APIURL string `json:"apiURL,omitempty"`
}

// WorkOSSettings names a WorkOS environment.
type WorkOSSettings struct {
	// clientID of the environment (`client_01…`).
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]{1,128}$`
	ClientID string `json:"clientID"`
}

// KindeSettings names a Kinde business.
type KindeSettings struct {
	// domain of the business (`example.kinde.com` or a custom domain), without scheme.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?(:[0-9]{1,5})?$`
	Domain string `json:"domain"`

	// audience, when the app requests access tokens for a registered API.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Audience string `json:"audience,omitempty"`
}

// StytchEnvironment is a Stytch project's environment.
// +kubebuilder:validation:Enum=test;live
type StytchEnvironment string

// StytchSettings names a Stytch project.
type StytchSettings struct {
	// projectID (`project-test-…` or `project-live-…`).
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]{1,128}$`
	ProjectID string `json:"projectID"`

	// environment: `test` or `live`. Defaults to `live`.
	// +optional
	// +kubebuilder:default=live
	Environment StytchEnvironment `json:"environment,omitempty"`

	// b2b selects the B2B product's session keys.
	// +optional
	B2B bool `json:"b2b,omitempty"`
}

// BetterAuthSettings names a Better Auth app with the jwt() plugin.
type BetterAuthSettings struct {
	// baseURL of the app (its BETTER_AUTH_URL): the issuer and audience of its tokens.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://[^\s?#]+$`
	BaseURL string `json:"baseURL"`

	// basePath of the auth routes. Defaults to `/api/auth`.
	// +optional
	// +kubebuilder:default="/api/auth"
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9/_.-]{0,127}$`
	BasePath string `json:"basePath,omitempty"`
}

// TokenExchange runs the managed token exchange: a Deployment that takes the provider's own
// tokens, verifies them against the provider's published keys and answers with a short-lived
// InsForge token (`sub`, `role: authenticated`, `email`) signed with the JWT secret. Apps then hold
// neither the secret nor signing code.
type TokenExchange struct {
	ManagedPods `json:",inline"`

	// tokenLifetime of the minted tokens; never longer than the provider token's. Defaults to
	// 5m; 30s to 1h.
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('30s') && duration(self) <= duration('1h')",message="exchange.tokenLifetime must be between 30s and 1h"
	TokenLifetime *metav1.Duration `json:"tokenLifetime,omitempty"`

	// allowedOrigins may call the exchange from a browser (CORS): exact origins such as
	// `https://app.example.com`, or `*`.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:Pattern=`^(\*|https?://[^\s/?#]+)$`
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`

	// verification overrides what the provider section implies.
	// +optional
	Verification *TokenVerification `json:"verification,omitempty"`
}

// TokenVerification overrides the preset checks on provider tokens.
type TokenVerification struct {
	// issuers accepted in `iss` (exact match).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=512
	Issuers []string `json:"issuers,omitempty"`

	// jwksURL serves the provider's public keys; its origin must be allowed by the manager's
	// --egress-allow when that is set.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://[^\s?#]+$`
	JWKSURL string `json:"jwksURL,omitempty"`

	// audiences: the token's `aud` must hold one of them.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=512
	Audiences []string `json:"audiences,omitempty"`

	// authorizedParties: a token's `azp`, when present, must be one of them (Clerk advises it).
	// For Clerk it defaults to exchange.allowedOrigins (without `*`).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=512
	AuthorizedParties []string `json:"authorizedParties,omitempty"`

	// algorithms allowed in the token header.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Enum=RS256;RS384;RS512;PS256;PS384;PS512;ES256;ES384;EdDSA
	Algorithms []string `json:"algorithms,omitempty"`

	// emailClaim is copied into the minted token's `email`. Defaults to the provider's.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	EmailClaim string `json:"emailClaim,omitempty"`
}

// InsForgeWorkloads names the workloads that read the JWT secret, so that a rotation completes
// without a human: the operator points the named environment variables at the JWT Secret, rolls
// the workloads, and only once they run the new key switches the exchange and the providers to it.
type InsForgeWorkloads struct {
	// workloads that read the JWT secret at start (InsForge's `insforge` and `postgrest`).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Workloads []InsForgeWorkload `json:"workloads"`
}

// WorkloadKind is a kind of workload the operator can roll.
// +kubebuilder:validation:Enum=Deployment;StatefulSet
type WorkloadKind string

// The workload kinds.
const (
	KindDeployment  WorkloadKind = "Deployment"
	KindStatefulSet WorkloadKind = "StatefulSet"
)

// InsForgeWorkload is one workload reading the JWT secret from environment variables. It must
// carry the label integrations.insforge.dev/operator-access: "true": the operator changes it.
type InsForgeWorkload struct {
	// kind: Deployment or StatefulSet.
	Kind WorkloadKind `json:"kind"`

	// name of the workload in this namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// env are the environment variables that carry the secret (`JWT_SECRET` in `insforge`,
	// `PGRST_JWT_SECRET` in `postgrest`). Defaults to `JWT_SECRET`. Every container that
	// defines one gets it from the JWT Secret.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Env []string `json:"env,omitempty"`
}

// ProviderSyncStatus is what the operator last wrote to the provider (never a key).
type ProviderSyncStatus struct {
	// kind of the object kept: `ClerkJWTTemplate`, `Auth0ResourceServer` or `Auth0Action`.
	Kind string `json:"kind"`
	// id of the object in the provider.
	// +optional
	ID string `json:"id,omitempty"`
	// name of the object.
	// +optional
	Name string `json:"name,omitempty"`
	// keyFingerprint identifies the key the object signs with.
	// +optional
	KeyFingerprint string `json:"keyFingerprint,omitempty"`
	// specHash identifies the rest of what was written.
	// +optional
	SpecHash string `json:"specHash,omitempty"`
	// observedVersion is the provider's version marker of the object as last written (Clerk's
	// updated_at, Auth0's deployed version): a different one means an edit outside the operator.
	// +optional
	ObservedVersion string `json:"observedVersion,omitempty"`
	// lastSyncTime is when the object was last written.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
}

// ExchangeStatus reports the token exchange.
type ExchangeStatus struct {
	// url of the exchange inside the cluster (`/exchange` and `/token` below it).
	// +optional
	URL string `json:"url,omitempty"`
	// readyReplicas of the exchange Deployment.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// keyFingerprint identifies the key the exchange signs with.
	// +optional
	KeyFingerprint string `json:"keyFingerprint,omitempty"`
}

// ConsumerState is where a workload is in taking a new JWT secret.
// +kubebuilder:validation:Enum=Pending;Rolling;Current;Failed
type ConsumerState string

// The consumer states.
const (
	ConsumerPending ConsumerState = "Pending"
	ConsumerRolling ConsumerState = "Rolling"
	ConsumerCurrent ConsumerState = "Current"
	ConsumerFailed  ConsumerState = "Failed"
)

// ConsumerStatus is one reader of the JWT secret.
type ConsumerStatus struct {
	// kind of the consumer: Deployment, StatefulSet (InsForge workloads), Exchange, or the
	// provider object's kind.
	Kind string `json:"kind"`
	// name of the consumer.
	Name string `json:"name"`
	// state: Pending (not yet on the current key), Rolling, Current or Failed.
	State ConsumerState `json:"state"`
	// keyFingerprint of the key the consumer runs with.
	// +optional
	KeyFingerprint string `json:"keyFingerprint,omitempty"`
	// message explains the state.
	// +optional
	Message string `json:"message,omitempty"`
}
