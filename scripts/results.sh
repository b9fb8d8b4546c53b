#!/usr/bin/env bash
# Rebuilds docs/RESULTS.md from the fragments in docs/results/, each written
# by one fidelity program (bench/fidelity/*.cc) through scripts/results_*.sh.
# With --run, runs those scripts first (long: minutes each; needs ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--run" ]]; then
  for s in scripts/results_*.sh; do
    echo "== $s" >&2
    bash "$s"
  done
fi
{
  echo "# Results"
  echo
  echo "Paper-fidelity results of debias, produced by the programs in"
  echo "bench/fidelity/ (run by scripts/results_*.sh; this file by"
  echo "scripts/results.sh). Hyperparameters are chosen on validation data carved"
  echo "from the training data, never on test; every number is a mean over seeds"
  echo "with its standard deviation unless a row says otherwise."
  echo
  for f in docs/results/*.md; do
    [[ -f "$f" ]] || continue
    sed "s/^# /## /" "$f"  # fragments may start at level 1
    echo
  done
} > docs/RESULTS.md
echo "wrote docs/RESULTS.md" >&2
