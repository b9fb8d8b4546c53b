#!/usr/bin/env bash
# Builds and runs the fidelity program of the unbiased evaluators (IPS /
# SNIPS / DR ranking metrics on the synthetic MNAR world, off-policy
# estimates on logged decisions and slates) and writes docs/results/eval.md,
# which docs/RESULTS.md includes. About 3 minutes on 2 cores.
# Usage: scripts/results_eval.sh [BUILD_DIR] [SEEDS] [BOOTSTRAP]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
seeds="${2:-100}"
bootstrap="${3:-1000}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DDEBIAS_BUILD_BENCH=ON
fi
nice ninja -C "$build" fidelity_eval
mkdir -p "$root/docs/results"
nice "$build/bench/fidelity_eval" --seeds="$seeds" --bootstrap="$bootstrap" \
  --out="$root/docs/results/eval.md"
echo "wrote $root/docs/results/eval.md"
