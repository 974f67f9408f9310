#!/usr/bin/env bash
# Provides the envtest control plane (kube-apiserver + etcd) for the tests, `make demo` and the
# e2e suite, and prints its directory last (stdout; everything else goes to stderr):
#   ${ENVTEST_ASSETS_DIR:-bin}/k8s/<k8s-version>-<os>-<arch>/{kube-apiserver,etcd}
# which is the layout setup-envtest and kubebuilder's test suites look up.
#
# In order, the first that works:
#   1. present: binaries already there with the pinned version are used as they are (no network);
#   2. download: the standard setup-envtest download of the release archive (setup-envtest is
#      pinned in hack/tools/setup-envtest and built into bin/ on first use); seconds when reachable;
#   3. build: kube-apiserver and etcd built from source through the Go module proxy, for machines
#      that cannot reach the download (about 10 minutes and 2.5 GB of RAM on 2 cores with an empty
#      Go build cache, 15 seconds with a warm one).
# The log says which one ran. The download is abandoned quickly when its index cannot be reached,
# so an offline machine goes straight to the build.
#
# Versions come from the pinned tools modules beside this script (hack/envtest/*/go.mod), so the
# main go.mod never depends on k8s.io/kubernetes.
#
# Environment:
#   ENVTEST_SOURCE            auto (default: download, else build), download (only) or build (only)
#   ENVTEST_PROBE_TIMEOUT     bound on reaching the download index (default 10s)
#   ENVTEST_DOWNLOAD_TIMEOUT  bound on fetching the archive once the index answered (default 5m)
#   ENVTEST_INDEX             another setup-envtest index (a mirror); default: setup-envtest's own
#   ENVTEST_ASSETS_DIR        where k8s/ goes (default: bin/ of the repository)
#   SETUP_ENVTEST             the setup-envtest binary (default: bin/setup-envtest, built if missing)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/hack/envtest"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly"

source_mode=${ENVTEST_SOURCE:-auto}
case "$source_mode" in auto | download | build) ;; *)
  echo "envtest: ENVTEST_SOURCE must be auto, download or build, not '$source_mode'" >&2
  exit 2
  ;;
esac
probe_timeout=${ENVTEST_PROBE_TIMEOUT:-10s}
download_timeout=${ENVTEST_DOWNLOAD_TIMEOUT:-5m}

modversion() { # modversion <tools-module-dir> <module>
  (cd "$1" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$2")
}

k8s_version=$(modversion "$tools/kube-apiserver" k8s.io/kubernetes)        # e.g. v1.37.2
client_version=$(modversion "$tools/kube-apiserver" k8s.io/client-go)      # e.g. v0.37.2
etcd_version=$(modversion "$tools/etcd" go.etcd.io/etcd/server/v3)          # e.g. v3.7.3
goos=$(go env GOOS); goarch=$(go env GOARCH)
assets_root=${ENVTEST_ASSETS_DIR:-$root/bin}
assets="$assets_root/k8s/${k8s_version#v}-$goos-$goarch"
# Records where the binaries came from (download or build): a downloaded etcd is the one that
# Kubernetes release ships, whatever version hack/envtest/etcd pins.
marker="$assets/.source"
mkdir -p "$assets"

log() { echo "envtest: $*" >&2; }

ticker="" scratch=""
cleanup() {
  if [ -n "$ticker" ]; then kill "$ticker" 2>/dev/null || true; fi
  if [ -n "$scratch" ]; then chmod -R u+w "$scratch" 2>/dev/null || true; rm -rf "$scratch"; fi
}
trap cleanup EXIT

# ticking <what> prints a line every 30s while a long build runs, so it does not look hung;
# stop it with `kill "$ticker"`.
ticking() {
  (n=0; while sleep 30; do n=$((n + 30)); log "still building $1 (${n}s)..."; done) >&2 &
  ticker=$!
}

# bounded <duration> <command...> runs a command with a time limit (when coreutils' timeout exists).
bounded() {
  local limit=$1; shift
  if command -v timeout >/dev/null; then timeout "$limit" "$@"; else "$@"; fi
}

# reported_version <binary> prints what `<binary> --version` says. Captured before matching: with
# pipefail, `bin --version | grep -q` fails at random when grep exits before bin has written
# everything (SIGPIPE), which used to rebuild a perfectly good etcd.
reported_version() { "$1" --version 2>/dev/null || true; }
apiserver_ok() { grep -q "^Kubernetes ${k8s_version}$" <<<"$(reported_version "$1/kube-apiserver")"; }
etcd_pinned() { grep -q "^etcd Version: ${etcd_version#v}$" <<<"$(reported_version "$1/etcd")"; }
etcd_runs() { grep -q "^etcd Version: " <<<"$(reported_version "$1/etcd")"; }
came_from() { cat "$marker" 2>/dev/null || echo build; }

# 1. present
if apiserver_ok "$assets" && { etcd_pinned "$assets" || { [ "$(came_from)" = download ] && etcd_runs "$assets"; }; }; then
  log "present: kube-apiserver ${k8s_version} and etcd in ${assets} (from $(came_from)); nothing to do"
  echo "$assets"
  exit 0
fi

# 2. download
# setup_envtest prints the path of a setup-envtest binary of the pinned version, building it into
# bin/ from hack/tools/setup-envtest when it is missing or another version.
setup_envtest() {
  local bin=${SETUP_ENVTEST:-$root/bin/setup-envtest} want
  want=$(cd "$root/hack/tools/setup-envtest" && go list -m -f '{{.Version}}' sigs.k8s.io/controller-runtime/tools/setup-envtest) || return 1
  if ! grep -q " ${want}$" <<<"$("$bin" version 2>/dev/null)"; then
    local start=$SECONDS
    log "building setup-envtest ${want} into ${bin} (20-40s the first time)..."
    mkdir -p "$(dirname "$bin")"
    (cd "$root/hack/tools/setup-envtest" && go build -trimpath -ldflags "-s -w" -o "$bin.tmp" sigs.k8s.io/controller-runtime/tools/setup-envtest) >&2 || return 1
    mv "$bin.tmp" "$bin"
    log "setup-envtest built in $((SECONDS - start))s"
  fi
  echo "$bin"
}

# download fetches the release archive into a scratch store beside $assets and moves its
# kube-apiserver and etcd into $assets. It fails (quickly when offline) without touching $assets.
download() {
  local se out dir version=${k8s_version#v}
  local -a flags=(--os "$goos" --arch "$goarch")
  if [ -n "${ENVTEST_INDEX:-}" ]; then flags+=(--index "$ENVTEST_INDEX"); fi
  se=$(setup_envtest) || { log "could not build setup-envtest"; return 1; }
  scratch=$(mktemp -d "$assets_root/k8s/.download.XXXXXX") || return 1
  # The index is small: if it does not answer within the probe timeout, nothing else will.
  if ! out=$(bounded "$probe_timeout" "$se" --bin-dir "$scratch" list "${flags[@]}" "$version" 2>&1); then
    log "download index not reachable within ${probe_timeout}: $(echo "${out:-no answer}" | tail -n 1)"
    return 1
  fi
  if ! grep -q "v${version}[[:space:]]" <<<"$out"; then
    log "the download index has no envtest ${version} for ${goos}/${goarch}"
    return 1
  fi
  log "downloading envtest ${version} (kube-apiserver, etcd) with setup-envtest..."
  if ! dir=$(bounded "$download_timeout" "$se" --bin-dir "$scratch" use "${flags[@]}" -p path "$version" 2>&1); then
    log "download failed or took longer than ${download_timeout}: $(echo "${dir:-no answer}" | tail -n 1)"
    return 1
  fi
  dir=$(echo "$dir" | tail -n 1)
  if ! apiserver_ok "$dir" || ! etcd_runs "$dir"; then
    log "the downloaded archive has no working kube-apiserver ${k8s_version} and etcd"
    return 1
  fi
  chmod u+w "$dir" || return 1 # setup-envtest leaves it read-only, which forbids moving files out
  rm -f "$assets/kube-apiserver" "$assets/etcd"
  mv "$dir/kube-apiserver" "$dir/etcd" "$assets/" || return 1
  echo download >"$marker"
}

if [ "$source_mode" != build ]; then
  start=$SECONDS
  if download; then
    log "download: kube-apiserver ${k8s_version} and etcd $(reported_version "$assets/etcd" | sed -n 's/^etcd Version: //p') in ${assets} ($((SECONDS - start))s)"
    echo "$assets"
    exit 0
  fi
  if [ "$source_mode" = download ]; then
    log "download failed and ENVTEST_SOURCE=download: not building from source"
    exit 1
  fi
  log "download unavailable (gave up after $((SECONDS - start))s); building from source instead"
fi

# 3. build
rm -f "$marker" # a mixed directory is a built one: etcd must then be the pinned version
if etcd_pinned "$assets"; then
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

if apiserver_ok "$assets"; then
  log "kube-apiserver ${k8s_version} already built"
else
  log "building kube-apiserver ${k8s_version} (about 8 minutes on 2 cores and 2.5 GB of RAM the first time)..."
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
log "build: kube-apiserver ${k8s_version} and etcd ${etcd_version} in ${assets}"

: "$client_version" # pinned by the replace block; read so a broken tools module fails here, loudly
echo "$assets"
