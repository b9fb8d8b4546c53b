#!/usr/bin/env bash
# make podman-fleet: the fleet of deploy/podman/fleet.yaml on this machine
# with `podman kube play`, exercised from the host: train a model named rec
# on the trainer, publish it into the repository volume (from inside the
# trainer container) as stable, wait for the three replicas to serve it, then
# `debiasctl bench score --lb round_robin` over the three published ports;
# fails unless every call succeeds and each replica loaded the model. Tears the
# pod and its volumes down on exit.
#
#   scripts/podman_fleet.sh [BUILD_DIR]
#
# The image: localhost/debias:dev built from this tree (make container-smoke
# builds it). With FLEET_IMAGE_FROM_BUILD=1 a thin image is layered on it
# instead, with BUILD_DIR's debiasd and debiasctl (same Debian release and
# libraries), so a change can be tried without rebuilding the image.
# Podman settings as in ../shared/CONTAINERS.md: runc, and container ulimits
# within the machine's hard limits (a containers.conf of our own).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
CTL=$BUILD/client/debiasctl
IMAGE=localhost/debias:dev
TMP=$(mktemp -d /tmp/debias-podman-fleet.XXXXXX)
MANIFEST=$TMP/fleet.yaml

cleanup() {
  podman --runtime runc kube down "$MANIFEST" >/dev/null 2>&1 || true
  for v in debias-repository debias-fleet-trainer debias-fleet-scoring-0 \
           debias-fleet-scoring-1 debias-fleet-scoring-2; do
    podman volume rm -f "$v" >/dev/null 2>&1 || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

nofile=$(ulimit -Hn)
nproc=$(cat /proc/sys/kernel/pid_max)
[[ $nproc -gt 32768 ]] && nproc=32768
cat >"$TMP/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$TMP/containers.conf

podman image exists "$IMAGE" || { echo "podman-fleet: no $IMAGE; run make container-smoke" >&2; exit 1; }
if [[ ${FLEET_IMAGE_FROM_BUILD:-0} == 1 ]]; then
  cp "$BUILD/server/debiasd" "$BUILD/client/debiasctl" "$TMP/"
  printf 'FROM %s\nUSER 0\nCOPY debiasd debiasctl /usr/local/bin/\nUSER 10001:10001\n' "$IMAGE" \
    >"$TMP/Containerfile"
  podman build --runtime runc --pull=never -q -t localhost/debias:fleet-dev -f "$TMP/Containerfile" \
    "$TMP" >/dev/null
  IMAGE=localhost/debias:fleet-dev
fi
sed "s|image: localhost/debias:dev|image: $IMAGE|" deploy/podman/fleet.yaml >"$MANIFEST"

echo "== podman kube play (trainer 127.0.0.1:50151, replicas :50161-50163)"
podman --runtime runc kube play "$MANIFEST" >/dev/null
TRAINER=127.0.0.1:50151
REPLICAS=(127.0.0.1:50161 127.0.0.1:50162 127.0.0.1:50163)
"$CTL" health --wait 60 --server "$TRAINER" >/dev/null
for r in "${REPLICAS[@]}"; do "$CTL" health --wait 60 --server "$r" >/dev/null; done

echo "== train rec on the trainer and publish it as stable"
"$CTL" synth --world mnar --users 300 --items 200 --seed 3 --out "$TMP/world" >/dev/null
"$CTL" ingest --dataset clicks --format csv "$TMP/world/train.csv" --server "$TRAINER" >/dev/null
"$CTL" train --dataset clicks --loss naive --name rec --param epochs=3 --server "$TRAINER" \
  --json >/dev/null
podman exec debias-fleet-trainer debiasctl model publish --model rec --repository /repository \
  --label stable --server 127.0.0.1:50151 >/dev/null

USER_KEY=$(sed -n 2p "$TMP/world/train.csv" | cut -d, -f1)
ITEM_KEY=$(sed -n 2p "$TMP/world/train.csv" | cut -d, -f2)
for r in "${REPLICAS[@]}"; do
  for _ in $(seq 1 60); do
    "$CTL" score --model rec --user "$USER_KEY" --items "$ITEM_KEY" --server "$r" >/dev/null 2>&1 \
      && break
    sleep 0.5
  done
  "$CTL" score --model rec --user "$USER_KEY" --items "$ITEM_KEY" --server "$r" --json >/dev/null
done

echo "== bench score over the three replicas, round_robin"
TARGET="ipv4:$(IFS=,; echo "${REPLICAS[*]}")"
OUT=$("$CTL" bench score --model rec --server "$TARGET" --lb round_robin --concurrency 4 \
  --duration 5 --warmup 0 --rate 200 --candidates 10 --json)
echo "$OUT" | python3 -c '
import json, sys
b = json.load(sys.stdin)
print("   %d calls ok, %d failed, served %s" % (b["ok"], b["errors"], b.get("served")))
sys.exit(0 if b["errors"] == 0 and b["ok"] > 0 else 1)'
for r in "${REPLICAS[@]}"; do
  port=${r##*:}
  n=$(podman logs "debias-fleet-scoring-$((port - 50161))" 2>&1 | grep -c "serving as model" || true)
  [[ $n -ge 1 ]] || { echo "podman-fleet: replica $r never loaded rec" >&2; exit 1; }
done
echo "== podman-fleet: ok"
