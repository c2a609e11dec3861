#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager of a released Kubernetes from the
# k8s.io/kubernetes Go module (tests/kube/go.mod pins the version and replaces each staging
# module with its matching release), with the version stamped in as Kubernetes' own build does,
# into OUT_DIR (default: .tools/kube). Called by scripts/install-test-tools.sh.
#
# Built once per machine: the binaries are kept in a per-machine cache
# (${KANTUP_TOOLS_CACHE:-$HOME/.cache/kantup-tools}/kube-<version>) and copied from there into
# OUT_DIR; a run that finds that version already in OUT_DIR does nothing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mod="$root/tests/kube"
out="${1:-$root/.tools/kube}"
version="$(cd "$mod" && go list -m -f "{{.Version}}" k8s.io/kubernetes)"
[ -n "$version" ] || { echo "build-kube: no 'require k8s.io/kubernetes' line in $mod/go.mod" >&2; exit 1; }
cache="${KANTUP_TOOLS_CACHE:-$HOME/.cache/kantup-tools}/kube-$version"
bins=(kube-apiserver kube-controller-manager)

have_version() { # $1 = dir: both binaries there and stamped with $version
  local b
  for b in "${bins[@]}"; do
    [ -x "$1/$b" ] && "$1/$b" --version 2>/dev/null | grep -qx "Kubernetes $version" || return 1
  done
}
if have_version "$out"; then exit 0; fi

if ! have_version "$cache"; then
  # Kubernetes names the Go it is built with in .go-version; a newer Go minor changed its
  # behaviour before (../shared/kube/README.md), so refuse a different minor.
  src="$(cd "$mod" && go list -m -f '{{.Dir}}' k8s.io/kubernetes 2>/dev/null || true)"
  if [ -z "$src" ]; then (cd "$mod" && go mod download k8s.io/kubernetes); src="$(cd "$mod" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)"; fi
  want_go="$(cat "$src/.go-version")"
  have_go="$(go env GOVERSION)"; have_go="${have_go#go}"
  if [ "${want_go%.*}" != "${have_go%.*}" ]; then
    echo "build-kube: Kubernetes $version names Go $want_go in .go-version; this machine's Go is $have_go" >&2
    exit 1
  fi
  minor="${version#v1.}"; minor="${minor%%.*}"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  echo "build-kube: building kube-apiserver and kube-controller-manager $version with Go $have_go (cold: about 13 min on 2 cores)"
  start=$SECONDS
  mkdir -p "$cache.tmp"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -tags providerless -ldflags "$ldflags" -o "$cache.tmp/" \
     k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
  rm -rf "$cache"; mv "$cache.tmp" "$cache"
  echo "build-kube: built in $((SECONDS - start)) s into $cache"
fi
mkdir -p "$out"
for b in "${bins[@]}"; do install -m 0755 "$cache/$b" "$out/$b"; done
