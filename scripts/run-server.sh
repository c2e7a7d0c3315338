#!/usr/bin/env bash
# Starts KalamDB with embedded defaults (data under ./data, HTTP on
# 127.0.0.1:8080). Extra arguments go to kalamdb-server, e.g. a server.toml
# path, --data-dir DIR or --http-addr HOST:PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
exec cargo run --release --locked -p kalamdb-server -- "$@"
