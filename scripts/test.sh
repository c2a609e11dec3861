#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the real tools the tests use, then runs
# formatting, lints and every test in the workspace (examples included).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-tools.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
