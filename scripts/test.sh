#!/usr/bin/env bash
# Builds and runs every test: unit tests, the sqllogictest files and the
# end-to-end tests against the real server binary.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/test-peers.sh >/dev/null
cargo fmt --all -- --check
# Lints are policy (clippy.toml, [workspace.lints]); before the tests, so a
# lint failure is reported in minutes.
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
