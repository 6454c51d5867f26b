#!/usr/bin/env bash
# scripts/install-deps.sh [--compare] - install the Debian 12 packages the build needs; with
# --compare, also what bench/compare and bench/plot run (Redis 7, PostgreSQL 15 with pgbench,
# gnuplot, jq). Idempotent: does nothing (no apt-get update) when every package is present.
set -euo pipefail

COMPARE=0
for arg in "$@"; do
    case "$arg" in
        --compare) COMPARE=1 ;;
        *) echo "install-deps: unknown argument '$arg' (usage: install-deps.sh [--compare])" >&2
           exit 2 ;;
    esac
done

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
)

# The systems bench/compare measures Trastenda against, and its tools. Debian starts no service
# on install in a container (policy-rc.d); bench/compare starts its own on loopback anyway.
if [[ $COMPARE -eq 1 ]]; then
    PACKAGES+=(
        redis-server
        redis-tools
        postgresql
        postgresql-contrib
        gnuplot-nox
        jq
    )
fi

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
