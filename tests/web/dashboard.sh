#!/usr/bin/env bash
# tests/web/dashboard.sh - the dashboard's browser test (ctest web_dashboard): starts the real
# server on free loopback ports with a temporary data directory, imports the sample shop, opens
# a hold and places an order, asks the CLI for a SKU's stock, then has headless chromium
# (tests/web/dashboard.test.mjs) load the dashboard, search that SKU and compare. The server is
# stopped by its PID whatever happens. The screenshot lands in OUT_DIR.
#
#   tests/web/dashboard.sh BIN_DIR SRC_DIR OUT_DIR
set -euo pipefail
BIN=$1
SRC=$2
OUT=$3
SKU=P001-BLA-M

if [[ ! -d "$SRC/tests/web/node_modules/playwright-core" ]]; then
    echo "dashboard: tests/web/node_modules is missing: run scripts/install-deps.sh" >&2
    exit 1
fi
tmp=$(mktemp -d /tmp/trastenda-web-XXXXXX)
pid=
cleanup() {
    if [[ -n "$pid" ]]; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() {
    node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => {
        console.log(s.address().port); s.close(); })"
}
REQ="tcp://127.0.0.1:$(free_port)"
HTTP="http://127.0.0.1:$(free_port)"
CLI=("$BIN/trastenda-cli" --server "$REQ" --timeout-ms 10000)

"$BIN/trastenda" --listen "$REQ" --http "$HTTP" --events none --repl none --data "$tmp/data" \
    2> "$tmp/server.log" &
pid=$!
for _ in $(seq 1 100); do
    if curl -sf -m 2 "$HTTP/ready" > /dev/null; then break; fi
    if ! kill -0 "$pid" 2> /dev/null; then
        cat "$tmp/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
"${CLI[@]}" import --locations "$SRC/data/locations.csv" --skus "$SRC/data/skus.csv" \
    --stock "$SRC/data/stock.csv" > "$tmp/import.out"
"${CLI[@]}" reserve --line "$SKU@WH-CORUNA:2" --ttl-ms 600000 --key cart-web > /dev/null
"${CLI[@]}" order place --order WEB-1 --line P002-BLA-M:1 --channel web \
    --lat 42880000 --lon -8540000 > /dev/null
"${CLI[@]}" --json stock --sku "$SKU" > "$tmp/cli.json"

mkdir -p "$OUT"
if ! (cd "$SRC/tests/web" && node dashboard.test.mjs "$HTTP" "$SKU" "$tmp/cli.json" "$OUT"); then
    tail -n 30 "$tmp/server.log" >&2
    exit 1
fi
kill -TERM "$pid"
wait "$pid"
pid=
