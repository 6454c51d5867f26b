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

first=no
[[ -d "$DATA/log" ]] || first=yes
mkdir -p "$DATA"
"$BIN/trastenda" --listen "$LISTEN" --events "$EVENTS" --http "$HTTP" --data "$DATA" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 1 100); do
    if $CLI --timeout-ms 500 status >/dev/null 2>&1; then break; fi
    if ! kill -0 $pid 2>/dev/null; then echo "run: the server did not start" >&2; exit 1; fi
    sleep 0.2
done
if [[ $first == yes ]]; then
    echo "run: first start: importing the sample shop (data/*.csv)"
    $CLI import --locations data/locations.csv --skus data/skus.csv --stock data/stock.csv
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
