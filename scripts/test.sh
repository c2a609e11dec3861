#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the real tools the tests use, then runs
# formatting, lints and every test in the workspace (examples included).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-tools.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Not --all-targets: that would run the benchmarks (harness = false) as tests.
cargo test --workspace --lib --bins --tests --examples --locked
cargo test --workspace --doc --locked
