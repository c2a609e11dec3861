#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the real tools the tests use, then runs
# formatting, lints and every test in the workspace (examples built too), and ends with one
# total line.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-tools.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Not --all-targets: that would run the benchmarks (harness = false) as tests.
cargo test --workspace --lib --bins --tests --examples --locked 2>&1 | tee "$log"
cargo test --workspace --doc --locked 2>&1 | tee -a "$log"
# cargo prints one `test result:` line per test binary; add them up.
awk '/^test result:/ { passed += $4; failed += $6; skipped += $8 }
     END { printf "%d passed, %d failed, %d skipped\n", passed, failed, skipped }' "$log"
