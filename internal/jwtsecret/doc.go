// Package jwtsecret holds the pure decisions behind the AuthIntegration's JWT Secret: how a secret
// is generated, how it is fingerprinted for status, and when it is rotated. It reads and writes
// nothing; the controller applies a Decision to the Secret.
//
// The secret is InsForge's JWT_SECRET: the HS256 key of every third-party token, and a root
// credential (it can mint project_admin tokens). The operator only ever writes a Secret it
// generated itself, recognised by AnnotationGenerated, and stops touching even that one when
// JWT_SECRET no longer matches the fingerprint it recorded (someone else wrote it).
package jwtsecret
