#!/usr/bin/env bash
# PostgreSQL as a benchmark peer, in a scratch directory on loopback.
#
#   scripts/pg-peer.sh start DIR PORT   initdb DIR (trust auth), start on
#                                       127.0.0.1:PORT, sockets in DIR
#   scripts/pg-peer.sh stop DIR         stop it (fast shutdown)
#
# Installs PostgreSQL from Debian when no server binaries are present.
# initdb refuses to run as root, so as root the cluster belongs to the
# `postgres` user (created by the Debian package).
set -euo pipefail

pg_bin() {
    local initdb
    initdb=$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -1 || true)
    [ -n "$initdb" ] && dirname "$initdb"
}

install_pg() {
    local packages="postgresql postgresql-contrib"
    if [ "$(id -u)" = "0" ]; then
        echo "pg-peer: installing $packages" >&2
        # shellcheck disable=SC2086
        (apt-get install -y $packages >/dev/null 2>&1 ||
            { apt-get update >/dev/null && apt-get install -y $packages >/dev/null; })
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        # shellcheck disable=SC2086
        (sudo apt-get install -y $packages >/dev/null 2>&1 ||
            { sudo apt-get update >/dev/null && sudo apt-get install -y $packages >/dev/null; })
    else
        echo "pg-peer: PostgreSQL is missing; run: sudo apt-get install -y $packages" >&2
        exit 1
    fi
}

as_owner() {
    if [ "$(id -u)" = "0" ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
bin=$(pg_bin || true)
if [ -z "$bin" ]; then
    install_pg
    bin=$(pg_bin)
fi

case "$cmd" in
start)
    port=${3:?usage: $0 start DIR PORT}
    mkdir -p "$dir"
    if [ "$(id -u)" = "0" ]; then
        chown postgres "$dir"
        # A scratch parent (mktemp -d) is private to root; postgres must
        # pass through it.
        chmod o+x "$(dirname "$dir")"
    fi
    as_owner "$bin/initdb" -D "$dir" --auth=trust -U postgres >/dev/null
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $dir" start >/dev/null
    echo "pg-peer: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
    ;;
stop)
    as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
