#!/usr/bin/env bash
# Renders an HTML report (e.g. from `debiasctl replay`) in headless Chromium
# and saves a PNG, to check that it renders without network access.
# usage: scripts/screenshot_report.sh REPORT.html OUT.png [WIDTHxHEIGHT]
# needs: chromium (Debian package `chromium`; not installed by install-deps.sh)
set -euo pipefail
REPORT=${1:?usage: $0 REPORT.html OUT.png [WIDTHxHEIGHT]}
OUT=${2:?usage: $0 REPORT.html OUT.png [WIDTHxHEIGHT]}
SIZE=${3:-1200x2300}
command -v chromium >/dev/null || { echo "screenshot_report: chromium is not installed (apt-get install chromium)" >&2; exit 1; }
ABS=$(cd "$(dirname "$REPORT")" && pwd)/$(basename "$REPORT")
# --no-sandbox: containers and CI run as root; the page is local and trusted.
timeout 120 chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
  --no-first-run --disable-extensions --window-size="${SIZE/x/,}" \
  --screenshot="$OUT" "file://$ABS" 2>/dev/null
[[ -s $OUT ]] || { echo "screenshot_report: no image written" >&2; exit 1; }
echo "screenshot_report: wrote $OUT"
