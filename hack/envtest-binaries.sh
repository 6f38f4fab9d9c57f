#!/usr/bin/env bash
# Builds the envtest binaries (kube-apiserver, etcd) from Go modules, with no download other than the
# Go module proxy, into a per-version cache directory outside the repository. Prints that directory
# (use it as KUBEBUILDER_ASSETS). A warm run only checks that the binaries exist.
#
#   KUBE_VERSION   k8s.io/kubernetes version      (default v1.37.2)
#   ETCD_VERSION   go.etcd.io/etcd/server/v3      (default: the version that Kubernetes release pins)
#   ENVTEST_CACHE  cache root                      (default ${XDG_CACHE_HOME:-$HOME/.cache}/llm-gateway/envtest)
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"
CACHE_ROOT="${ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-gateway/envtest}"

log() { echo "envtest-binaries: $*" >&2; }

# The etcd version defaults to the one Kubernetes pins; resolving it needs the module's go.mod, so a
# warm cache is keyed on the Kubernetes version alone when ETCD_VERSION is not given.
out="$CACHE_ROOT/k8s-${KUBE_VERSION}"
if [ -n "${ETCD_VERSION:-}" ]; then out="$out-etcd-${ETCD_VERSION}"; fi
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

mkdir -p "$out"
# One builder at a time per cache; a second caller waits and then finds the binaries.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/.lock"
  flock 9
  if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ -f "$out/.complete" ]; then
    echo "$out"
    exit 0
  fi
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/envtest-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log "resolving k8s.io/kubernetes@$KUBE_VERSION"
kdir="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -n "$kdir" ] && [ -f "$kdir/go.mod" ] || { log "cannot find go.mod of k8s.io/kubernetes@$KUBE_VERSION"; exit 1; }

if [ -z "${ETCD_VERSION:-}" ]; then
  ETCD_VERSION="$(awk '$1=="go.etcd.io/etcd/server/v3" {print $2; exit}' "$kdir/go.mod")"
  [ -n "$ETCD_VERSION" ] || { log "k8s.io/kubernetes@$KUBE_VERSION pins no go.etcd.io/etcd/server/v3"; exit 1; }
fi
log "etcd version $ETCD_VERSION"

# Wrapper module for kube-apiserver: the staging modules that k8s.io/kubernetes replaces with local
# folders (absent from its module zip) are pinned to their published versions instead.
mkdir -p "$work/apiserver"
{
  echo "module envtestbuild/apiserver"
  echo
  echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
  echo
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo
  grep -E '^[[:space:]]*(replace[[:space:]]+)?k8s\.io/[^ ]+[[:space:]]+=>[[:space:]]+\./staging/' "$kdir/go.mod" |
    sed -E 's/^[[:space:]]*(replace[[:space:]]+)?(k8s\.io\/[^ ]+).*/replace \2 => \2 '"$STAGING_VERSION"'/'
} >"$work/apiserver/go.mod"
n=$(grep -c '^replace' "$work/apiserver/go.mod" || true)
log "pinned $n staging modules to $STAGING_VERSION"
[ "$n" -gt 0 ] || { log "no staging replaces found in k8s.io/kubernetes go.mod"; exit 1; }

ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean"

build_apiserver() {
  [ -x "$out/kube-apiserver" ] && return 0
  log "building kube-apiserver $KUBE_VERSION (cold: 10-16 minutes on 2 cores)"
  (cd "$work/apiserver" &&
    GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" >&2 &&
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2)
  mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
}

build_etcd() {
  [ -x "$out/etcd" ] && return 0
  log "building etcd $ETCD_VERSION"
  mkdir -p "$work/etcd"
  (cd "$work/etcd" &&
    printf 'module envtestbuild/etcd\n\ngo 1.26\n' >go.mod &&
    GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 &&
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3 >&2)
  mv "$out/etcd.tmp" "$out/etcd"
}

build_etcd
build_apiserver
printf 'kube-apiserver %s\netcd %s\n' "$KUBE_VERSION" "$ETCD_VERSION" >"$out/.complete"

# Also answer warm runs that did not name ETCD_VERSION.
default="$CACHE_ROOT/k8s-${KUBE_VERSION}"
if [ "$out" != "$default" ] && [ ! -e "$default" ]; then ln -s "$out" "$default"; fi
echo "$out"
