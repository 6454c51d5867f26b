#!/usr/bin/env bash
# scripts/install-deps.sh [--compare] - install the Debian 12 packages the build and the tests need,
# and the npm packages of the browser test (tests/web, from its package-lock.json); with
# --compare, also what bench/compare and bench/plot run (Redis 7, PostgreSQL 15 with pgbench,
# gnuplot, jq). Idempotent: does nothing (no apt-get update, no network) when everything is present.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

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
    libjansson-dev
    # the HTTP tests: promtool checks /metrics, openssl makes test certificates, curl speaks
    # HTTPS, headless chromium and node run the dashboard's browser test
    prometheus
    openssl
    curl
    chromium
    nodejs
)
# npm comes with nodejs when nodejs is NodeSource's; Debian's nodejs needs Debian's npm.
if ! command -v npm > /dev/null 2>&1; then
    PACKAGES+=(npm)
fi

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

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    SUDO=(sudo)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
else
    echo "install-deps: installing ${missing[*]}"
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi

# playwright-core for tests/web, at the version of its lock; never a browser download (the test
# drives Debian's /usr/bin/chromium).
WEB="$ROOT/tests/web"
want=$(sed -n 's/.*"playwright-core": "\([0-9.]*\)".*/\1/p' "$WEB/package.json")
have=$(sed -n 's/.*"version": "\([0-9.]*\)".*/\1/p' \
    "$WEB/node_modules/playwright-core/package.json" 2>/dev/null | head -n 1 || true)
if [[ "$have" != "$want" ]]; then
    echo "install-deps: npm ci in tests/web (playwright-core $want)"
    (cd "$WEB" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
else
    echo "install-deps: tests/web has playwright-core $have"
fi
