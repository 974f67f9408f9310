// Package clerk keeps a Clerk JWT template in the shape InsForge needs, through Clerk's Backend
// API (BAPI): HS256 with InsForge's JWT_SECRET as the custom signing key and the claims
// {"role":"authenticated","aud":"insforge-api"}. Clerk adds sub (the user id) and its other
// default claims itself.
//
// The role is fixed: JWT_SECRET also verifies project_admin tokens, which bypass row-level
// security, so Sync refuses a template whose role is anything but "authenticated".
//
// Clerk never returns a template's signing key. Sync therefore records the fingerprint of the key
// it wrote and the template's updated_at after its write (a Record, kept in the resource's
// status), and writes the key again when either changes: a new key, or an edit made in the
// dashboard that may have replaced it.
package clerk
