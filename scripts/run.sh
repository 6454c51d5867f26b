#!/usr/bin/env bash
# scripts/run.sh - `make run`: starts trastenda on loopback with ./var/trastenda, imports the
# sample dataset (data/) on the first start, prints how to talk to it, and stops the server
# gracefully on Ctrl-C.
set -euo pipefail
BIN=${BIN:-build/release}
DATA=${DATA:-./var/trastenda}
LISTEN=${LISTEN:-tcp://127.0.0.1:7878}
EVENTS=${EVENTS:-tcp://127.0.0.1:7879}
HTTP=${HTTP:-http://127.0.0.1:7870}
CLI="$BIN/trastenda-cli --server $LISTEN"

# The sample is imported into a new data directory; a marker left until the import ends makes
# an interrupted import run again at the next start (the import sets figures, so a second run
# changes nothing that the first finished).
PENDING="$DATA/.sample-import-pending"
if [[ ! -d "$DATA/log" ]]; then
    mkdir -p "$DATA"
    touch "$PENDING"
fi
"$BIN/trastenda" --listen "$LISTEN" --events "$EVENTS" --http "$HTTP" --data "$DATA" &
pid=$!
# Whatever ends this script (Ctrl-C, a failed import) stops the server it started.
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 100); do
    if $CLI --timeout-ms 500 status >/dev/null 2>&1; then break; fi
    if ! kill -0 $pid 2>/dev/null; then echo "run: the server did not start" >&2; exit 1; fi
    sleep 0.2
done
if [[ -e "$PENDING" ]]; then
    echo "run: first start: importing the sample shop (data/*.csv)"
    $CLI import --locations data/locations.csv --skus data/skus.csv --stock data/stock.csv
    rm -f "$PENDING"
fi
cat <<MSG

Trastenda is running (pid $pid): requests on $LISTEN, events on $EVENTS, data in $DATA.
The dashboard and the HTTP/JSON API are on $HTTP (docs/HTTP.md). Try, in another terminal:

  $BIN/trastenda-cli status
  $BIN/trastenda-cli stock --sku P001-BLA-M
  $BIN/trastenda-cli reserve --line P001-BLA-M@WH-CORUNA:1 --ttl-ms 600000 --key cart-1
  $BIN/trastenda-cli ledger --sku P001-BLA-M
  $BIN/trastenda-cli watch                      # events as they happen
  curl -s $HTTP/v1/stock/P001-BLA-M
  curl -s $HTTP/metrics

Ctrl-C stops it (gracefully: what is in flight is made durable and answered).
MSG
wait $pid
