#!/usr/bin/env bash
# Scaling measurements for docs/SCALING.md, made with the real binaries
# (debiasctl synth / ingest / stats / train / score / bench and debiasd) on
# loopback. Prints Markdown tables on stdout; progress on stderr.
#
# usage: scripts/measure_scaling.sh [BUILD_DIR]          (default: build)
# needs: BUILD_DIR/{server/debiasd,client/debiasctl}; python3
# env:   SIZES="250000 1000000 5000000"  events per store (one fresh store each)
#        CATALOGUES="10000 100000 1000000"  items of the TopK / model-size worlds
#        CAT_CLICKS      expected clicks per catalogue world (500000; 1000000 from 1M items)
#        COPIES=4        same-size models loaded one after another (RSS per model)
#        DIM=32          relmf dimension of the trained models (plus one 4*DIM model)
#        NICE=10         niceness of everything the script starts (0: none)
#        KEEP=1          keep the temp dir (worlds, stores, logs, JSON)
# About 6-10 minutes on the 2-core development machine.
#
# What it measures:
#  1. Events: for each size N, a fresh debiasd ingests the first N clicks of
#     one synthetic MNAR world (100,000 users x 20,000 items); the ingest rate
#     is debiasctl's (CSV parsing excluded). The server is then restarted, which
#     makes RocksDB flush the recovered write-ahead log into SST files, and the
#     store's bytes on disk are read (SST and WAL apart) with no model in it;
#     the restart's time to SERVING and the idle RSS after it are recorded.
#     Then relmf (dim DIM, 1 epoch) trains on the N events: wall time from the
#     client, the job's own set-up and epoch seconds, and debiasd's peak RSS.
#  3. Snapshots: each catalogue model is exported (`debiasctl model export`)
#     and imported into a second, empty debiasd (a scoring replica): file
#     size, export and import time, the replica's first TopK (model load), its
#     RSS, and what TopK --exclude-seen answers there (it needs the dataset).
#  2. Models: one store with three catalogue worlds (2,000 users; CATALOGUES
#     items; exposure power 0.5 so that most items get clicks), a relmf model
#     per catalogue, COPIES more models of the middle catalogue (seeds differ)
#     and one of dim 4*DIM. debiasd is restarted (models load on first use,
#     as on a scoring replica), then the copies are loaded one by one with a
#     single Score call each (VmRSS after each), and each catalogue model is
#     driven by `debiasctl bench topk --k 100 --concurrency 1` for 5 s (its
#     latency; VmRSS after it gives the RSS of that model).
set -euo pipefail

BUILD=${1:-build}
SIZES=${SIZES:-"250000 1000000 5000000"}
CATALOGUES=${CATALOGUES:-"10000 100000 1000000"}
COPIES=${COPIES:-4}
DIM=${DIM:-32}
NICE=${NICE:-10}

DEBIASD=$BUILD/server/debiasd
CTL=$BUILD/client/debiasctl
for b in "$DEBIASD" "$CTL"; do
  [[ -x $b ]] || { echo "measure_scaling: $b not built (ninja debiasd debiasctl)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "measure_scaling: python3 is required" >&2; exit 1; }
RUN=()
[[ $NICE != 0 ]] && RUN=(nice -n "$NICE")

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [[ -n ${TRAINER_PID:-} && ${TRAINER_PID:-} != "$SERVER_PID" ]]; then
    kill -TERM "$TRAINER_PID" 2>/dev/null || true
    wait "$TRAINER_PID" 2>/dev/null || true
  fi
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "measure_scaling: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
log() { echo "measure_scaling: $(date -u +%H:%M:%S) $*" >&2; }
now() { date +%s.%N; }
ctl() { "${RUN[@]}" "$CTL" "$@"; }
R=$TMP/results.jsonl  # one JSON object per measurement
rec() { python3 -c 'import json,sys; print(json.dumps(dict(a.split("=",1) for a in sys.argv[1:])))' "$@" >>"$R"; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# Bytes of a RocksDB dir: total, SST, WAL.
db_bytes() {
  local total sst wal
  total=$(du -sb "$1" | cut -f1)
  sst=$(find "$1" -name '*.sst' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  wal=$(find "$1" -name '*.log' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  echo "$total $sst $wal"
}

start_server() {  # start_server DATA_DIR NAME; sets SERVER_PID, DEBIAS_SERVER and STARTUP_S (s to SERVING)
  local dir=$1 name=$2 t0
  rm -f "$TMP/$name.port"
  t0=$(now)
  "${RUN[@]}" "$DEBIASD" --listen 127.0.0.1:0 --data_dir "$dir" --port_file "$TMP/$name.port" \
    --log_level warn >>"$TMP/$name.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do [[ -s $TMP/$name.port ]] && break; sleep 0.05; done
  [[ -s $TMP/$name.port ]] || { echo "measure_scaling: debiasd did not start; see $TMP/$name.log" >&2; exit 1; }
  export DEBIAS_SERVER=127.0.0.1:$(cat "$TMP/$name.port")
  "$CTL" health --wait 60 >/dev/null
  STARTUP_S=$(python3 -c "print(f'{$(now) - $t0:.3f}')")
}
stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || { echo "measure_scaling: debiasd exited non-zero" >&2; exit 1; }
  SERVER_PID=""
}
train() {  # train DATASET DIM SEED OUT_JSON; prints client wall seconds
  local t0
  t0=$(now)
  ctl train --dataset "$1" --loss relmf --param dim="$2" --param epochs=1 --seed "$3" \
    --json --timeout 3600 >"$4"
  python3 -c "print(f'{$(now) - $t0:.3f}')"
}
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$@"; }

START_DATE=$(date -u +"%Y-%m-%d %H:%M UTC")
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
log "start; nproc $(nproc), load $START_LOAD, temp $TMP"

# --- 1. events: store bytes, ingest rate, restart, training time ------------
MAXN=0
for n in $SIZES; do (( n > MAXN )) && MAXN=$n; done
log "synth: 100000 users x 20000 items, ~$MAXN clicks"
ctl synth --world mnar --users 100000 --items 20000 --expected-clicks "$((MAXN + MAXN / 50))" \
  --seed 1 --out "$TMP/world" --json >"$TMP/synth.json"
CSV=$TMP/world/train.csv
for n in $SIZES; do
  head -n "$((n + 1))" "$CSV" >"$TMP/events.csv"
  rows=$(($(wc -l <"$TMP/events.csv") - 1))
  db=$TMP/db-$n
  start_server "$db" "ev$n"
  log "events $rows: ingest"
  ctl ingest --dataset ev --format csv "$TMP/events.csv" --json >"$TMP/ingest-$n.json"
  ingest_hwm=$(status_kb "$SERVER_PID" VmHWM)
  read -r live_total live_sst live_wal < <(db_bytes "$db")
  stop_server
  start_server "$db" "ev$n"
  restart_s=$STARTUP_S
  idle_rss=$(status_kb "$SERVER_PID" VmRSS)
  read -r rest_total rest_sst rest_wal < <(db_bytes "$db")
  ctl stats --dataset ev --json >"$TMP/stats-$n.json"
  log "events $rows: train relmf dim $DIM"
  train_s=$(train ev "$DIM" 1 "$TMP/train-$n.json")
  train_hwm=$(status_kb "$SERVER_PID" VmHWM)
  stop_server
  read -r model_total _ _ < <(db_bytes "$db")
  rec kind=events events="$rows" csv_bytes="$(stat -c %s "$TMP/events.csv")" \
    ingest_eps="$(jget "$TMP/ingest-$n.json" "d['events_per_second']")" \
    ingest_s="$(jget "$TMP/ingest-$n.json" "d['seconds']")" ingest_hwm_kb="$ingest_hwm" \
    live_total="$live_total" live_wal="$live_wal" rest_total="$rest_total" rest_sst="$rest_sst" \
    rest_wal="$rest_wal" restart_s="$restart_s" idle_rss_kb="$idle_rss" \
    users="$(jget "$TMP/stats-$n.json" "d['users']")" items="$(jget "$TMP/stats-$n.json" "d['items']")" \
    train_s="$train_s" train_setup_s="$(jget "$TMP/train-$n.json" "d['diagnostics']['setup_seconds']")" \
    train_epoch_s="$(jget "$TMP/train-$n.json" "d['diagnostics']['epoch_seconds']")" \
    train_hwm_kb="$train_hwm" with_model_total="$model_total"
  rm -rf "$db" "$TMP/events.csv"
done
rm -rf "$TMP/world"

# --- 2. models: RSS per loaded model, TopK latency vs catalogue -------------
db=$TMP/db-models
start_server "$db" models
CATS=($CATALOGUES)
MID=${CATS[$(( ${#CATS[@]} / 2 ))]}
declare -A CAT_MODEL
for c in "${CATS[@]}"; do
  clicks=${CAT_CLICKS:-500000}
  (( c >= 1000000 )) && clicks=${CAT_CLICKS:-1000000}
  log "catalogue $c items: synth ($clicks clicks), ingest, train"
  ctl synth --world mnar --users 2000 --items "$c" --power 0.5 --expected-clicks "$clicks" \
    --seed 2 --out "$TMP/cat-$c" --json >/dev/null
  ctl ingest --dataset "cat$c" --format csv "$TMP/cat-$c/train.csv" --json >/dev/null
  sed -n 2p "$TMP/cat-$c/train.csv" | cut -d, -f1,2 >"$TMP/cat-$c.key"
  rm -rf "$TMP/cat-$c"
  train "cat$c" "$DIM" 1 "$TMP/model-cat$c.json" >"$TMP/model-cat$c.s"
  CAT_MODEL[$c]=$(jget "$TMP/model-cat$c.json" "d['model_id']")
done
COPY_IDS=()
log "training $COPIES copies (dim $DIM) and one dim $((4 * DIM)) model on cat$MID"
for s in $(seq 1 "$COPIES"); do
  train "cat$MID" "$DIM" "$((100 + s))" "$TMP/copy-$s.json" >/dev/null
  COPY_IDS+=("$(jget "$TMP/copy-$s.json" "d['model_id']")")
done
train "cat$MID" "$((4 * DIM))" 1 "$TMP/wide.json" >"$TMP/wide.s"
WIDE=$(jget "$TMP/wide.json" "d['model_id']")
stop_server
read -r models_db_total _ _ < <(db_bytes "$db")

start_server "$db" models
restart_s=$STARTUP_S
base_rss=$(status_kb "$SERVER_PID" VmRSS)
rec kind=models_base rss_kb="$base_rss" restart_s="$restart_s" db_total="$models_db_total"
IFS=, read -r MU MI <"$TMP/cat-$MID.key"
k=0
for id in "${COPY_IDS[@]}"; do
  k=$((k + 1))
  ctl score --model "$id" --user "$MU" --items "$MI" --json >/dev/null
  rec kind=copy loaded="$k" model="$id" rss_kb="$(status_kb "$SERVER_PID" VmRSS)" \
    users="$(jget "$TMP/copy-$k.json" "d['users']")" items="$(jget "$TMP/copy-$k.json" "d['items']")" dim="$DIM"
done
topk() {  # topk MODEL NAME DIM TRAIN_JSON TRAIN_S
  local before after
  before=$(status_kb "$SERVER_PID" VmRSS)
  ctl bench topk --model "$1" --k 100 --concurrency 1 --warmup 1 --duration 5 \
    --key-events 20000 --json >"$TMP/topk-$2.json" || true
  after=$(status_kb "$SERVER_PID" VmRSS)
  rec kind=topk name="$2" model="$1" dim="$3" rss_before_kb="$before" rss_after_kb="$after" \
    users="$(jget "$4" "d['users']")" items="$(jget "$4" "d['items']")" train_s="$5" \
    train_events="$(jget "$4" "d['diagnostics']['train_events']")" \
    p50="$(jget "$TMP/topk-$2.json" "d['latency_ms']['p50']")" \
    p99="$(jget "$TMP/topk-$2.json" "d['latency_ms']['p99']")" \
    cps="$(jget "$TMP/topk-$2.json" "d['throughput']")" errors="$(jget "$TMP/topk-$2.json" "d['errors']")"
}
for c in "${CATS[@]}"; do
  log "topk over catalogue $c"
  topk "${CAT_MODEL[$c]}" "cat$c" "$DIM" "$TMP/model-cat$c.json" "$(cat "$TMP/model-cat$c.s")"
done
log "topk with the dim $((4 * DIM)) model"
topk "$WIDE" "wide$MID" "$((4 * DIM))" "$TMP/wide.json" "$(cat "$TMP/wide.s")"
final_rss=$(status_kb "$SERVER_PID" VmRSS)
rec kind=models_end rss_kb="$final_rss"

# --- 3. snapshots: export from the training server, import into a replica ---
TRAINER=$DEBIAS_SERVER
TRAINER_PID=$SERVER_PID
for c in "${CATS[@]}"; do
  t0=$(now)
  ctl model export --model "${CAT_MODEL[$c]}" --out "$TMP/snap-$c.pb" --timeout 600 --json \
    >"$TMP/export-$c.json"
  rec kind=export name="cat$c" seconds="$(python3 -c "print($(now) - $t0)")" \
    bytes="$(stat -c %s "$TMP/snap-$c.pb")"
done
log "replica: a fresh debiasd with an empty store imports the snapshots"
SERVER_PID=""
start_server "$TMP/db-replica" replica
REPLICA_PID=$SERVER_PID
rec kind=replica_base rss_kb="$(status_kb "$REPLICA_PID" VmRSS)" start_s="$STARTUP_S"
for c in "${CATS[@]}"; do
  t0=$(now)
  ctl model import "$TMP/snap-$c.pb" --timeout 600 --json >"$TMP/import-$c.json"
  import_s=$(python3 -c "print($(now) - $t0)")
  id=$(jget "$TMP/import-$c.json" "d.get('model_id', d.get('id'))")
  IFS=, read -r u i <"$TMP/cat-$c.key"
  t0=$(now)
  score_ok=1
  ctl topk --model "$id" --user "$u" --k 100 --json >/dev/null 2>"$TMP/replica-topk-$c.err" || score_ok=0
  first_s=$(python3 -c "print($(now) - $t0)")
  seen_err=$(ctl topk --model "$id" --user "$u" --k 100 --exclude-seen 2>&1 >/dev/null | head -c 200 || true)
  rec kind=import name="cat$c" seconds="$import_s" first_topk_s="$first_s" topk_ok="$score_ok" \
    rss_kb="$(status_kb "$REPLICA_PID" VmRSS)" exclude_seen="${seen_err:-ok}"
done
stop_server
SERVER_PID=$TRAINER_PID
export DEBIAS_SERVER=$TRAINER
stop_server
TRAINER_PID=""

END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
log "done; load $END_LOAD"

python3 - "$R" "$START_DATE" "$(nproc)" "$START_LOAD" "$END_LOAD" "$DIM" "$NICE" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
date, nproc, load0, load1, dim, nice = sys.argv[2:8]
f = lambda r, k: float(r[k])
MB = 1024 * 1024
print(f"Run {date}; nproc {nproc}; load average (1/5/15 min) {load0} at start, {load1} at end; "
      f"everything the script starts at nice {nice}; one run.")
print()
print("**Store, ingest, restart and training vs events** (synthetic MNAR world, "
      f"100,000 users x 20,000 items; first N clicks; relmf dim {dim}, 1 epoch):")
print()
print("| events | users | CSV bytes/event | ingest events/s | store bytes/event at rest "
      "(after restart; SST + WAL) | of which WAL | store bytes/event right after ingest (WAL "
      "+ memtable flushes) |")
print("|---:|---:|---:|---:|---:|---:|---:|")
ev = [r for r in rows if r["kind"] == "events"]
for r in ev:
    n = f(r, "events")
    print(f"| {n:,.0f} | {f(r,'users'):,.0f} | {f(r,'csv_bytes')/n:.1f} | {f(r,'ingest_eps'):,.0f} "
          f"| {f(r,'rest_total')/n:.1f} | {f(r,'rest_wal')/n:.1f} | {f(r,'live_total')/n:.1f} |")
print()
print("| events | restart to SERVING, s | debiasd RSS idle after restart, MB "
      "| debiasd peak RSS during ingest, MB | peak RSS after training, MB "
      "| train wall s, client (job set-up + epoch) |")
print("|---:|---:|---:|---:|---:|---:|")
for r in ev:
    print(f"| {f(r,'events'):,.0f} | {f(r,'restart_s'):.2f} | {f(r,'idle_rss_kb')/1024:.0f} "
          f"| {f(r,'ingest_hwm_kb')/1024:.0f} | {f(r,'train_hwm_kb')/1024:.0f} "
          f"| {f(r,'train_s'):.1f} ({f(r,'train_setup_s'):.1f} + {f(r,'train_epoch_s'):.1f}) |")
print()
base = next(r for r in rows if r["kind"] == "models_base")
copies = [r for r in rows if r["kind"] == "copy"]
print(f"**debiasd RSS vs loaded models** (restarted server, models loaded on first use; "
      f"base RSS {f(base,'rss_kb')/1024:.0f} MB with {f(base,'db_total')/MB:.0f} MB store, "
      f"restart {f(base,'restart_s'):.2f} s):")
print()
if copies:
    c0 = copies[0]
    params = (f(c0, "users") + f(c0, "items")) * int(c0["dim"]) * 4 / MB
    print(f"Same-size models: relmf dim {c0['dim']}, {f(c0,'users'):,.0f} users x "
          f"{f(c0,'items'):,.0f} items ((users + items) x dim x 4 bytes = {params:.1f} MB of factors).")
    print()
    print("| models loaded | debiasd RSS, MB | increase over base, MB |")
    print("|---:|---:|---:|")
    for r in copies:
        print(f"| {r['loaded']} | {f(r,'rss_kb')/1024:.0f} | {(f(r,'rss_kb') - f(base,'rss_kb'))/1024:.0f} |")
    if len(copies) > 1:
        slope = (f(copies[-1], "rss_kb") - f(copies[0], "rss_kb")) / 1024 / (len(copies) - 1)
        print()
        print(f"Marginal RSS per additional loaded model: {slope:.1f} MB "
              f"({slope / params:.2f}x its factor bytes).")
print()
print("**TopK k=100 latency and RSS vs catalogue and model size** (1 worker, closed loop, 5 s; "
      "catalogue worlds of 2,000 users, exposure power 0.5; RSS added = VmRSS after the run minus "
      "before, i.e. loading that model and serving it):")
print()
print("| model items | users | dim | factor MB ((users+items) x dim x 4) | training events | train wall s "
      "| TopK calls/s | p50 ms | p99 ms | errors | RSS added, MB |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in (r for r in rows if r["kind"] == "topk"):
    params = (f(r, "users") + f(r, "items")) * int(r["dim"]) * 4 / MB
    print(f"| {f(r,'items'):,.0f} | {f(r,'users'):,.0f} | {r['dim']} | {params:.1f} "
          f"| {f(r,'train_events'):,.0f} | {f(r,'train_s'):.1f} | {f(r,'cps'):,.0f} | {f(r,'p50'):.2f} "
          f"| {f(r,'p99'):.2f} | {r['errors']} | {(f(r,'rss_after_kb') - f(r,'rss_before_kb'))/1024:.0f} |")
end = next(r for r in rows if r["kind"] == "models_end")
print()
print(f"debiasd RSS with all {len(copies) + sum(1 for r in rows if r['kind'] == 'topk')} "
      f"models loaded: {f(end,'rss_kb')/1024:.0f} MB.")
exports = {r["name"]: r for r in rows if r["kind"] == "export"}
imports = [r for r in rows if r["kind"] == "import"]
topks = {r["name"]: r for r in rows if r["kind"] == "topk"}
if imports:
    rb = next(r for r in rows if r["kind"] == "replica_base")
    print()
    print("**Model snapshots: export from the training server, import into a scoring replica** "
          f"(a fresh debiasd with an empty store; RSS {f(rb,'rss_kb')/1024:.0f} MB before the first import; "
          "`debiasctl model export` / `model import`, wall time from the client):")
    print()
    print("| model items | snapshot MB | export s | import s | first TopK on the replica, s "
          "(loads the model) | replica RSS after, MB | TopK --exclude-seen on the replica |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for r in imports:
        e = exports[r["name"]]
        items = f(topks[r["name"]], "items") if r["name"] in topks else 0
        seen = r["exclude_seen"].replace("|", "/").strip()
        if "FAILED_PRECONDITION" in seen and "needs the training dataset" in seen:
            seen = "FAILED_PRECONDITION: needs the training dataset"
        print(f"| {items:,.0f} | {f(e,'bytes')/MB:.1f} | {f(e,'seconds'):.2f} | {f(r,'seconds'):.2f} "
              f"| {f(r,'first_topk_s'):.2f}{'' if r['topk_ok'] == '1' else ' (failed)'} "
              f"| {f(r,'rss_kb')/1024:.0f} | {seen} |")
PY
