#!/usr/bin/env bash
# The main job, end to end, on an embedded RocksDB under ./var:
# start debiasd, generate a synthetic MNAR world with known truth, ingest it
# through the server, print the dataset statistics, train naive MF and
# Rel-MF (each with its l2 chosen on a validation split of the training
# clicks), evaluate both on the missing-at-random truth sample, serve a
# top-k, stop the server.
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
echo "== 4. train naive MF and Rel-MF (Saito et al., WSDM 2020) on the biased clicks"
echo "   (l2 chosen per loss by val_auc on a validation split carved from the training"
echo "    clicks; the MAR test sample is never used for selection)"
best_model() {  # best_model LOSS -> prints the model id with the best val_auc
  local loss=$1 best_id="" best_auc=-1 out id auc
  for l2 in 0.001 0.0001 0.00001; do
    out=$("$CTL" train --dataset demo-train --loss "$loss" --seed 1 --param l2=$l2 --json)
    read -r id auc < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["model_id"], d["metrics"].get("val_auc", 0))' "$out")
    echo "   $loss l2=$l2: model $id, val_auc $auc" >&2
    if python3 -c "import sys; sys.exit(0 if float('$auc') > float('$best_auc') else 1)"; then
      best_id=$id; best_auc=$auc
    fi
  done
  echo "$best_id"
}
NAIVE_ID=$(best_model naive)
RELMF_ID=$(best_model relmf)
echo "== 5. the selected models against the truth: the missing-at-random test sample"
NAIVE_EVAL=$("$CTL" evaluate --model "$NAIVE_ID" --dataset demo-test --json)
RELMF_EVAL=$("$CTL" evaluate --model "$RELMF_ID" --dataset demo-test --json)
python3 - "$NAIVE_EVAL" "$RELMF_EVAL" "$NAIVE_ID" "$RELMF_ID" <<'PY'
import json, sys
naive, relmf = (json.loads(a)["metrics"] for a in sys.argv[1:3])
keys = [k for k in ("auc", "ndcg@5", "ndcg@10", "recall@5", "precision@5", "map@5") if k in naive]
print(f"{'metric':<14}{'naive #' + sys.argv[3]:>12}{'relmf #' + sys.argv[4]:>12}")
for k in keys:
    print(f"{k:<14}{naive[k]:>12.4f}{relmf[k]:>12.4f}")
PY
echo "== 6. serve: top 5 unseen items for one user from the Rel-MF model"
USER=$(sed -n 2p "$VAR/demo-world/train.csv" | cut -d, -f1)
"$CTL" topk --model "$RELMF_ID" --user "$USER" --k 5 --exclude-seen
echo "== done: server log in $VAR/debiasd.log"
