#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz for a bounded time each (issue 9).
#
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [--update-corpus] [--only NAME]...
#   SECONDS_PER_TARGET  -max_total_time of each target (default 60)
#   --update-corpus     merge the new inputs that add coverage into the
#                       checked-in seed corpora tests/fuzz/corpus/<target>/
#                       (default: into the scratch dir only)
#   --only NAME         run only this target (loaders, snapshots, estimators,
#                       requests); repeatable
# env: BUILD_DIR  the clang build (default: <repo>/build-fuzz)
#      OUT_DIR    scratch output (default: BUILD_DIR/fuzz-out): per target
#                 new/ (inputs found this run), merged/ (seeds + new inputs
#                 that add coverage), artifacts/ (crash-*, timeout-*, ...)
#                 and the libFuzzer log
#      JOBS       build parallelism (default 2); NICE niceness (default 10)
#      FUZZ_ARGS  extra libFuzzer flags (e.g. "-max_len=8192")
#
# Configures BUILD_DIR with clang (CC=clang CXX=clang++), Debug at -O1 with
# -DDEBIAS_FUZZ=ON; the libraries get -fsanitize=fuzzer-no-link,address,
# undefined so coverage and the sanitizers reach core/ and server/. Builds
# only the fuzz targets. Exits 1 if any target crashed, leaked, timed out
# or failed a check, printing the reproducer path; replay one with
#   BUILD_DIR/tests/fuzz/fuzz_NAME PATH
# (or the gcc build's replay binary, which takes files and directories).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_TARGET=60
UPDATE=0
ONLY=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --update-corpus) UPDATE=1 ;;
    --only) ONLY+=("$2"); shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *[!0-9]*|'') echo "fuzz.sh: unknown argument '$1'" >&2; exit 2 ;;
    *) SECONDS_PER_TARGET=$1 ;;
  esac
  shift
done
BUILD_DIR=${BUILD_DIR:-$ROOT/build-fuzz}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/fuzz-out}
JOBS=${JOBS:-2}
NICE=${NICE:-10}
TARGETS=(loaders snapshots estimators requests)
[[ ${#ONLY[@]} -gt 0 ]] && TARGETS=("${ONLY[@]}")

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (apt-get install clang)" >&2; exit 2; }

SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=Debug -DDEBIAS_FUZZ=ON -DDEBIAS_BUILD_BENCH=OFF \
  "-DCMAKE_CXX_FLAGS=-O1 -fno-omit-frame-pointer $SAN" \
  "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
nice -n "$NICE" ninja -C "$BUILD_DIR" -j"$JOBS" fuzz_targets
# The request target needs the server libraries to build under clang (see
# tests/fuzz/CMakeLists.txt); skipped with a warning when they do not.
if [[ " ${TARGETS[*]} " == *" requests "* ]]; then
  nice -n "$NICE" ninja -C "$BUILD_DIR" -j"$JOBS" fuzz_requests >"$BUILD_DIR/fuzz_requests_build.log" 2>&1 ||
    echo "fuzz.sh: fuzz_requests does not build with clang here (see $BUILD_DIR/fuzz_requests_build.log);" \
      "$([[ -x $BUILD_DIR/tests/fuzz/fuzz_requests ]] && echo 'running the existing binary' || echo 'skipping it')" >&2
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
summary=()
for t in "${TARGETS[@]}"; do
  bin=$BUILD_DIR/tests/fuzz/fuzz_$t
  seeds=$ROOT/tests/fuzz/corpus/$t
  if [[ ! -x $bin ]]; then
    echo "fuzz.sh: $bin not built; skipping $t" >&2
    summary+=("$t: not built")
    continue
  fi
  out=$OUT_DIR/$t
  rm -rf "$out/new" "$out/merged"
  mkdir -p "$out/new" "$out/merged" "$out/artifacts"
  echo "=== fuzz_$t for ${SECONDS_PER_TARGET}s (log: $out/fuzz.log)"
  rc=0
  # shellcheck disable=SC2086
  nice -n "$NICE" "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
    ${FUZZ_ARGS:-} "$out/new" "$seeds" >"$out/fuzz.log" 2>&1 || rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$out/fuzz.log" | tail -1 || true)
  [[ -z $done_line ]] && done_line=$(grep -E '^#[0-9]+[[:space:]]' "$out/fuzz.log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/fuzz.log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$done_line")
  line="$t: ${execs:-?} execs, ${rate:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
  if [[ $rc -ne 0 ]]; then
    failed=1
    grep -E 'ERROR: |FUZZ_CHECK failed|runtime error|SUMMARY' "$out/fuzz.log" | head -5 >&2 || true
    for a in "$out"/artifacts/*; do
      [[ -e $a ]] && echo "REPRODUCER ($t): $a   (replay: $bin $a)" >&2
    done
    line="$line -- FAILED (exit $rc)"
  fi
  summary+=("$line")
  # Keep what this run found: seeds + new inputs that add coverage.
  nice -n "$NICE" "$bin" -merge=1 "$out/merged" "$seeds" "$out/new" >"$out/merge.log" 2>&1 || true
  if [[ $UPDATE -eq 1 && $rc -eq 0 ]]; then
    nice -n "$NICE" "$bin" -merge=1 "$seeds" "$out/new" >>"$out/merge.log" 2>&1 || true
    echo "merged new inputs into $seeds"
  fi
done

echo "=== summary (${SECONDS_PER_TARGET}s per target; outputs in $OUT_DIR)"
printf '%s\n' "${summary[@]}"
exit $failed
