#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the real tools the tests use, then runs
# formatting, lints and every test in the workspace (examples built too), and ends with one
# total line.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-tools.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The release artifact (one static binary), built once: tests/dist_static.rs runs it in an
# empty root and fails without it.
./scripts/dist.sh
export KANTUP_REQUIRE_DIST=1
log="$(mktemp)"
# Tests that cannot reach a real peer (no API server) record themselves here: they count as
# skipped, never as passed.
export KANTUP_SKIP_LOG="$(mktemp)"
# The install script built the real Kubernetes: a cluster test that finds none fails.
export KANTUP_REQUIRE_KUBE=1
trap 'rm -f "$log" "$KANTUP_SKIP_LOG"' EXIT
# Not --all-targets: that would run the benchmarks (harness = false) as tests.
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --workspace --lib --bins --tests --examples --locked --no-fail-fast 2>&1 | tee "$log"
cargo test --workspace --doc --locked --no-fail-fast 2>&1 | tee -a "$log"
# cargo prints one `test result:` line per test binary; add them up, and move the tests that
# skipped themselves from passed to skipped.
if [ -s "$KANTUP_SKIP_LOG" ]; then
  echo "skipped (no real peer here):"
  sed 's/^/  /' "$KANTUP_SKIP_LOG"
fi
self_skipped="$(wc -l <"$KANTUP_SKIP_LOG")"
awk -v self_skipped="$self_skipped" '/^test result:/ { passed += $4; failed += $6; skipped += $8 }
     END { printf "%d passed, %d failed, %d skipped\n", passed - self_skipped, failed, skipped + self_skipped }' "$log"
