#!/usr/bin/env bash
# Builds geth from the go-ethereum module pinned in hack/tools/geth/go.mod (the same version the
# operator links), for the process-level tests and `make demo`, which run a `geth --dev` chain.
# Idempotent: skipped when bin/geth already reports that version. Prints the binary's path last.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/hack/tools/geth"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly"

version=$(cd "$tools" && go list -m -f '{{.Version}}' github.com/ethereum/go-ethereum) # e.g. v1.17.10
bin=${LOCALBIN:-$root/bin}/geth
mkdir -p "$(dirname "$bin")"

log() { echo "geth: $*" >&2; }

if "$bin" version 2>/dev/null | grep -q "^Version: ${version#v}"; then
  log "geth ${version} already built"
else
  log "building geth ${version} (about 2-3 minutes the first time)..."
  start=$SECONDS
  # A line every 30s, so a cold build does not look hung.
  (n=0; while sleep 30; do n=$((n + 30)); log "still building (${n}s)..."; done) >&2 &
  ticker=$!
  trap 'kill "$ticker" 2>/dev/null || true' EXIT
  (cd "$tools" && go build -trimpath -ldflags "-s -w" -o "$bin.tmp" github.com/ethereum/go-ethereum/cmd/geth)
  kill "$ticker" 2>/dev/null || true
  mv "$bin.tmp" "$bin"
  log "geth built in $((SECONDS - start))s"
fi
echo "$bin"
