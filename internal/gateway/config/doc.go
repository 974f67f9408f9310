// Package config is the x402 gateway's configuration: the JSON file it reads (the PaymentRoute
// controller renders it into a ConfigMap), the environment variables that carry secrets, and
// Load, which reads both and validates them with errors that name the offending field. It knows
// nothing of Kubernetes: the gateway binary links only its own config type.
//
// The file never holds a secret. Secrets arrive only through the environment variables named by
// the Env* constants; the controller fills them from Secrets and the gateway reads them with Load.
package config
