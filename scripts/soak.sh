#!/usr/bin/env bash
# Soak test (issue 9, Load): mixed ingest + train + score against one debiasd
# on loopback for DURATION seconds at 80% of the measured Score capacity, with
# zero errors allowed and debiasd's RSS required to stop growing after warm-up.
#
# usage: scripts/soak.sh [BUILD_DIR]                  (default: build)
# needs: BUILD_DIR/{server/debiasd,client/debiasctl}; python3
# env:   DURATION=600     seconds of mixed load
#        CAPACITY_SECONDS=20  closed-loop Score run that measures capacity
#        LOAD=0.8         open-loop Score rate as a share of that capacity
#        CONC=8           Score workers (capacity and soak)
#        CANDIDATES=100   items per Score call
#        INGEST_RATE=10   ingest calls/s (each one stream of INGEST_BATCH events)
#        INGEST_BATCH=500
#        TRAIN_PAUSE=5    seconds between the training loop's iterations
#        SAMPLE=10        seconds between RSS samples
#        GROWTH=0.05      largest allowed RSS growth (see below)
#        WORLD_USERS=20000 WORLD_ITEMS=20000 WORLD_CLICKS=500000  the serving dataset
#        NICE=10          niceness of everything the script starts (0: none)
#        KEEP=1           keep the temp dir (store, logs, JSON, samples)
#
# What runs (after a serving model has been trained):
#  1. capacity alone: `debiasctl bench score` closed loop, CONC workers,
#     CAPACITY_SECONDS, nothing else running (reported only);
#  2. the ingest stream and the training loop below start; capacity in the
#     mix: the same closed-loop Score run while they run. The soak rate is LOAD
#     x this capacity. (On 2 shared cores the capacity alone is not
#     sustainable once training takes a core: an open loop at 80% of it falls
#     behind and its latency grows without bound; measured, not assumed.)
#  3. for DURATION seconds, at once:
#     - Score open loop at LOAD x capacity (`bench score --rate`; latency from
#       the intended start, so queueing shows up);
#     - an ingest stream into dataset "soak-ingest" (`bench ingest --rate`),
#       synthetic clicks over a bounded key space (bench's 100,000 users per
#       worker x 20,000 items) so the id maps stop growing but the event log
#       keeps growing;
#     - a training loop: relmf dim 16, 1 epoch on the serving dataset, then one
#       Score call on the new model (it is loaded into the cache), then delete
#       the previous model (evicting it), pause TRAIN_PAUSE s, repeat;
#     - debiasd's VmRSS from /proc, and its memtable, block cache and
#       loaded-model gauges from its /metrics endpoint, every SAMPLE seconds
#       (a failed scrape is recorded as missing and reported).
#  4. a table of the streams and the RSS samples (one per minute).
#
# Exit status: non-zero if any Score, ingest, train, score-after-train or
# delete call failed, if debiasd died, or if RSS grew after warm-up: the
# largest RSS sample of the last third of the run exceeds (1 + GROWTH) x the
# largest sample of the first third. Peaks, not single samples, are compared
# because RSS is a saw-tooth while RocksDB's 64 MB memtable fills with the
# ingest stream and is flushed; a leak raises the peaks. The sample at the end
# of the first third and the last sample are printed as well.
set -euo pipefail

BUILD=${1:-build}
DURATION=${DURATION:-600}
CAPACITY_SECONDS=${CAPACITY_SECONDS:-20}
LOAD=${LOAD:-0.8}
CONC=${CONC:-8}
CANDIDATES=${CANDIDATES:-100}
INGEST_RATE=${INGEST_RATE:-10}
INGEST_BATCH=${INGEST_BATCH:-500}
TRAIN_PAUSE=${TRAIN_PAUSE:-5}
SAMPLE=${SAMPLE:-10}
GROWTH=${GROWTH:-0.05}
NICE=${NICE:-10}
WORLD_USERS=${WORLD_USERS:-20000}
WORLD_ITEMS=${WORLD_ITEMS:-20000}
WORLD_CLICKS=${WORLD_CLICKS:-500000}

DEBIASD=$BUILD/server/debiasd
CTL=$BUILD/client/debiasctl
for b in "$DEBIASD" "$CTL"; do
  [[ -x $b ]] || { echo "soak: $b not built (ninja debiasd debiasctl)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "soak: python3 is required" >&2; exit 1; }
RUN=()
[[ $NICE != 0 ]] && RUN=(nice -n "$NICE")

TMP=$(mktemp -d)
SERVER_PID=""
BG_PIDS=()
cleanup() {
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "soak: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
log() { echo "soak: $(date -u +%H:%M:%S) $*" >&2; }
ctl() { "${RUN[@]}" "$CTL" "$@"; }
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$@"; }

START_DATE=$(date -u +"%Y-%m-%d %H:%M UTC")
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
log "start; nproc $(nproc), load $START_LOAD, temp $TMP"

METRICS_PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"${RUN[@]}" "$DEBIASD" --listen 127.0.0.1:0 --data_dir "$TMP/db" --port_file "$TMP/port" \
  --metrics_listen "127.0.0.1:$METRICS_PORT" --log_level warn >"$TMP/debiasd.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do [[ -s $TMP/port ]] && break; sleep 0.05; done
[[ -s $TMP/port ]] || { echo "soak: debiasd did not start" >&2; cat "$TMP/debiasd.log" >&2; exit 1; }
export DEBIAS_SERVER=127.0.0.1:$(cat "$TMP/port")
"$CTL" health --wait 30 >/dev/null

log "serving world: $WORLD_USERS users x $WORLD_ITEMS items, $WORLD_CLICKS clicks; relmf dim 64"
ctl synth --world mnar --users "$WORLD_USERS" --items "$WORLD_ITEMS" --power 0.5 \
  --expected-clicks "$WORLD_CLICKS" \
  --seed 1 --out "$TMP/world" --json >/dev/null
ctl ingest --dataset serve --format csv "$TMP/world/train.csv" --json >"$TMP/ingest-serve.json"
IFS=, read -r KEY_USER KEY_ITEM < <(sed -n 2p "$TMP/world/train.csv" | cut -d, -f1,2)
rm -rf "$TMP/world"
ctl train --dataset serve --loss relmf --param dim=64 --param epochs=1 --seed 1 --json \
  --timeout 3600 >"$TMP/train-serve.json"
MODEL=$(jget "$TMP/train-serve.json" "d['model_id']")

# bench_timed NAME ARGS...: `debiasctl bench ARGS --json` -> NAME.json, its wall
# time (start and end, epoch seconds) -> NAME.time; the exit status is ignored
# (errors are in the JSON).
bench_timed() {
  local name=$1
  shift
  local t0=$EPOCHREALTIME
  ctl bench "$@" --json >"$TMP/$name.json" 2>"$TMP/$name.err" || true
  echo "$t0 $EPOCHREALTIME" >"$TMP/$name.time"
}

log "capacity alone: bench score, $CONC workers, closed loop, ${CAPACITY_SECONDS} s"
bench_timed capacity-alone score --model "$MODEL" --candidates "$CANDIDATES" --concurrency "$CONC" \
  --warmup 2 --duration "$CAPACITY_SECONDS"

# The background streams start before the mixed capacity run and end with the soak.
BG_START=$EPOCHREALTIME
# Until the end of the soak; END is fixed once the soak starts (file "end").
ctl_alive() { [[ ! -s $TMP/end ]] || python3 -c "import time,sys; sys.exit(0 if time.time() < $(cat "$TMP/end") - 5 else 1)"; }

INGEST_SECONDS=$((DURATION + CAPACITY_SECONDS + 15))
bench_timed ingest ingest --dataset soak-ingest --batch "$INGEST_BATCH" --concurrency 1 --warmup 0 \
  --rate "$INGEST_RATE" --duration "$INGEST_SECONDS" &
INGEST_PID=$!
BG_PIDS+=($INGEST_PID)

# Training loop: one JSON line per iteration in train.jsonl.
(
  prev=""
  i=0
  while ctl_alive; do
    i=$((i + 1))
    t0=$EPOCHREALTIME
    ok_train=1 ok_score=1 ok_delete=1 id=""
    if ctl train --dataset serve --loss relmf --param dim=16 --param epochs=1 --seed "$i" \
         --json --timeout 600 >"$TMP/train-loop.json" 2>>"$TMP/train-loop.err"; then
      id=$(jget "$TMP/train-loop.json" "d['model_id']")
      ctl score --model "$id" --user "$KEY_USER" --items "$KEY_ITEM" --json >/dev/null \
        2>>"$TMP/train-loop.err" || ok_score=0
      if [[ -n $prev ]]; then
        ctl delete-model --model "$prev" >/dev/null 2>>"$TMP/train-loop.err" || ok_delete=0
      fi
      prev=$id
    else
      ok_train=0
    fi
    echo "{\"iteration\": $i, \"model\": \"$id\", \"train_ok\": $ok_train," \
      "\"score_ok\": $ok_score, \"delete_ok\": $ok_delete, \"start\": $t0," \
      "\"seconds\": $(python3 -c "print($EPOCHREALTIME - $t0)")}" >>"$TMP/train.jsonl"
    sleep "$TRAIN_PAUSE"
  done
) &
TRAIN_PID=$!
BG_PIDS+=($TRAIN_PID)

sleep 3
log "capacity in the mix (ingest + training running): bench score, $CONC workers, ${CAPACITY_SECONDS} s"
bench_timed capacity score --model "$MODEL" --candidates "$CANDIDATES" --concurrency "$CONC" \
  --warmup 2 --duration "$CAPACITY_SECONDS"
CAPACITY=$(jget "$TMP/capacity.json" "d['throughput']")
RATE=$(python3 -c "print(round($CAPACITY * $LOAD))")
log "capacity in the mix $CAPACITY calls/s; soak at $RATE calls/s for $DURATION s"

T0=$EPOCHREALTIME
END=$(python3 -c "print($T0 + $DURATION)")
echo "$END" >"$TMP/end"

# RSS sampler: "seconds_since_T0 rss_kb hwm_kb threads memtable_kb block_cache_kb
# loaded_models table_readers_kb" every SAMPLE s (the last four from debiasd's
# /metrics).
(
  t0_us=${T0/./}
  end_us=$(( ${T0/./} + DURATION * 1000000 ))
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    now_us=${EPOCHREALTIME/./}
    (( now_us <= end_us + 1000000 )) || break
    store=$(python3 -c "
import sys, urllib.request
want = ('debias_store_memtable_bytes', 'debias_store_block_cache_bytes', 'debias_loaded_models',
        'debias_store_table_readers_bytes')
v = dict.fromkeys(want, None)
try:
    for l in urllib.request.urlopen('http://127.0.0.1:$METRICS_PORT/metrics', timeout=5).read().decode().splitlines():
        k, _, x = l.partition(' ')
        if k in v: v[k] = float(x)
except OSError:
    pass
print(*('-' if v[k] is None else int(v[k] / (1 if k == want[2] else 1024)) for k in want))" 2>/dev/null || echo "- - - -")
    awk -v t="$(( (now_us - t0_us) / 100000 ))" -v s="$store" \
      '$1 == "VmRSS:" { r = $2 } $1 == "VmHWM:" { h = $2 } $1 == "Threads:" { n = $2 }
       END { printf "%.1f %d %d %d %s\n", t / 10, r, h, n, s }' "/proc/$SERVER_PID/status" >>"$TMP/rss.txt"
    sleep "$SAMPLE"
  done
) &
BG_PIDS+=($!)

bench_timed score score --model "$MODEL" --candidates "$CANDIDATES" --concurrency "$CONC" \
  --warmup 0 --rate "$RATE" --duration "$DURATION" &
SCORE_PID=$!
BG_PIDS+=($SCORE_PID)

STATUS=0
wait "$SCORE_PID" || true
wait "$INGEST_PID" || true
wait "$TRAIN_PID" || true
log "mixed load done"
echo "$BG_START" >"$TMP/bg_start"
ALIVE=1
kill -0 "$SERVER_PID" 2>/dev/null && "$CTL" health --wait 5 >/dev/null || ALIVE=0
sleep 1
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
touch "$TMP/train.jsonl"

python3 - "$TMP" "$START_DATE" "$(nproc)" "$START_LOAD" "$END_LOAD" "$DURATION" "$CAPACITY" \
  "$RATE" "$GROWTH" "$ALIVE" "$CONC" "$CANDIDATES" "$INGEST_RATE" "$INGEST_BATCH" "$NICE" <<'PY' || STATUS=1
import json, os, sys
(tmp, date, nproc, load0, load1, duration, capacity, rate, growth, alive, conc, cand,
 irate, ibatch, nice) = sys.argv[1:]
duration, capacity, rate, growth = float(duration), float(capacity), float(rate), float(growth)

def load(name):
    try:
        return json.load(open(os.path.join(tmp, name)))
    except (OSError, ValueError):
        return None

cap_alone, cap, score, ingest = (load(n) for n in (
    "capacity-alone.json", "capacity.json", "score.json", "ingest.json"))
def wall(name):
    try:
        t0, t1 = open(os.path.join(tmp, name + ".time")).read().split()
        return float(t1) - float(t0)
    except (OSError, ValueError):
        return None
trains = [json.loads(l) for l in open(os.path.join(tmp, "train.jsonl")) if l.strip()]
samples = []
for l in open(os.path.join(tmp, "rss.txt")):
    t, rss, hwm, thr, mem, cache, loaded, readers = l.split()
    # "-": the /metrics scrape of that sample failed.
    kb = lambda x: None if x == "-" else int(x) / 1024
    samples.append((float(t), int(rss) / 1024, int(hwm) / 1024, int(thr), kb(mem), kb(cache),
                    None if loaded == "-" else int(loaded), kb(readers)))

failures = []
print(f"Run {date}; nproc {nproc}; load average (1/5/15 min) {load0} at start, {load1} at end; "
      f"everything the script starts at nice {nice}; one run of {duration:.0f} s.")
print()
print("| stream | load | calls/s | p50 ms | p99 ms | p999 ms | max ms | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
def row(label, loadtxt, d, rate_text=None):
    if d is None:
        print(f"| {label} | {loadtxt} | no result | | | | | |")
        failures.append(f"{label}: no result")
        return
    l = d["latency_ms"]
    errs = d["errors"]
    codes = ", ".join(f"{k} {v}" for k, v in d.get("errors_by_code", {}).items())
    rate_text = rate_text or f"{d['throughput']:,.0f}"
    print(f"| {label} | {loadtxt} | {rate_text} | {l['p50']:.2f} | {l['p99']:.2f} "
          f"| {l['p999']:.2f} | {l['max']:.1f} | {errs}{' (' + codes + ')' if codes else ''} |")
    if errs:
        failures.append(f"{label}: {errs} errors ({codes})")
row(f"Score, {cand} candidates: capacity alone", f"closed loop, {conc} workers, nothing else running",
    cap_alone)
row(f"Score, {cand} candidates: capacity in the mix",
    f"closed loop, {conc} workers, with the ingest stream and the training loop", cap)
# Open loop: every scheduled call is made, late ones late, so calls / duration
# is the target by construction; calls / wall time (the bench process, key
# loading included) shows whether the server kept up.
sw = wall("score")
score_rate = (f"{score['calls'] / sw:,.0f} over {sw:.0f} s wall (target {rate:,.0f})"
              if score and sw else None)
row(f"Score, {cand} candidates: soak", f"open loop at {rate:,.0f} calls/s "
    f"({100 * rate / capacity:.0f}% of the capacity in the mix), {conc} workers", score, score_rate)
iw = wall("ingest")
ingest_rate = (f"{ingest['calls'] / iw:,.1f} over {iw:.0f} s wall ({ingest['events_per_second']:,.0f} "
               f"events/s acknowledged)" if ingest and iw else None)
row(f"Ingest, {ibatch} events per call (one stream each)",
    f"open loop at {irate} calls/s, 1 worker, during both the mixed capacity run and the soak",
    ingest, ingest_rate)
n_train = len(trains)
bad = [t for t in trains if not (t["train_ok"] and t["score_ok"] and t["delete_ok"])]
secs = sorted(t["seconds"] for t in trains if t["train_ok"])
med = secs[len(secs) // 2] if secs else 0
print(f"| Train relmf dim 16 (1 epoch on the serving dataset) + Score on it + delete the previous "
      f"| loop, {n_train} iterations | — | median {med:.1f} s per iteration | "
      f"max {max(secs) if secs else 0:.1f} s | | | {len(bad)} |")
if bad:
    failures.append(f"training loop: {len(bad)} failed iterations")
if alive != "1":
    failures.append("debiasd is not healthy after the run")

third = duration / 3
first = [s for s in samples if s[0] <= third]
last = [s for s in samples if s[0] >= 2 * third]
if not first or not last:
    failures.append("too few RSS samples")
else:
    ref, peak = max(s[1] for s in first), max(s[1] for s in last)
    at_third = min(first, key=lambda s: abs(s[0] - third))
    g = peak / ref - 1
    print()
    print(f"debiasd RSS: peak of the first third {ref:.0f} MB, sample at {at_third[0]:.0f} s "
          f"{at_third[1]:.0f} MB; peak of the last third {peak:.0f} MB ({100 * g:+.1f}% over the "
          f"first third's peak; limit {100 * growth:+.0f}%); last sample {samples[-1][1]:.0f} MB; "
          f"VmHWM {samples[-1][2]:.0f} MB; threads {samples[0][3]}–{max(s[3] for s in samples)}.")
    if g > growth:
        failures.append(f"RSS grew {100 * g:.1f}% after warm-up (limit {100 * growth:.0f}%)")
    # One column per minute (the sample nearest to each multiple of 60 s).
    cols = []
    for m in range(0, int(duration) + 1, 60):
        near = min(samples, key=lambda s: abs(s[0] - m))
        if abs(near[0] - m) <= 30 and near not in cols:
            cols.append(near)
    print()
    print("| t, s | " + " | ".join(f"{s[0]:.0f}" for s in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    print("| debiasd RSS, MB | " + " | ".join(f"{s[1]:.0f}" for s in cols) + " |")
    fmt = lambda x: "—" if x is None else f"{x:.0f}"
    print("| RocksDB memtables, MB | " + " | ".join(fmt(s[4]) for s in cols) + " |")
    print("| RocksDB block cache, MB | " + " | ".join(fmt(s[5]) for s in cols) + " |")
    print("| RSS less memtables and block cache, MB | " + " | ".join(
        fmt(None if s[4] is None or s[5] is None else s[1] - s[4] - s[5]) for s in cols) + " |")
    print("| models loaded | " + " | ".join(fmt(s[6]) for s in cols) + " |")
    print("| RocksDB table readers (index and filter blocks), MB | " + " | ".join(
        fmt(s[7]) for s in cols) + " |")
    missing = sum(1 for s in samples if None in s[4:7])
    if missing:
        print()
        print(f"NOTE: {missing} of {len(samples)} samples have no /metrics values (scrape failed).")
if score and score["latency_ms"]["max"] > 1000:
    print()
    print(f"NOTE: the open-loop Score stream fell up to {score['latency_ms']['max'] / 1000:.1f} s "
          f"behind its schedule (latency is measured from the intended start): the server did "
          f"not sustain {rate:,.0f} calls/s with the ingest and training running.")
print()
if failures:
    print("**FAIL**: " + "; ".join(failures))
    sys.exit(1)
print("**PASS**: zero errors in every stream; RSS stopped growing after warm-up.")
PY
exit $STATUS
