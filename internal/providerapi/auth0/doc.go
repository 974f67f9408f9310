// Package auth0 wires InsForge's JWT_SECRET into an Auth0 tenant through the Management API, in
// one of two ways:
//
//   - An API (resource server) that signs its access tokens HS256 with JWT_SECRET
//     (SyncResourceServer). This is the default: there is no Action code to run and no npm
//     dependency, Auth0 signs the token itself, and the token carries no role, which InsForge
//     reads as "authenticated" — so the token cannot carry project_admin, whatever a user
//     controls. The app requests an access token with audience "insforge-api".
//   - A post-login Action that signs a second token with jsonwebtoken and attaches it as a
//     custom claim (SyncAction), as InsForge's Auth0 guide does by hand. Its role is the literal
//     "authenticated" in generated code.
//
// Unconfirmed (see the research notes): whether Auth0 uses an HS256 API's signing_secret as its
// raw UTF-8 bytes, as jsonwebtoken does (the fakes assume so), and whether single-page apps may
// request access tokens for an HS256 API; the Action path is the fallback for such apps.
//
// Auth0 never returns an Action secret, and the resource server's signing secret is treated the
// same way, so each sync records the fingerprint of the key it wrote and writes again when the
// key changes.
//
// The Management API token (client credentials) is cached until shortly before it expires, one
// fetch serving concurrent callers, and dropped and fetched again once when a call answers 401.
package auth0
