#!/usr/bin/env bash
# Regenerates docs/results/nbpo.md: BPR, BPO, NBPO, NBPOo (Yu & Qin, SIGIR
# 2020) on the authors' Amazon Electronics 14-core split, sample_rate in
# {3, 4} tuned on validation, 5 seeds x 200 epochs per method and rate.
# Takes ~5 CPU-minutes. Usage: scripts/results_nbpo.sh [BUILD_DIR] [extra
# fidelity_nbpo flags]. Needs ../shared/data/amazon-14core.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
shift || true
ninja -C "$build" fidelity_nbpo
if [ ! -d "$root/../shared/data/amazon-14core" ]; then
  echo "../shared/data/amazon-14core not found; nothing to do" >&2
  exit 0
fi
mkdir -p "$root/docs/results"
cd "$root"
nice "$build/bench/fidelity_nbpo" --seeds 5 --epochs 200 --rates 3,4 \
  --out docs/results/nbpo.md "$@"
