#!/usr/bin/env bash
# Ingest benchmark (issue 2): end-to-end `debiasctl ingest` -> debiasd rate
# against the raw RocksDB floor (bench/ingest/raw_rocksdb_ingest) on the same
# CSV, plus debiasd's peak RSS. Prints a markdown table for docs/BENCHMARKS.md.
#
# usage: scripts/bench_ingest.sh [BUILD_DIR]        (default: build)
# needs: BUILD_DIR/{server/debiasd,client/debiasctl,bench/ingest/raw_rocksdb_ingest}
#        (cmake -DDEBIAS_BUILD_BENCH=ON; ninja debiasd debiasctl raw_rocksdb_ingest)
# env:   USERS=100000 ITEMS=20000 CLICKS=2000000 SEED=1  the synthetic world
#        RUNS=3          rounds; each round runs end-to-end then raw (alternating)
#        BATCH=8192      events per message / per WriteBatch (debiasctl's default)
#        KEEP=1          keep the temp dir (world, logs, per-run JSON)
#        NICE=10         niceness of everything the script starts (0: none)
#        SORTED=1        also run raw_rocksdb_ingest --sort-batch each round (the
#                        experiment behind the key-sorted-batch proposal)
#
# Every run gets a fresh database in a temp dir; the server listens on
# 127.0.0.1 with a free port. The rates are events/s over the span that
# excludes CSV parsing on both sides (debiasctl's "seconds"; the raw
# program's "seconds"). Peak RSS is debiasd's VmHWM read right after the ingest.
set -euo pipefail

BUILD=${1:-build}
USERS=${USERS:-100000}
ITEMS=${ITEMS:-20000}
CLICKS=${CLICKS:-2000000}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
BATCH=${BATCH:-8192}
NICE=${NICE:-10}

DEBIASD=$BUILD/server/debiasd
CTL=$BUILD/client/debiasctl
RAW=$BUILD/bench/ingest/raw_rocksdb_ingest
for b in "$DEBIASD" "$CTL" "$RAW"; do
  [[ -x $b ]] || { echo "bench_ingest: $b not built (see the header of $0)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "bench_ingest: python3 is required" >&2; exit 1; }

RUN=()
[[ $NICE != 0 ]] && RUN=(nice -n "$NICE")

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "bench_ingest: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# utime+stime of a process in seconds.
cpu_secs() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' \
    "/proc/$1/stat"
}

START_DATE=$(date -u +"%Y-%m-%d %H:%M UTC")
START_LOAD=$(loadavg)
echo "bench_ingest: $START_DATE, nproc $(nproc), load $START_LOAD, temp $TMP" >&2

WORLD=$TMP/world
"${RUN[@]}" "$CTL" synth --world mnar --users "$USERS" --items "$ITEMS" \
  --expected-clicks "$CLICKS" --seed "$SEED" --out "$WORLD" --json >"$TMP/synth.json"
CSV=$WORLD/train.csv
ROWS=$(($(wc -l <"$CSV") - 1))
echo "bench_ingest: $CSV: $ROWS events, $(du -h "$CSV" | cut -f1)" >&2

run_e2e() {  # $1 = round; appends one JSON line to $TMP/e2e.jsonl
  local dir=$TMP/e2e-$1 port_file=$TMP/e2e-$1.port
  "${RUN[@]}" "$DEBIASD" --listen 127.0.0.1:0 --data_dir "$dir" --port_file "$port_file" \
    >"$TMP/debiasd-$1.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do [[ -s $port_file ]] && break; sleep 0.1; done
  [[ -s $port_file ]] || { echo "bench_ingest: debiasd did not start; see $TMP/debiasd-$1.log" >&2; exit 1; }
  local server=127.0.0.1:$(cat "$port_file")
  "$CTL" health --wait 10 --server "$server" >/dev/null
  local load_before cpu0 cpu1 hwm
  load_before=$(loadavg)
  cpu0=$(cpu_secs "$SERVER_PID")
  # The client's CPU (user sys) via bash's time; it includes CSV parsing,
  # which the report subtracts using the raw program's parse CPU.
  local TIMEFORMAT='%3U %3S'
  { time "${RUN[@]}" "$CTL" ingest --dataset bench --format csv "$CSV" --json \
      --batch-size "$BATCH" --server "$server" >"$TMP/e2e-$1.json" 2>"$TMP/e2e-$1.err"; } \
    2>"$TMP/e2e-$1.time"
  cpu1=$(cpu_secs "$SERVER_PID")
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")  # kB
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || { echo "bench_ingest: debiasd exited non-zero; see $TMP/debiasd-$1.log" >&2; exit 1; }
  SERVER_PID=""
  python3 - "$TMP/e2e-$1.json" "$hwm" "$cpu0" "$cpu1" "$load_before" "$TMP/e2e-$1.time" \
    >>"$TMP/e2e.jsonl" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
user, sys_ = open(sys.argv[6]).read().split()[-2:]
print(json.dumps({"events": j["events_acknowledged"], "seconds": j["seconds"],
                  "events_per_second": j["events_per_second"],
                  "server_peak_rss_mb": int(sys.argv[2]) / 1024,
                  "server_cpu_seconds": float(sys.argv[4]) - float(sys.argv[3]),
                  "client_cpu_seconds_incl_parse": float(user) + float(sys_),
                  "load": sys.argv[5]}))
EOF
  rm -rf "$dir"
}

run_raw() {  # $1 = round, $2 = name (raw|sorted), rest = extra flags; appends to $TMP/$2.jsonl
  local r=$1 name=$2 load_before
  shift 2
  load_before=$(loadavg)
  "${RUN[@]}" "$RAW" --csv "$CSV" --db "$TMP/$name-$r" --batch-size "$BATCH" "$@" \
    >"$TMP/$name-$r.json"
  python3 - "$TMP/$name-$r.json" "$load_before" >>"$TMP/$name.jsonl" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
j["load"] = sys.argv[2]
print(json.dumps(j))
EOF
  rm -rf "${TMP:?}/$name-$r"
}

for r in $(seq 1 "$RUNS"); do
  run_e2e "$r"
  echo "bench_ingest: round $r e2e: $(tail -n1 "$TMP/e2e.jsonl")" >&2
  run_raw "$r" raw
  echo "bench_ingest: round $r raw: $(tail -n1 "$TMP/raw.jsonl")" >&2
  if [[ ${SORTED:-0} == 1 ]]; then
    run_raw "$r" sorted --sort-batch
    echo "bench_ingest: round $r raw --sort-batch: $(tail -n1 "$TMP/sorted.jsonl")" >&2
  fi
done

END_LOAD=$(loadavg)
python3 - "$TMP/e2e.jsonl" "$TMP/raw.jsonl" "$START_DATE" "$(nproc)" "$START_LOAD" \
  "$END_LOAD" "$ROWS" "$USERS" "$ITEMS" "$BATCH" "$RUNS" <<'EOF'
import json, statistics, sys
e2e = [json.loads(l) for l in open(sys.argv[1])]
raw = [json.loads(l) for l in open(sys.argv[2])]
date, nproc, load0, load1, rows, users, items, batch, runs = sys.argv[3:12]

def med(xs): return statistics.median(xs)
def spread(xs): return f"{min(xs):,.0f}–{max(xs):,.0f}"

er = [r["events_per_second"] for r in e2e]
rr = [r["events_per_second"] for r in raw]
ratios = [a / b for a, b in zip(er, rr)]  # per round, e2e vs the raw run right after it
rss = [r["server_peak_rss_mb"] for r in e2e]
cpu = [r["server_cpu_seconds"] / r["seconds"] for r in e2e]
# CPU microseconds per event: contention-robust, unlike the rates. The
# client's parse CPU is taken from the raw run of the same round (same loader,
# same file).
us = lambda secs, r: 1e6 * secs / r["events"]
srv_us = [us(a["server_cpu_seconds"], a) for a in e2e]
cli_us = [us(max(0.0, a["client_cpu_seconds_incl_parse"] - b["load_cpu_seconds"]), a)
          for a, b in zip(e2e, raw)]
e2e_us = [s + c for s, c in zip(srv_us, cli_us)]
raw_us = [us(b["cpu_seconds"], b) for b in raw]
ratio = med(er) / med(rr)

def verdict(ok): return "met" if ok else "**not met**"
print(f"Run {date}; nproc {nproc}; load average (1/5/15 min) {load0} at start, {load1} at end.")
print(f"{int(rows):,} events (synth mnar, {int(users):,} users x {int(items):,} items), "
      f"batch {int(batch):,}, {runs} alternating rounds; median (min–max).")
print()
print("| measure | median | spread (min–max) | target |")
print("|---|---:|---:|---|")
print(f"| end-to-end (debiasctl -> debiasd), events/s | {med(er):,.0f} | {spread(er)} "
      f"| >= 300,000: {verdict(med(er) >= 300000)} |")
print(f"| raw RocksDB WriteBatch, events/s | {med(rr):,.0f} | {spread(rr)} | |")
print(f"| ratio end-to-end / raw | {ratio:.2f} | {min(ratios):.2f}–{max(ratios):.2f} (per round) "
      f"| >= 0.50: {verdict(ratio >= 0.5)} |")
print(f"| debiasd peak RSS (VmHWM), MB | {med(rss):,.0f} | {min(rss):,.0f}–{max(rss):,.0f} "
      f"| < 512: {verdict(med(rss) < 512)} |")
print(f"| debiasd CPU / ingest wall time | {med(cpu):.2f} | {min(cpu):.2f}–{max(cpu):.2f} | |")
def row(name, xs): print(f"| {name} | {med(xs):.2f} | {min(xs):.2f}–{max(xs):.2f} | |")
row("CPU µs/event: debiasd (all threads)", srv_us)
row("CPU µs/event: debiasctl (excl. CSV parsing)", cli_us)
row("CPU µs/event: end-to-end total", e2e_us)
row("CPU µs/event: raw RocksDB (all threads)", raw_us)
print(f"| CPU ratio raw / end-to-end | {med(raw_us) / med(e2e_us):.2f} | | |")
import os
sorted_path = os.path.join(os.path.dirname(sys.argv[2]), "sorted.jsonl")
if os.path.exists(sorted_path):
    srt = [json.loads(l) for l in open(sorted_path)]
    sr = [r["events_per_second"] for r in srt]
    print(f"| raw RocksDB, key-sorted batches (--sort-batch), events/s | {med(sr):,.0f} "
          f"| {spread(sr)} | |")
    row("CPU µs/event: raw RocksDB, key-sorted batches", [us(b["cpu_seconds"], b) for b in srt])
print()
print("Per run (round: e2e events/s, raw events/s, load before each):")
for k, (a, b) in enumerate(zip(e2e, raw), 1):
    print(f"- round {k}: e2e {a['events_per_second']:,.0f} ({a['seconds']:.2f} s, load {a['load']}), "
          f"raw {b['events_per_second']:,.0f} ({b['seconds']:.2f} s, load {b['load']})")
EOF
