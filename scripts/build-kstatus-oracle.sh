#!/usr/bin/env bash
# Builds the kstatus oracle (tests/kstatus-oracle: kstatus of sigs.k8s.io/cli-utils, pinned in
# its go.mod) into DEST/kstatus-oracle (default .tools/kstatus-oracle). The differential test
# crates/k8s-apply/tests/kstatus_table.rs checks kantup's readiness module against it.
# Skipped when the binary is newer than the oracle's sources.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tests/kstatus-oracle"
dest="${1:-$root/.tools/kstatus-oracle}"
bin="$dest/kstatus-oracle"
if [ -x "$bin" ] && [ -z "$(find "$src" -newer "$bin" -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \))" ]; then
  exit 0
fi
mkdir -p "$dest"
(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" .)
mv "$bin.tmp" "$bin"
echo "install-test-tools: kstatus-oracle built from $(grep 'sigs.k8s.io/cli-utils' "$src/go.mod" | xargs)"
