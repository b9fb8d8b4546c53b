#!/usr/bin/env bash
# Regenerates docs/results/kb.md: kernel balancing (Li et al., ICLR 2024) on
# Coat, all twelve variants next to naive MF, IPS and DR-JL, 5 seeds (and
# the six Gaussian ones with the weight model frozen, an ablation), then
# adaptive vs random centres over 10 paired seeds on Coat and on a larger
# synthetic world (about 10 min of the run); docs/results/kb_grid.txt, the
# validation grid behind the "(val grid)" rows; and docs/results/kb_tune.txt,
# the one-at-a-time grid (`--tune`) its notes quote.
# Usage: scripts/results_kb.sh [BUILD_DIR] [extra fidelity_kb flags]
# Needs ../shared/data/coat (the program notes its absence and exits 0).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
shift || true
ninja -C "$build" fidelity_kb
mkdir -p "$root/docs/results"
cd "$root"
nice "$build/bench/fidelity_kb" --seeds 5 --compare-seeds 10 --larger-seeds 10 \
  --grid-out docs/results/kb_grid.txt --out docs/results/kb.md "$@"
# The validation grid that the fragment's notes quote (train split only).
nice "$build/bench/fidelity_kb" --tune --only IPS,DR-JL,KBIPS-Gau,KBIPS-Exp \
  > docs/results/kb_tune.txt
