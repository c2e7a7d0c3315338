#!/usr/bin/env bash
# Makes sure the system packages the build needs are present: RocksDB's
# bindings are generated with libclang (Debian: clang + libclang-dev).
# Installs them when this user may (root, or passwordless sudo); otherwise
# prints the exact command and stops.
set -euo pipefail

have_libclang() {
    compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null 2>&1 ||
        compgen -G "/usr/lib/x86_64-linux-gnu/libclang*.so*" >/dev/null 2>&1 ||
        compgen -G "/usr/lib/aarch64-linux-gnu/libclang*.so*" >/dev/null 2>&1
}

if have_libclang && command -v clang >/dev/null 2>&1; then
    exit 0
fi

install_cmd="apt-get install -y clang libclang-dev"
if [ "$(id -u)" = "0" ]; then
    echo "deps: installing clang and libclang-dev (needed by RocksDB's bindings)" >&2
    (apt-get install -y clang libclang-dev >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y clang libclang-dev >/dev/null; })
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "deps: installing clang and libclang-dev with sudo" >&2
    (sudo apt-get install -y clang libclang-dev >/dev/null 2>&1 ||
        { sudo apt-get update >/dev/null && sudo apt-get install -y clang libclang-dev >/dev/null; })
else
    echo "deps: libclang is missing and this user cannot install packages." >&2
    echo "deps: run:  sudo $install_cmd" >&2
    exit 1
fi
have_libclang || { echo "deps: libclang still not found after install" >&2; exit 1; }
