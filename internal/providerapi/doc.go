// Package providerapi holds what the identity-provider API clients (packages clerk and auth0)
// share: the outcome of a sync, the errors the operator turns into conditions, key fingerprints,
// and one HTTP exchange that never follows a redirect and never lets a secret into an error.
//
// The clients write InsForge's JWT_SECRET into a provider (a Clerk JWT template, an Auth0 API or
// Action). The providers never return that key, so each client records the fingerprint of the key
// it last wrote and writes again when the fingerprint changes.
package providerapi
