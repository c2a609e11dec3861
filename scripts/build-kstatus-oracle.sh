#!/usr/bin/env bash
# Builds the kstatus oracle (tests/kstatus-oracle: kstatus of sigs.k8s.io/cli-utils, pinned in
# its go.mod) into DEST/kstatus-oracle (default .tools/kstatus-oracle). The differential test
# crates/k8s-apply/tests/kstatus_table.rs checks kantup's readiness module against it.
# Like the kube and cosign builds, it is built once per machine: kept in
# ${KANTUP_TOOLS_CACHE:-~/.cache/kantup-tools}/kstatus-oracle-<hash of its sources>, so a fresh
# clone (CI) copies it instead of building again, and a change to the sources builds anew.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tests/kstatus-oracle"
dest="${1:-$root/.tools/kstatus-oracle}"
bin="$dest/kstatus-oracle"
hash="$(cd "$src" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
cache="${KANTUP_TOOLS_CACHE:-$HOME/.cache/kantup-tools}/kstatus-oracle-$hash"
if [ ! -x "$cache/kstatus-oracle" ]; then
  mkdir -p "$cache"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$cache/kstatus-oracle.tmp" .)
  mv "$cache/kstatus-oracle.tmp" "$cache/kstatus-oracle"
  echo "install-test-tools: kstatus-oracle built from $(grep 'sigs.k8s.io/cli-utils' "$src/go.mod" | xargs)"
fi
if ! cmp -s "$cache/kstatus-oracle" "$bin" 2>/dev/null; then
  mkdir -p "$dest"
  cp "$cache/kstatus-oracle" "$bin.tmp"
  mv "$bin.tmp" "$bin"
fi
