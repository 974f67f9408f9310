// Package controller holds one reconciler per kind (AuthIntegration, PaymentRoute) and the
// builders of the objects they own. Reconcilers are registered with a manager through Setup in
// setup.go, which cmd/manager calls.
package controller
