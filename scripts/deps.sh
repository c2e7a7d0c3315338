#!/usr/bin/env bash
# Makes sure the system packages the build needs are present: RocksDB itself,
# prebuilt (Debian: librocksdb-dev; .cargo/config.toml links it statically),
# pkg-config, and
# libclang for its bindings (Debian: clang + libclang-dev).
# Installs them when this user may (root, or passwordless sudo); otherwise
# prints the exact command and stops.
set -euo pipefail

have_libclang() {
    compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null 2>&1 ||
        compgen -G "/usr/lib/x86_64-linux-gnu/libclang*.so*" >/dev/null 2>&1 ||
        compgen -G "/usr/lib/aarch64-linux-gnu/libclang*.so*" >/dev/null 2>&1
}

have_rocksdb() {
    # The static library is what is linked (.cargo/config.toml).
    [ -e /usr/lib/x86_64-linux-gnu/librocksdb.a ]
}

if have_libclang && command -v clang >/dev/null 2>&1 && have_rocksdb &&
    command -v pkg-config >/dev/null 2>&1; then
    exit 0
fi

# librocksdb-dev brings the -dev packages of the compression libraries
# the static RocksDB needs; pkg-config finds zstd and zlib for their crates.
packages="clang libclang-dev librocksdb-dev pkg-config"
install_cmd="apt-get install -y $packages"
if [ "$(id -u)" = "0" ]; then
    echo "deps: installing $packages (RocksDB and its bindings)" >&2
    # shellcheck disable=SC2086
    (apt-get install -y $packages >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y $packages >/dev/null; })
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "deps: installing $packages with sudo" >&2
    # shellcheck disable=SC2086
    (sudo apt-get install -y $packages >/dev/null 2>&1 ||
        { sudo apt-get update >/dev/null && sudo apt-get install -y $packages >/dev/null; })
else
    echo "deps: build packages are missing and this user cannot install them." >&2
    echo "deps: run:  sudo $install_cmd" >&2
    exit 1
fi
have_libclang || { echo "deps: libclang still not found after install" >&2; exit 1; }
have_rocksdb || { echo "deps: librocksdb still not found after install" >&2; exit 1; }
