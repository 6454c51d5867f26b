#!/usr/bin/env bash
# scripts/install-deps.sh - install the Debian 12 packages the build needs.
# Idempotent: does nothing (no apt-get update) when every package is present.
set -euo pipefail

PACKAGES=(
    build-essential
    cmake
    pkg-config
    git
    libjemalloc-dev
    libcriterion-dev
    clang-14
    libclang-rt-14-dev
    clang-format
    librocksdb-dev
    libnng-dev
    libmsgpack-dev
    libjansson-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    SUDO=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
