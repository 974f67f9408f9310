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

// LabelSecretAccess is the label a Secret must carry, with the value "true", before the operator
// reads it, mounts it into a gateway or sends its values anywhere. Referencing a Secret from a
// resource is not enough: whoever may edit an AuthIntegration or a PaymentRoute could otherwise
// have the operator read any Secret of the namespace. The operator labels the Secrets it writes.
const LabelSecretAccess = "integrations.insforge.dev/operator-access"

// SecretKeySelector points at one key of a Secret in the same namespace as the object. The Secret
// must carry the label integrations.insforge.dev/operator-access: "true".
type SecretKeySelector struct {
	// name of the Secret, in the same namespace as this object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key within the Secret's data.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// LocalSecretReference names a Secret in the same namespace as the object; the keys it must hold
// are fixed by the field that uses it. The Secret must carry the label
// integrations.insforge.dev/operator-access: "true".
type LocalSecretReference struct {
	// name of the Secret, in the same namespace as this object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// DatabaseConnection says how the operator reaches a PostgreSQL database.
type DatabaseConnection struct {
	// connectionSecretRef names the Secret key that holds a PostgreSQL connection URL
	// (postgres://user:password@host:5432/db?sslmode=require). The key defaults to `uri`.
	// The operator watches the Secret: changing it reconciles again.
	ConnectionSecretRef SecretKeySelector `json:"connectionSecretRef"`
}

// DefaultConnectionSecretKey is the key read from a connection Secret when none is given.
const DefaultConnectionSecretKey = "uri"

// KeyOrDefault returns the selector's key, or def when the key is empty.
func (s SecretKeySelector) KeyOrDefault(def string) string {
	if s.Key == "" {
		return def
	}
	return s.Key
}
