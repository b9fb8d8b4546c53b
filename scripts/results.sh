#!/usr/bin/env bash
# Rebuilds docs/RESULTS.md from the fragments in docs/results/, each written
# by one fidelity program (bench/fidelity/*.cc) through scripts/results_*.sh.
# With --run, runs those scripts first (long: minutes each; needs ../shared/data),
# and scripts/results_frontdoor.py (the headline section, through debiasd).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--run" ]]; then
  /usr/bin/python3 scripts/results_frontdoor.py
  /usr/bin/python3 scripts/results_frontdoor.py --sections forms --seeds 5 \
    --out docs/results/01-relmf-forms.md
  /usr/bin/python3 scripts/results_ope.py
  for s in scripts/results_*.sh; do
    echo "== $s" >&2
    bash "$s"
  done
fi
{
  echo "# Results"
  echo
  echo "The headline section comes first and is produced by scripts/results_frontdoor.py"
  echo "and scripts/results_ope.py through the front door: debiasd driven by debiasctl"
  echo "with the server's defaults and only options the docs show. Everything after it is produced by the programs"
  echo "in bench/fidelity/ (scripts/results_*.sh): paper-fidelity checks and ablations"
  echo "that pass settings of their own (MAR slices for naive-Bayes weights, the"
  echo "reference hyperparameters, per-run grids), so they are not what a default"
  echo "\`debiasctl train\` gives. Hyperparameters are chosen on validation data carved"
  echo "from the training data, never on test; every number is a mean over seeds with"
  echo "its standard deviation unless a row says otherwise. This file is assembled by"
  echo "scripts/results.sh."
  echo
  for f in docs/results/0*.md; do  # the front-door fragments (scripts/results_frontdoor.py)
    [[ -f "$f" ]] || continue
    sed "s/^# /## /" "$f"
    echo
  done
  echo "# Ablations and paper fidelity (bench/fidelity harnesses, not the defaults)"
  echo
  echo "These fragments were produced by the harnesses at commit 5ac8cb2, before the"
  echo "front-door changes; where a fragment says \"the trainers' defaults\" it means"
  echo "the defaults of then (Rel-MF's log form with sampled weighting, eta 0.5 and the"
  echo "reference's KB dim 4 and DR-family l2_weight 0.1, among others). The harnesses"
  echo "pass most of their settings explicitly; rerun them with scripts/results.sh --run."
  echo
  for f in docs/results/*.md; do
    [[ -f "$f" ]] || continue
    [[ "$(basename "$f")" == 0* ]] && continue
    sed "s/^# /## /" "$f"  # fragments may start at level 1
    echo
  done
} > docs/RESULTS.md
echo "wrote docs/RESULTS.md" >&2
