#!/usr/bin/env bash
# Regenerates docs/results/dla.md: DLA (Ai et al., SIGIR 2018) position
# propensities for eta in {0.5, 1, 2} (3 world seeds each) next to regression-EM, result
# randomisation and the naive click-rate ratio on synthetic ClickLogWorld logs
# of 300,000 lists (the issue asks for at least 100,000), DLA alone at
# eta = 2 on 100,000 lists of the same worlds (the issue's minimum: there the
# log's own sampling noise is near the 15% target), and DLA / naive-clicks /
# IPW-oracle rankers at eta = 1 over 5 seeds on logs of 100,000 lists. Took
# 34 minutes on a 2-core machine (2026-11-28).
# Usage: scripts/results_dla.sh [BUILD_DIR] [extra fidelity_dla flags]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
shift || true
ninja -C "$build" fidelity_dla
mkdir -p "$root/docs/results"
cd "$root"
nice "$build/bench/fidelity_dla" --seeds 3 --rank-seeds 5 --etas 0.5,1,2 --queries 30000 --rank-queries 10000 \
  --supplement-queries 10000 --supplement-etas 2 \
  --out docs/results/dla.md "$@"
