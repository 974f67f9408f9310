#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver + etcd) from source through the Go module proxy,
# because the usual envtest download site is not reachable everywhere we run.
#
# Versions come from the pinned tools modules beside this script (hack/envtest/*/go.mod), so the
# main go.mod never depends on k8s.io/kubernetes. Output goes to
#   ${ENVTEST_ASSETS_DIR:-bin}/k8s/<k8s-version>-<os>-<arch>/{kube-apiserver,etcd}
# which is the layout setup-envtest and kubebuilder's test suites look up. The script is idempotent:
# a binary whose --version already matches is not rebuilt. It prints the assets directory last.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/hack/envtest"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly"

modversion() { # modversion <tools-module-dir> <module>
  (cd "$1" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$2")
}

k8s_version=$(modversion "$tools/kube-apiserver" k8s.io/kubernetes)        # e.g. v1.37.2
client_version=$(modversion "$tools/kube-apiserver" k8s.io/client-go)      # e.g. v0.37.2
etcd_version=$(modversion "$tools/etcd" go.etcd.io/etcd/server/v3)          # e.g. v3.7.3
goos=$(go env GOOS); goarch=$(go env GOARCH)
assets_root=${ENVTEST_ASSETS_DIR:-$root/bin}
assets="$assets_root/k8s/${k8s_version#v}-$goos-$goarch"
mkdir -p "$assets"

log() { echo "envtest: $*" >&2; }

# ticking <what> prints a line every 30s while a long build runs, so it does not look hung;
# stop it with `kill "$ticker"`.
ticking() {
  (n=0; while sleep 30; do n=$((n + 30)); log "still building $1 (${n}s)..."; done) >&2 &
  ticker=$!
}
trap 'if [ -n "${ticker:-}" ]; then kill "$ticker" 2>/dev/null || true; fi' EXIT

if "$assets/etcd" --version 2>/dev/null | grep -q "etcd Version: ${etcd_version#v}$"; then
  log "etcd ${etcd_version} already built"
else
  log "building etcd ${etcd_version} (about 1 minute the first time)..."
  start=$SECONDS
  ticking etcd
  (cd "$tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$assets/etcd.tmp" go.etcd.io/etcd/server/v3)
  kill "$ticker" 2>/dev/null || true
  mv "$assets/etcd.tmp" "$assets/etcd"
  log "etcd built in $((SECONDS - start))s"
fi

if "$assets/kube-apiserver" --version 2>/dev/null | grep -q "Kubernetes ${k8s_version}$"; then
  log "kube-apiserver ${k8s_version} already built"
else
  log "building kube-apiserver ${k8s_version} (about 4-5 minutes and 3 GB of RAM the first time)..."
  start=$SECONDS
  minor=$(echo "$k8s_version" | cut -d. -f2)
  ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=${k8s_version}"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
  ldflags+=" -X k8s.io/component-base/version.gitMinor=${minor}"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=${k8s_version}"
  ticking kube-apiserver
  (cd "$tools/kube-apiserver" && go build -trimpath -ldflags "$ldflags" -o "$assets/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  kill "$ticker" 2>/dev/null || true
  mv "$assets/kube-apiserver.tmp" "$assets/kube-apiserver"
  log "kube-apiserver built in $((SECONDS - start))s"
fi

: "$client_version" # pinned by the replace block; read so a broken tools module fails here, loudly
echo "$assets"
