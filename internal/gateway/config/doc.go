// Package config is the x402 gateway's configuration: the JSON file the PaymentRoute controller
// renders into a ConfigMap (FromPaymentRoute), the environment variables that carry secrets, and
// Load, which reads both and validates them with errors that name the offending field.
//
// The file never holds a secret. Secrets arrive only through the environment variables named by
// the Env* constants; the controller fills them from Secrets (SecretEnv) and the gateway reads
// them with Load.
package config
