#!/usr/bin/env bash
# Builds the registry with the OCI 1.1 referrers API that kantup's push tests use
# (tests/referrers-registry: go-containerregistry's pkg/registry, pinned in its go.mod, with
# WithReferrersSupport) into DEST/referrers-registry (default .tools/referrers-registry).
# zot is not served by the Go module proxy this project reaches, and docker-registry 2.8 and
# distribution v3 have no referrers API. Built once per machine, like the kstatus oracle: kept in
# ${KANTUP_TOOLS_CACHE:-~/.cache/kantup-tools}/referrers-registry-<hash of its sources>.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tests/referrers-registry"
dest="${1:-$root/.tools/referrers-registry}"
bin="$dest/referrers-registry"
hash="$(cd "$src" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
cache="${KANTUP_TOOLS_CACHE:-$HOME/.cache/kantup-tools}/referrers-registry-$hash"
if [ ! -x "$cache/referrers-registry" ]; then
  mkdir -p "$cache"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$cache/referrers-registry.tmp" .)
  mv "$cache/referrers-registry.tmp" "$cache/referrers-registry"
  echo "install-test-tools: referrers-registry built from $(grep 'go-containerregistry' "$src/go.mod" | xargs)"
fi
if ! cmp -s "$cache/referrers-registry" "$bin" 2>/dev/null; then
  mkdir -p "$dest"
  cp "$cache/referrers-registry" "$bin.tmp"
  mv "$bin.tmp" "$bin"
fi
