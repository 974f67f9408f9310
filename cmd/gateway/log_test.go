package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// Errors the gateway logs go through redactErrors: a connection error from a malformed ledger
// URL does not put its user or database (here holding a password) in the log.
func TestLoggedConnectionErrorsAreRedacted(t *testing.T) {
	err := pgtest.ConnectError(t, "postgres://app@127.0.0.1:1/db%0Apassword=MARKER?connect_timeout=2")
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: redactErrors}))
	log.Error("ledger claim failed", "error", fmt.Errorf("claim: %w", err))
	if out := buf.String(); strings.Contains(out, "MARKER") || !strings.Contains(out, "claim: failed to connect") {
		t.Errorf("log line: %s", out)
	}
}
