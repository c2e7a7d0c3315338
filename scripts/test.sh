#!/usr/bin/env bash
# Builds and runs every test: unit tests, the sqllogictest files and the
# end-to-end tests against the real server binary.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/test-peers.sh >/dev/null
cargo fmt --all -- --check
# Lints are policy (clippy.toml, [workspace.lints]). clippy-driver compiles
# the workspace's own crates in the test build itself (what `cargo clippy`
# does in a check build), so the dependencies, RocksDB's C++ above all, are
# compiled once rather than once for the lints and again for the tests: on
# 2 cores that second pass costs CI most of its time. Any lint fails the
# build (-D warnings). `cargo clippy --workspace --all-targets -- -D
# warnings` finds the same, for use by hand.
if clippy=$(command -v clippy-driver); then
    export RUSTC_WORKSPACE_WRAPPER="$clippy"
    export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
else
    cargo clippy --workspace --all-targets --locked -- -D warnings
fi
cargo test --workspace --locked
