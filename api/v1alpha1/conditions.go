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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types. `Ready` is always present. `Reconciling` and `Stalled` follow the kstatus
// convention: present only while true, so that Flux `wait: true` and kstatus read them
// correctly (Reconciling=True → InProgress, Stalled=True → Failed).
const (
	// ConditionReady is True when everything the resource asks for is in place.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the operator is making changes or waiting for them.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the operator cannot make progress without a change by the
	// user (a bad spec, a missing Secret key, a uuid user id column).
	ConditionStalled = "Stalled"

	// ConditionSQLApplied is True when the database matches the desired RLS state.
	ConditionSQLApplied = "SQLApplied"
	// ConditionSecretReady is True when the JWT secret exists and the exports are written.
	ConditionSecretReady = "SecretReady"
	// ConditionDrifted is True when the last observation found the database differing from the
	// desired state (out-of-band changes, or observe mode).
	ConditionDrifted = "Drifted"
	// ConditionRLSVerified is True when a rolled-back test transaction proved per-user isolation.
	ConditionRLSVerified = "RLSVerified"

	// ConditionExchangeAvailable is True when the token exchange Deployment has its replicas
	// available.
	ConditionExchangeAvailable = "ExchangeAvailable"
	// ConditionProviderSynced is True when the provider signs InsForge tokens as the spec says
	// (Clerk's JWT template, Auth0's API or Action), with the signing key.
	ConditionProviderSynced = "ProviderSynced"
	// ConditionKeyPropagated is True when every reader of the JWT secret (InsForge workloads, the
	// exchange, the provider) runs the current key; False while a rotation rolls through them.
	ConditionKeyPropagated = "KeyPropagated"

	// ConditionGatewayAvailable is True when the gateway Deployment has its replicas available.
	ConditionGatewayAvailable = "GatewayAvailable"
	// ConditionLedgerReady is True when the payments ledger schema is applied.
	ConditionLedgerReady = "LedgerReady"
	// ConditionMockFacilitator is True on routes that use the mock facilitator: a warning that no
	// funds move.
	ConditionMockFacilitator = "MockFacilitator"
	// ConditionSettlementsResolved is False on routes with payments whose settlement outcome has
	// been unknown for more than an hour (see docs/gateway.md#unresolved-payments).
	ConditionSettlementsResolved = "SettlementsResolved"
)

// Condition reasons shared by both kinds.
const (
	ReasonReconciled        = "Reconciled"
	ReasonProgressing       = "Progressing"
	ReasonInvalidSpec       = "InvalidSpec"
	ReasonSecretNotFound    = "SecretNotFound"
	ReasonSecretKeyMissing  = "SecretKeyMissing"
	ReasonSecretNotOptedIn  = "SecretNotOptedIn"
	ReasonDatabaseError     = "DatabaseUnavailable"
	ReasonAuthFailed        = "AuthenticationFailed"
	ReasonDeleting          = "Deleting"
	ReasonObserveOnly       = "ObserveOnly"
	ReasonInSync            = "InSync"
	ReasonDriftDetected     = "DriftDetected"
	ReasonDriftCorrected    = "DriftCorrected"
	ReasonUUIDUserID        = "UserIDColumnIsUUID"
	ReasonTableMissing      = "TableMissing"
	ReasonPolicyConflict    = "PolicyConflict"
	ReasonVerified          = "Verified"
	ReasonVerifyFailed      = "VerificationFailed"
	ReasonSecretGenerated   = "SecretGenerated"
	ReasonSecretAdopted     = "SecretAdopted"
	ReasonSecretRotated     = "SecretRotated"
	ReasonMockRefused       = "MockFacilitatorRefused"
	ReasonMockAllowed       = "MockFacilitatorAllowed"
	ReasonDomainMismatch    = "EIP712DomainMismatch"
	ReasonRPCUnavailable    = "RPCUnavailable"
	ReasonDeploymentPending = "DeploymentProgressing"
	ReasonAvailable         = "Available"
	ReasonSchemaApplied     = "SchemaApplied"
	ReasonUnresolved        = "UnresolvedPayments"
	ReasonAllResolved       = "AllResolved"
	ReasonImageNotAllowed   = "ImageNotAllowed"
	ReasonURLNotAllowed     = "URLNotAllowed"
)

// Condition reasons of the provider side of an AuthIntegration.
const (
	ReasonProviderSynced      = "Synced"
	ReasonProviderRejected    = "ProviderRejected"
	ReasonProviderUnavailable = "ProviderUnavailable"
	ReasonProviderRateLimited = "ProviderRateLimited"
	ReasonWorkloadNotFound    = "WorkloadNotFound"
	ReasonWorkloadNotOptedIn  = "WorkloadNotOptedIn"
	ReasonWorkloadClaimed     = "WorkloadClaimed"
	ReasonEncryptionFallback  = "JWTSecretIsEncryptionKey"
	ReasonRollingOut          = "RollingOut"
	ReasonKeyPropagated       = "KeyPropagated"
)

// SetCondition sets one condition, stamped with the object's generation. The transition time
// changes only when the status does.
func SetCondition(conds *[]metav1.Condition, generation int64, condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	})
}

// MarkReady records success: Ready=True and neither Reconciling nor Stalled.
func MarkReady(conds *[]metav1.Condition, generation int64, reason, message string) {
	SetCondition(conds, generation, ConditionReady, metav1.ConditionTrue, reason, message)
	meta.RemoveStatusCondition(conds, ConditionReconciling)
	meta.RemoveStatusCondition(conds, ConditionStalled)
}

// MarkReconciling records work in progress (or a transient error that will be retried):
// Reconciling=True, Ready=False with the same reason, and no Stalled.
func MarkReconciling(conds *[]metav1.Condition, generation int64, reason, message string) {
	SetCondition(conds, generation, ConditionReconciling, metav1.ConditionTrue, reason, message)
	SetCondition(conds, generation, ConditionReady, metav1.ConditionFalse, reason, message)
	meta.RemoveStatusCondition(conds, ConditionStalled)
}

// MarkStalled records a terminal problem that needs the user: Stalled=True, Ready=False with the
// same reason, and no Reconciling.
func MarkStalled(conds *[]metav1.Condition, generation int64, reason, message string) {
	SetCondition(conds, generation, ConditionStalled, metav1.ConditionTrue, reason, message)
	SetCondition(conds, generation, ConditionReady, metav1.ConditionFalse, reason, message)
	meta.RemoveStatusCondition(conds, ConditionReconciling)
}

// StatusConditions returns the integration's conditions (for tools that handle both kinds).
func (in *AuthIntegration) StatusConditions() []metav1.Condition { return in.Status.Conditions }

// StatusObservedGeneration returns the generation the status describes.
func (in *AuthIntegration) StatusObservedGeneration() int64 { return in.Status.ObservedGeneration }

// StatusConditions returns the route's conditions (for tools that handle both kinds).
func (in *PaymentRoute) StatusConditions() []metav1.Condition { return in.Status.Conditions }

// StatusObservedGeneration returns the generation the status describes.
func (in *PaymentRoute) StatusObservedGeneration() int64 { return in.Status.ObservedGeneration }
