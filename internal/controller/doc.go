// Package controller registers the operator's reconcilers with a manager (Setup), which
// cmd/manager calls. Each kind's reconcile lives in its own package (authintegration,
// paymentroute); the machinery they share is kit. docs/architecture.md walks through both.
package controller
