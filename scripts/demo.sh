#!/usr/bin/env bash
# The main job, end to end, on an embedded RocksDB under ./var:
# start debiasd, generate a synthetic MNAR world with known truth, ingest it
# through the server, print the dataset statistics, stop the server.
set -euo pipefail
BUILD=${1:-build}
BIN=$BUILD
DEBIASD=$BIN/server/debiasd
CTL=$BIN/client/debiasctl
VAR=./var
mkdir -p "$VAR"
rm -rf "$VAR/demo-db" "$VAR/demo-world" "$VAR/demo.port"

"$DEBIASD" --listen 127.0.0.1:0 --data_dir "$VAR/demo-db" --port_file "$VAR/demo.port" \
  >"$VAR/debiasd.log" 2>&1 &
PID=$!
cleanup() { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 100); do [[ -s "$VAR/demo.port" ]] && break; sleep 0.1; done
[[ -s "$VAR/demo.port" ]] || { echo "debiasd did not start; see $VAR/debiasd.log" >&2; exit 1; }
export DEBIAS_SERVER=127.0.0.1:$(cat "$VAR/demo.port")
"$CTL" health --wait 10 >/dev/null

echo "== 1. synthetic MNAR world (exposure = popularity^p, clicks = exposure x relevance)"
"$CTL" synth --world mnar --users 2000 --items 1000 --power 1 --seed 7 --out "$VAR/demo-world"
echo "== 2. ingest the clicks and the MAR test sample through debiasd"
"$CTL" ingest --dataset demo-train --format csv "$VAR/demo-world/train.csv"
"$CTL" ingest --dataset demo-test --format csv "$VAR/demo-world/test.csv"
echo "== 3. dataset statistics"
"$CTL" stats --dataset demo-train
"$CTL" stats --dataset demo-test
"$CTL" datasets
echo "== done: server log in $VAR/debiasd.log"
