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
	"k8s.io/apimachinery/pkg/runtime"
)

// AuthProvider is an external identity provider whose users reach InsForge with an HS256 token.
// +kubebuilder:validation:Enum=clerk;auth0;workos;kinde;stytch;betterAuth
type AuthProvider string

// The supported providers.
const (
	ProviderClerk      AuthProvider = "clerk"
	ProviderAuth0      AuthProvider = "auth0"
	ProviderWorkOS     AuthProvider = "workos"
	ProviderKinde      AuthProvider = "kinde"
	ProviderStytch     AuthProvider = "stytch"
	ProviderBetterAuth AuthProvider = "betterAuth"
)

// ReconcileMode chooses whether the operator changes the database or only reports.
// +kubebuilder:validation:Enum=apply;observe
type ReconcileMode string

const (
	// ModeApply executes the statements that bring the database to the desired state.
	ModeApply ReconcileMode = "apply"
	// ModeObserve changes nothing and reports the difference in status.
	ModeObserve ReconcileMode = "observe"
)

// DeletionPolicy says what happens to database objects when the resource is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

const (
	// DeletionRetain leaves the database untouched.
	DeletionRetain DeletionPolicy = "Retain"
	// DeletionDelete drops the policies this integration created.
	DeletionDelete DeletionPolicy = "Delete"
)

// PolicyCommand is an SQL command a row-level security policy applies to.
// +kubebuilder:validation:Enum=select;insert;update;delete
type PolicyCommand string

// The policy commands.
const (
	PolicySelect PolicyCommand = "select"
	PolicyInsert PolicyCommand = "insert"
	PolicyUpdate PolicyCommand = "update"
	PolicyDelete PolicyCommand = "delete"
)

// AuthDatabase is the InsForge PostgreSQL database that the integration secures.
type AuthDatabase struct {
	DatabaseConnection `json:",inline"`

	// role is set with SET ROLE before any statement runs, so that created objects are owned by
	// it. InsForge expects `project_admin` to own objects in `public`. Empty means the login role.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`
	Role string `json:"role,omitempty"`
}

// ManagedTable is a table whose rows belong to the user named by the token's `sub` claim.
type ManagedTable struct {
	// schema of the table. Defaults to `public`.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`
	Schema string `json:"schema,omitempty"`

	// name of the table.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`
	Name string `json:"name"`

	// userIdColumn holds the owner's user id. It must be TEXT: provider ids are strings such as
	// `user_2x…` (Clerk) or `auth0|…`, never UUIDs. It gets `DEFAULT public.requesting_user_id()`.
	// Defaults to `user_id`.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`
	UserIDColumn string `json:"userIdColumn,omitempty"`

	// policies lists the commands that get an owner-only policy `TO authenticated`.
	// Empty means all four: select, insert, update and delete.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4
	Policies []PolicyCommand `json:"policies,omitempty"`

	// createIfMissing creates the table (with an id and the user id column) when it does not
	// exist. Without it a missing table stalls the integration with a message naming the table.
	// +optional
	CreateIfMissing bool `json:"createIfMissing,omitempty"`
}

// JWTSecret says where the HS256 secret that signs InsForge tokens comes from. The secret can
// mint `project_admin` tokens, so it is a root credential: it is never shown in status, events
// or logs; status carries a fingerprint.
// +kubebuilder:validation:XValidation:rule="has(self.generate) != has(self.existingSecretRef)",message="set exactly one of jwt.generate and jwt.existingSecretRef"
type JWTSecret struct {
	// generate makes the operator create and own the secret.
	// +optional
	Generate *GeneratedJWTSecret `json:"generate,omitempty"`

	// existingSecretRef adopts a secret that already exists (for example InsForge's own
	// JWT_SECRET), read-only. The key defaults to `JWT_SECRET`.
	// +optional
	ExistingSecretRef *SecretKeySelector `json:"existingSecretRef,omitempty"`
}

// GeneratedJWTSecret is a JWT secret that the operator creates, and rotates if asked.
type GeneratedJWTSecret struct {
	// secretName is the Secret that receives the key `JWT_SECRET` (and `JWT_SECRET_PREVIOUS`
	// during a rotation's grace period). It is created if missing; a value a user wrote is never
	// overwritten.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="jwt.generate.secretName is immutable: changing it would orphan the Secret that apps and the provider already use"
	SecretName string `json:"secretName"`

	// ownership says whether the Secret carries an owner reference to this integration (and is
	// garbage-collected with it) or is left behind when the integration is deleted.
	// +optional
	// +kubebuilder:default=Owned
	Ownership SecretOwnership `json:"ownership,omitempty"`

	// rotation replaces the key on a schedule or on demand.
	// +optional
	Rotation *JWTRotation `json:"rotation,omitempty"`
}

// SecretOwnership says whether an operator-created Secret is owned by its integration.
// +kubebuilder:validation:Enum=Owned;Orphan
type SecretOwnership string

const (
	// SecretOwned Secrets are deleted with the integration.
	SecretOwned SecretOwnership = "Owned"
	// SecretOrphan Secrets outlive the integration.
	SecretOrphan SecretOwnership = "Orphan"
)

// JWTRotation replaces the JWT secret and keeps the previous key valid for a grace period.
// +kubebuilder:validation:XValidation:rule="has(self.interval) || has(self.trigger)",message="rotation needs an interval, a trigger, or both"
type JWTRotation struct {
	// interval between rotations, for example `2160h` (90 days). At least one hour.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h')",message="rotation.interval must be at least 1h"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// trigger rotates the key once whenever its value changes; set it to a timestamp
	// (`kubectl patch ... -p '{"spec":{"jwt":{"generate":{"rotation":{"trigger":"2026-11-26T10:00:00Z"}}}}}'`).
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Trigger string `json:"trigger,omitempty"`

	// gracePeriod keeps the previous key in `JWT_SECRET_PREVIOUS` after a rotation so tokens
	// signed before it keep working. Defaults to 24h.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="rotation.gracePeriod must not be negative"
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
}

// SecretExport writes the JWT secret into a Secret that an application workload mounts, under the
// environment variable name that the provider's integration guide uses.
// +kubebuilder:validation:XValidation:rule="!has(self.key) || !(self.key.startsWith('NEXT_PUBLIC_') || self.key.startsWith('VITE_'))",message="exports[].key must not start with NEXT_PUBLIC_ or VITE_: those names are bundled into browser code and the JWT secret is a root credential"
type SecretExport struct {
	// secretName is the Secret to create or update in this namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SecretName string `json:"secretName"`

	// key is the data key (the environment variable name). Defaults to `INSFORGE_JWT_SECRET`, the
	// name used by the Auth0, WorkOS, Kinde, Stytch and Better Auth guides.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// DefaultExportKey is the environment variable name of exported JWT secrets.
const DefaultExportKey = "INSFORGE_JWT_SECRET"

// AuthIntegrationSpec is the desired state of an AuthIntegration.
// +kubebuilder:validation:XValidation:rule="self.provider == 'betterAuth' || size(self.tables) > 0",message="tables must list at least one table (only betterAuth may manage none)"
// +kubebuilder:validation:XValidation:rule="self.tables.all(t, self.tables.exists_one(u, (has(u.schema) ? u.schema : 'public') == (has(t.schema) ? t.schema : 'public') && u.name == t.name))",message="tables must not list the same schema and name twice"
// +kubebuilder:validation:XValidation:rule="!has(self.clerk) || self.provider == 'clerk'",message="spec.clerk is only for provider clerk"
// +kubebuilder:validation:XValidation:rule="!has(self.auth0) || self.provider == 'auth0'",message="spec.auth0 is only for provider auth0"
// +kubebuilder:validation:XValidation:rule="!has(self.workos) || self.provider == 'workos'",message="spec.workos is only for provider workos"
// +kubebuilder:validation:XValidation:rule="!has(self.kinde) || self.provider == 'kinde'",message="spec.kinde is only for provider kinde"
// +kubebuilder:validation:XValidation:rule="!has(self.stytch) || self.provider == 'stytch'",message="spec.stytch is only for provider stytch"
// +kubebuilder:validation:XValidation:rule="!has(self.betterAuth) || self.provider == 'betterAuth'",message="spec.betterAuth is only for provider betterAuth"
// +kubebuilder:validation:XValidation:rule="!has(self.exchange) || (has(self.exchange.verification) && has(self.exchange.verification.jwksURL) && has(self.exchange.verification.issuers)) || (has(self.clerk) && has(self.clerk.frontendAPI)) || has(self.auth0) || has(self.workos) || has(self.kinde) || has(self.stytch) || has(self.betterAuth)",message="exchange needs the provider's section (clerk.frontendAPI, auth0.domain, workos.clientID, kinde.domain, stytch.projectID or betterAuth.baseURL), or exchange.verification.issuers and jwksURL"
type AuthIntegrationSpec struct {
	// provider issues the users' identities. It decides the SQL (Better Auth gets its own
	// `better_auth` schema sealed from `anon` and `authenticated`) and the export names.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="provider is immutable: create a new AuthIntegration to switch providers"
	Provider AuthProvider `json:"provider"`

	// database is the InsForge PostgreSQL database to secure.
	Database AuthDatabase `json:"database"`

	// tables whose rows are owned by users: each gets a TEXT user id column defaulting to
	// `public.requesting_user_id()`, row-level security, owner-only policies and grants.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Tables []ManagedTable `json:"tables,omitempty"`

	// jwt is the HS256 secret that InsForge verifies tokens with.
	JWT JWTSecret `json:"jwt"`

	// exports copy the JWT secret into Secrets for app workloads that sign tokens (Auth0
	// Actions, WorkOS, Kinde, Stytch, the Better Auth bridge). Clerk needs none: its key goes into
	// the Clerk JWT template.
	// +optional
	// +listType=map
	// +listMapKey=secretName
	// +kubebuilder:validation:MaxItems=16
	Exports []SecretExport `json:"exports,omitempty"`

	// mode `apply` executes what differs; `observe` changes nothing and reports drift.
	// +optional
	// +kubebuilder:default=apply
	Mode ReconcileMode `json:"mode,omitempty"`

	// driftCheckInterval is how often the database is observed again to find out-of-band
	// changes (a dropped policy, RLS disabled). Defaults to 5m; at least 10s.
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s')",message="driftCheckInterval must be at least 10s"
	DriftCheckInterval *metav1.Duration `json:"driftCheckInterval,omitempty"`

	// clerk, auth0, workos, kinde, stytch and betterAuth name the provider's tenant (only the one
	// of spec.provider may be set): the token exchange's checks follow from it, and with API
	// credentials (Clerk, Auth0) the operator configures the provider to sign InsForge tokens.
	// +optional
	Clerk *ClerkSettings `json:"clerk,omitempty"`
	// +optional
	Auth0 *Auth0Settings `json:"auth0,omitempty"`
	// +optional
	WorkOS *WorkOSSettings `json:"workos,omitempty"`
	// +optional
	Kinde *KindeSettings `json:"kinde,omitempty"`
	// +optional
	Stytch *StytchSettings `json:"stytch,omitempty"`
	// +optional
	BetterAuth *BetterAuthSettings `json:"betterAuth,omitempty"`

	// exchange runs the managed token exchange (docs/exchange.md): apps trade the provider's
	// token for an InsForge token and hold no secret.
	// +optional
	Exchange *TokenExchange `json:"exchange,omitempty"`

	// insforge names InsForge's workloads that read the JWT secret, so that a rotation (or a
	// change of an adopted secret) rolls them and then switches the signers, with no manual step.
	// +optional
	InsForge *InsForgeWorkloads `json:"insforge,omitempty"`

	// deletionPolicy `Retain` (default) leaves the database alone when the resource is deleted;
	// `Delete` drops the policies this integration created (the shared helper function stays
	// while another integration uses it).
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// TableStatus is what the operator last saw of one managed table.
type TableStatus struct {
	// schema of the table.
	Schema string `json:"schema"`
	// name of the table.
	Name string `json:"name"`
	// rlsEnabled is true when row-level security is enabled on the table.
	// +optional
	RLSEnabled bool `json:"rlsEnabled,omitempty"`
	// policies owned by this integration that exist on the table.
	// +optional
	// +listType=set
	Policies []string `json:"policies,omitempty"`
	// verified is true when the last verification proved isolation on this table.
	// +optional
	Verified bool `json:"verified,omitempty"`
	// message explains a problem with this table.
	// +optional
	Message string `json:"message,omitempty"`
}

// JWTSecretStatus describes the JWT secret without revealing it.
type JWTSecretStatus struct {
	// secretName is the Secret that holds the key.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// fingerprint identifies the current key: `sha256:` and the first 12 hex digits of its
	// SHA-256. It is safe to show; the key is not.
	// +optional
	Fingerprint string `json:"fingerprint,omitempty"`
	// previousFingerprint identifies the previous key while it is kept for the grace period.
	// +optional
	PreviousFingerprint string `json:"previousFingerprint,omitempty"`
	// lastRotationTime is when the current key replaced the previous one.
	// +optional
	LastRotationTime *metav1.Time `json:"lastRotationTime,omitempty"`
	// nextRotationTime is when the interval will rotate the key next.
	// +optional
	NextRotationTime *metav1.Time `json:"nextRotationTime,omitempty"`
	// signingFingerprint identifies the key the exchange and the providers sign with: the
	// current key once every InsForge workload runs it (see consumers).
	// +optional
	SigningFingerprint string `json:"signingFingerprint,omitempty"`
	// consumers are the readers of the key (InsForge workloads, the exchange, the provider
	// object) and where each is in taking the current one.
	// +optional
	// +listType=atomic
	Consumers []ConsumerStatus `json:"consumers,omitempty"`
	// previousExpiryTime is when the previous key will be removed.
	// +optional
	PreviousExpiryTime *metav1.Time `json:"previousExpiryTime,omitempty"`
	// lastHandledTrigger is the rotation trigger value already acted on.
	// +optional
	LastHandledTrigger string `json:"lastHandledTrigger,omitempty"`
}

// AuthIntegrationStatus is the observed state of an AuthIntegration.
type AuthIntegrationStatus struct {
	// observedGeneration is the spec generation this status describes. It is -1 until the
	// operator first reconciles, so GitOps tools wait for it.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: `Ready` always; `Reconciling` or `Stalled` while true; and `SQLApplied`,
	// `SecretReady`, `Drifted`, `RLSVerified`.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// appliedHash identifies the desired state last applied (or observed, in observe mode).
	// +optional
	AppliedHash string `json:"appliedHash,omitempty"`

	// lastAppliedTime is when statements were last executed.
	// +optional
	LastAppliedTime *metav1.Time `json:"lastAppliedTime,omitempty"`

	// lastDriftCheckTime is when the database was last observed. A check that finds nothing new
	// refreshes it at most once a day (every other check for intervals over two days), so that
	// the drift checks of a steady integration write nothing.
	// +optional
	LastDriftCheckTime *metav1.Time `json:"lastDriftCheckTime,omitempty"`

	// drift lists the differences found by the last observation (empty when in sync).
	// +optional
	// +listType=atomic
	Drift []string `json:"drift,omitempty"`

	// tables reports each managed table.
	// +optional
	// +listType=atomic
	Tables []TableStatus `json:"tables,omitempty"`

	// jwt describes the JWT secret by fingerprint.
	// +optional
	JWT *JWTSecretStatus `json:"jwt,omitempty"`

	// exchange reports the token exchange.
	// +optional
	Exchange *ExchangeStatus `json:"exchange,omitempty"`

	// provider is what the operator keeps in the provider (Clerk's JWT template, Auth0's API or
	// Action).
	// +optional
	Provider *ProviderSyncStatus `json:"provider,omitempty"`

	// lastHandledReconcileAt echoes the `reconcile.fluxcd.io/requestedAt` annotation once handled.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=authint,categories=insforge
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Exchange",type=string,JSONPath=`.status.exchange.url`,priority=1
// +kubebuilder:printcolumn:name="Fingerprint",type=string,JSONPath=`.status.jwt.fingerprint`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// AuthIntegration wires an external auth provider into InsForge's JWT-based row-level security:
// it applies and keeps applied the RLS SQL for the listed tables and manages the JWT secret.
type AuthIntegration struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is the desired state.
	// +required
	Spec AuthIntegrationSpec `json:"spec"`

	// status is the observed state.
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	Status AuthIntegrationStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// AuthIntegrationList contains a list of AuthIntegration.
type AuthIntegrationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []AuthIntegration `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &AuthIntegration{}, &AuthIntegrationList{})
		return nil
	})
}
