#!/usr/bin/env bash
# The main job, end to end, on an embedded RocksDB under ./var:
# start debiasd, generate a synthetic MNAR world with known truth, ingest it
# through the server, print the dataset statistics, replay the log with
# naive MF, Rel-MF and IPS-MF (`debiasctl replay`: each model's l2 chosen on a
# validation split of the training clicks; every model estimated from the
# biased log with naive/IPS/SNIPS and bootstrap intervals, next to the
# missing-at-random truth sample), write the HTML report, serve a top-k,
# stop the server.
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
"$CTL" synth --world mnar --users 1000 --items 400 --power 1 --expected-clicks 40000 --seed 7 --out "$VAR/demo-world"
echo "== 2. ingest the clicks and the MAR test sample through debiasd"
"$CTL" ingest --dataset demo-train --format csv "$VAR/demo-world/train.csv"
"$CTL" ingest --dataset demo-test --format csv "$VAR/demo-world/test.csv"
echo "== 3. dataset statistics"
"$CTL" stats --dataset demo-train
"$CTL" stats --dataset demo-test
"$CTL" datasets
echo "== 4. replay the log: train naive MF, Rel-MF (Saito et al., WSDM 2020) and IPS-MF through"
echo "   debiasd (l2 chosen per model on a validation split of the training clicks, never on"
echo "   the MAR sample), estimate each model's quality from the biased log with IPS/SNIPS"
echo "   and bootstrap intervals, and compare with the missing-at-random truth sample"
"$CTL" replay "$VAR/demo-world/train.csv" --test "$VAR/demo-world/test.csv" \
  --dataset demo-replay --models naive,relmf,ips --tune l2=0.001,0.0001,0.00001 \
  --estimators naive,ips,snips --k 5,10 --bootstrap 200 --seed 1 \
  --report "$VAR/demo-report.html" >"$VAR/demo-replay.txt"
cat "$VAR/demo-replay.txt"
RELMF_ID=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([m["model_id"] for m in d["models"] if m["name"]=="relmf"][0])' "$VAR/demo-report.json")
echo "== 5. one model, one estimator, from the CLI: IPS with 1000 bootstrap resamples"
"$CTL" evaluate --model "$RELMF_ID" --dataset demo-replay --estimator ips --bootstrap 1000 \
  --k 5 --mar-dataset demo-replay-test --seed 1
echo "== 6. serve: top 5 unseen items for one user from the Rel-MF model"
USER=$(sed -n 2p "$VAR/demo-world/train.csv" | cut -d, -f1)
"$CTL" topk --model "$RELMF_ID" --user "$USER" --k 5 --exclude-seen
echo "== done: report in $VAR/demo-report.html (numbers: $VAR/demo-report.json); server log in $VAR/debiasd.log"
