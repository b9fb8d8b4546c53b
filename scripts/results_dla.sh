#!/usr/bin/env bash
# Regenerates docs/results/dla.md: DLA (Ai et al., SIGIR 2018) position
# propensities for eta in {0.5, 1, 2} (3 world seeds each) next to regression-EM, result
# randomisation and the naive click-rate ratio, and DLA / naive-clicks /
# IPW-oracle rankers at eta = 1 over 5 seeds, on synthetic ClickLogWorld
# logs of 100,000 lists, plus DLA alone at eta = 2 on 300,000 lists (same
# worlds) to separate its sampling noise from its bias. Takes about 40
# minutes on a shared 2-core machine.
# Usage: scripts/results_dla.sh [BUILD_DIR] [extra fidelity_dla flags]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
shift || true
ninja -C "$build" fidelity_dla
mkdir -p "$root/docs/results"
cd "$root"
nice "$build/bench/fidelity_dla" --seeds 3 --rank-seeds 5 --etas 0.5,1,2 --supplement-queries 30000 \
  --out docs/results/dla.md "$@"
