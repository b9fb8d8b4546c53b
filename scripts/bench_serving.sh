#!/usr/bin/env bash
# Serving benchmark over loopback (issues 3, 5 and 9): Score, TopK and
# SampleNegatives through a real debiasd, driven by `debiasctl bench`, each
# next to the baseline of the same transport doing no work (the gRPC health
# check at the same concurrency, measured in the same run). Prints a markdown
# table for docs/BENCHMARKS.md.
#
# usage: scripts/bench_serving.sh [BUILD_DIR]        (default: build)
# env:   USERS=20000 ITEMS=100000 CLICKS=2000000 POWER=0.5 SEED=1  the world
#        DIM=64          model dimension
#        CONC=8          closed-loop workers for the throughput runs
#        DURATION=10     measured seconds per run (after 2 s of warm-up)
#        KEEP=1          keep the temp dir (world, logs, per-run JSON)
#
# The load generator runs on the same 2 cores as the server, so every
# throughput here is a floor for what a remote client would see.
set -euo pipefail

BUILD=${1:-build}
USERS=${USERS:-20000}
ITEMS=${ITEMS:-100000}
CLICKS=${CLICKS:-2000000}
POWER=${POWER:-0.5}
SEED=${SEED:-1}
DIM=${DIM:-64}
CONC=${CONC:-8}
DURATION=${DURATION:-10}

DEBIASD=$BUILD/server/debiasd
CTL=$BUILD/client/debiasctl
for b in "$DEBIASD" "$CTL"; do
  [[ -x $b ]] || { echo "bench_serving: $b not built" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "bench_serving: python3 is required" >&2; exit 1; }

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "bench_serving: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

"$DEBIASD" --listen 127.0.0.1:0 --data_dir "$TMP/db" --port_file "$TMP/port" \
  --log_level warn >"$TMP/debiasd.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do [[ -s $TMP/port ]] && break; sleep 0.1; done
[[ -s $TMP/port ]] || { echo "bench_serving: debiasd did not start" >&2; cat "$TMP/debiasd.log" >&2; exit 1; }
export DEBIAS_SERVER=127.0.0.1:$(cat "$TMP/port")
"$CTL" health --wait 10 >/dev/null

echo "bench_serving: world ${USERS} users x ${ITEMS} items, ${CLICKS} expected clicks" >&2
"$CTL" synth --world mnar --users "$USERS" --items "$ITEMS" --power "$POWER" \
  --expected-clicks "$CLICKS" --seed "$SEED" --out "$TMP/world" >/dev/null
"$CTL" ingest --dataset bench --format csv "$TMP/world/train.csv" --json >"$TMP/ingest.json"
echo "bench_serving: training relmf (dim $DIM, 1 epoch)" >&2
"$CTL" train --dataset bench --loss relmf --param dim="$DIM" --param epochs=1 --json \
  --timeout 3600 >"$TMP/train.json"
MF=$(python3 -c "import json; print(json.load(open('$TMP/train.json'))['model_id'])")
ITEMS_IN_MODEL=$(python3 -c "import json; print(json.load(open('$TMP/train.json'))['items'])")

# debiasd's CPU time (user + system, all threads) in clock ticks.
server_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
# Waits until debiasd is idle (under 2% of a core over 2 s, at most 120 s):
# the 2M-event ingest leaves RocksDB compactions running for a while, and
# their CPU would otherwise be charged to the calls measured next.
quiesce() {
  local waited=0 t0 t1
  while (( waited < 120 )); do
    t0=$(server_ticks); sleep 2; t1=$(server_ticks); waited=$((waited + 2))
    if python3 -c "import sys; sys.exit(0 if ($t1 - $t0) / $(getconf CLK_TCK) / 2 < 0.02 else 1)"; then
      echo "bench_serving: server idle after ${waited} s" >&2
      return 0
    fi
  done
  echo "bench_serving: WARNING: server still busy after ${waited} s; measuring anyway" >&2
}
run() {  # run NAME ARGS... -> writes $TMP/NAME.json and $TMP/NAME.cpu (server CPU seconds)
  local name=$1; shift
  quiesce
  echo "bench_serving: $name" >&2
  "$CTL" bench "$@" --warmup 2 --duration "$DURATION" --json >"$TMP/$name.json" &
  local pid=$!
  sleep 2  # the warm-up
  local t0
  t0=$(server_ticks)
  wait "$pid" || true
  python3 -c "print(($(server_ticks) - $t0) / $(getconf CLK_TCK))" >"$TMP/$name.cpu"
}
run health health --concurrency "$CONC"
run score score --model "$MF" --candidates 100 --concurrency "$CONC"
SCORE_RATE=$(python3 -c "import json; print(max(1, int(json.load(open('$TMP/score.json'))['throughput'] / 2)))")
run score_half score --model "$MF" --candidates 100 --concurrency "$CONC" --rate "$SCORE_RATE"
run topk topk --model "$MF" --k 100 --concurrency 1
run topk_conc topk --model "$MF" --k 100 --concurrency "$CONC"
run sample sample-negatives --model "$MF" --n 10 --concurrency "$CONC"
RSS_KB=$(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status)

python3 - "$TMP" "$CONC" "$DIM" "$ITEMS_IN_MODEL" "$RSS_KB" <<'PY'
import json, sys
tmp, conc, dim, items, rss = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
r = {n: json.load(open(f"{tmp}/{n}.json")) for n in
     ("health", "score", "score_half", "topk", "topk_conc", "sample")}
base = r["health"]["throughput"]
cpu = {n: float(open(f"{tmp}/{n}.cpu").read()) for n in r}
def row(name, label, conc_label):
    d = r[name]; l = d["latency_ms"]
    ratio = d["throughput"] / base if base else 0
    calls = d["calls"] or 1
    print(f"| {label} | {conc_label} | {d['throughput']:,.0f} | {l['p50']:.2f} | {l['p99']:.2f} "
          f"| {l['p999']:.2f} | {d['errors']} | {ratio:.2f} | {1e6 * cpu[name] / calls:.0f} "
          f"| {1e6 * d.get('client_cpu_seconds', 0) / calls:.0f} |")
print(f"Model: relmf, dim {dim}, {items} items; debiasd peak RSS {rss/1024:.0f} MB.\n")
print("| call | load | calls/s | p50 ms | p99 ms | p999 ms | errors | throughput / health baseline "
      "| server CPU µs per call | load generator CPU µs per call |")
print("|---|---|---|---|---|---|---|---|---|---|")
row("health", "Health (baseline: the transport, no work)", f"{conc} workers, closed loop")
row("score", "Score, 100 candidates", f"{conc} workers, closed loop")
row("score_half", "Score, 100 candidates",
    f"open loop at {r['score_half']['target_rate']:,.0f} calls/s (half the closed-loop rate)")
row("topk", f"TopK k=100 over {items} items", "1 worker")
row("topk_conc", f"TopK k=100 over {items} items", f"{conc} workers, closed loop")
row("sample", "SampleNegatives n=10", f"{conc} workers, closed loop")
PY
