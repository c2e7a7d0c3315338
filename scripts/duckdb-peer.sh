#!/usr/bin/env bash
# Installs DuckDB (PyPI `duckdb`), the peer of the compaction benchmark's
# cold scans, into a private virtualenv under .tools/, and prints the path
# of its python (the benchmark finds it there, or via KALAMDB_DUCKDB_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.tools/duckdb-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import duckdb' 2>/dev/null; then
    echo "duckdb-peer: installing duckdb into $venv" >&2
    python3 -m venv "$venv" >/dev/null 2>&1 || {
        echo "duckdb-peer: python3 -m venv failed; on Debian run: sudo apt-get install -y python3-venv" >&2
        exit 1
    }
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'duckdb==1.4.2' >&2
fi
echo "$PWD/$venv/bin/python"
