#!/usr/bin/env bash
# Builds one of the Go programs under tests/ that the suite runs as a real part or oracle
# (tests/kstatus-oracle: kstatus of sigs.k8s.io/cli-utils; tests/referrers-registry:
# go-containerregistry's registry with the OCI 1.1 referrers API), each pinned by its go.mod,
# into DEST/NAME (default .tools/NAME).
# Like the kube and cosign builds, each is built once per machine: kept in
# ${KANTUP_TOOLS_CACHE:-~/.cache/kantup-tools}/NAME-<hash of its sources>, so a fresh clone (CI)
# copies it instead of building again, and a change to the sources builds anew.
# Usage: build-go-oracle.sh NAME [DEST]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
name="${1:?usage: build-go-oracle.sh NAME [DEST]}"
src="$root/tests/$name"
dest="${2:-$root/.tools/$name}"
bin="$dest/$name"
[ -f "$src/go.mod" ] || { echo "build-go-oracle: no Go module at $src" >&2; exit 1; }
hash="$(cd "$src" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
cache="${KANTUP_TOOLS_CACHE:-$HOME/.cache/kantup-tools}/$name-$hash"
if [ ! -x "$cache/$name" ]; then
  mkdir -p "$cache"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$cache/$name.tmp" .)
  mv "$cache/$name.tmp" "$cache/$name"
  echo "install-test-tools: $name built (pinned by tests/$name/go.mod)"
fi
if ! cmp -s "$cache/$name" "$bin" 2>/dev/null; then
  mkdir -p "$dest"
  cp "$cache/$name" "$bin.tmp"
  mv "$bin.tmp" "$bin"
fi
