#!/usr/bin/env bash
# The main job, end to end, on an embedded RocksDB under ./var:
# start debiasd, generate a synthetic MNAR world with known truth, ingest it
# through the server, print the dataset statistics, train a naive and a
# debiased model, evaluate both on the missing-at-random truth sample, serve
# a top-k, stop the server.
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
echo "== 4. train a naive MF and Rel-MF (Saito et al., WSDM 2020) on the biased clicks"
NAIVE=$("$CTL" train --dataset demo-train --loss naive --seed 1 --json)
RELMF=$("$CTL" train --dataset demo-train --loss relmf --seed 1 --json)
id_of() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["model_id"])' "$1"; }
NAIVE_ID=$(id_of "$NAIVE"); RELMF_ID=$(id_of "$RELMF")
"$CTL" models --dataset demo-train
echo "== 5. both models against the truth: the missing-at-random test sample"
NAIVE_EVAL=$("$CTL" evaluate --model "$NAIVE_ID" --dataset demo-test --json)
RELMF_EVAL=$("$CTL" evaluate --model "$RELMF_ID" --dataset demo-test --json)
python3 - "$NAIVE_EVAL" "$RELMF_EVAL" <<'PY'
import json, sys
naive, relmf = (json.loads(a)["metrics"] for a in sys.argv[1:3])
keys = [k for k in ("auc", "ndcg@5", "ndcg@10", "recall@5", "precision@5", "map@5") if k in naive]
print(f"{'metric':<14}{'naive':>10}{'relmf':>10}")
for k in keys:
    print(f"{k:<14}{naive[k]:>10.4f}{relmf[k]:>10.4f}")
PY
echo "== 6. serve: top 5 unseen items for one user from the Rel-MF model"
USER=$(sed -n 2p "$VAR/demo-world/train.csv" | cut -d, -f1)
"$CTL" topk --model "$RELMF_ID" --user "$USER" --k 5 --exclude-seen
echo "== done: server log in $VAR/debiasd.log"
