#!/usr/bin/env bash
# Installs the peers the end-to-end tests talk to: an S3-compatible server
# (moto, from PyPI) in a private virtualenv under .tools/. Prints the path
# of `moto_server`; the tests find it there (or via KALAMDB_MOTO_SERVER).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.tools/moto-venv
if [ ! -x "$venv/bin/moto_server" ]; then
    echo "test-peers: installing moto (S3-compatible test server) into $venv" >&2
    python3 -m venv "$venv" >/dev/null 2>&1 || {
        echo "test-peers: python3 -m venv failed; on Debian run: sudo apt-get install -y python3-venv" >&2
        exit 1
    }
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        'moto[s3]==5.2.5' flask flask-cors >&2
fi
echo "$PWD/$venv/bin/moto_server"
