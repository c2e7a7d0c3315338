#!/usr/bin/env bash
# Builds release binaries and runs a benchmark: scripts/bench.sh [NAME]
# [options], NAME one of ingest (the default), flush, load, live, read,
# compact;
# options are passed on (see docs/BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo build --release --locked -p kalamdb-server -p kalamdb-bench
bench=ingest
case "${1:-}" in
ingest | flush | load | live | read | compact)
    bench=$1
    shift
    ;;
esac
exec ./target/release/kalamdb-bench "$bench" "$@"
