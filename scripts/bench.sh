#!/usr/bin/env bash
# Builds release binaries and runs the ingest benchmark; options are passed
# on (--single N, --rows N, --sync). See docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo build --release --locked -p kalamdb-server -p kalamdb-bench
exec ./target/release/kalamdb-bench ingest "$@"
