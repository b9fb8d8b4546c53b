#!/usr/bin/env bash
# make container-smoke: builds the container image (Dockerfile) with podman and
# proves it works end to end through a port published on 127.0.0.1:
# health SERVING (gRPC health service, and the image's HEALTHCHECK), ingest a
# small synthetic MNAR world, train Rel-MF, top-k, scrape /metrics, take a
# backup, then `podman stop` must end
# the server with exit code 0 (clean SIGTERM shutdown), and a second container
# on the same volume must still see the data.
#
# Follows the podman recipe of this machine (there is no Docker engine):
# runc runtime, explicit ulimits no higher than the machine's, a base image
# debootstrapped locally from the host's own Debian mirror, --pull=never.
# Installs podman, runc and debootstrap if missing (apt-get; root or sudo).
#
# Environment: BUILD (host build dir, default build; its client/debiasctl is
# used if present), DEBIASCTL (a debiasctl binary to use instead),
# DEBIAS_IMAGE (tag to build, default localhost/debias:dev).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
IMAGE=${DEBIAS_IMAGE:-localhost/debias:dev}
NAME=debias-smoke-$$
VOLUME=debias-smoke-$$
T_START=$(date +%s)
TMP=$(mktemp -d /tmp/debias-container-smoke.XXXXXX)

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO=sudo

say() { echo "container-smoke: $*"; }
TIMINGS=()
timed() {  # timed LABEL CMD...: run CMD (errexit stays on), record its wall time
  local label=$1 t0
  shift
  t0=$(date +%s)
  "$@"
  TIMINGS+=("$(printf '%-30s %5ds' "$label" $(( $(date +%s) - t0 )))")
}

cleanup() {
  local rc=$?
  if [[ $rc -ne 0 ]] && command -v podman >/dev/null; then
    for c in "$NAME" "$NAME-2"; do
      if podman container exists "$c" 2>/dev/null; then
        echo "---- podman logs $c (last 40 lines)" >&2
        podman logs --tail 40 "$c" >&2 2>&1 || true
      fi
    done
  fi
  if command -v podman >/dev/null; then
    podman rm -f -t 0 "$NAME" "$NAME-2" >/dev/null 2>&1 || true
    podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
  [[ $rc -eq 0 ]] || echo "container-smoke: FAILED (exit $rc)" >&2
  exit "$rc"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
# 1. Packages.
install_packages() {
  local missing=() p
  for p in podman runc debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
}
timed "packages" install_packages

# The machine's hard limits: podman's defaults exceed them and setrlimit fails.
hard_nofile=$(ulimit -Hn)
[[ $hard_nofile == unlimited || $hard_nofile -gt 1048576 ]] && hard_nofile=1048576
hard_nproc=$(ulimit -Hu)
pid_max=$(cat /proc/sys/kernel/pid_max)
[[ $hard_nproc == unlimited || $hard_nproc -gt $pid_max ]] && hard_nproc=$pid_max
PODMAN_OPTS=(--runtime runc --ulimit "nofile=$hard_nofile:$hard_nofile"
             --ulimit "nproc=$hard_nproc:$hard_nproc")

# ---------------------------------------------------------------------------
# 2. Base image: debootstrapped from the Debian mirror apt already uses.
host_mirrors() {  # prints "MAIN_URI SECURITY_URI" (SECURITY_URI may be "-")
  python3 - <<'EOF'
import glob, re
main = sec = None
def take(uri, suites):
    global main, sec
    uri = uri.rstrip('/')
    for s in suites:
        if s.endswith('-security'):
            sec = sec or uri
        elif s in ('bookworm', 'stable'):
            main = main or uri
for path in sorted(glob.glob('/etc/apt/sources.list.d/*.sources')):
    for stanza in re.split(r'\n\s*\n', open(path).read()):
        fields = {}
        for line in stanza.splitlines():
            m = re.match(r'^([A-Za-z-]+):\s*(.*)$', line)
            if m:
                fields[m.group(1).lower()] = m.group(2).split()
        if 'deb' not in fields.get('types', []) or fields.get('enabled', ['yes'])[0] == 'no':
            continue
        for uri in fields.get('uris', []):
            take(uri, fields.get('suites', []))
for path in ['/etc/apt/sources.list'] + sorted(glob.glob('/etc/apt/sources.list.d/*.list')):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        line = re.sub(r'\[[^]]*\]', '', line.split('#', 1)[0]).split()
        if len(line) >= 3 and line[0] == 'deb':
            take(line[1], [line[2]])
if not main:
    raise SystemExit('no bookworm mirror in the apt sources')
print(main, sec or '-')
EOF
}

make_base_image() {
  if podman image exists docker.io/library/debian:bookworm &&
     podman image exists docker.io/library/debian:bookworm-slim; then
    return 0
  fi
  local mirrors main sec rootfs
  mirrors=$(host_mirrors)
  main=${mirrors% *}
  sec=${mirrors#* }
  say "creating the base image debian:bookworm-slim from $main (debootstrap minbase)"
  rootfs="$TMP/rootfs"
  $SUDO debootstrap --variant=minbase bookworm "$rootfs" "$main" >"$TMP/debootstrap.log" 2>&1 ||
    { tail -20 "$TMP/debootstrap.log" >&2; return 1; }
  rm -f "$rootfs/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\n' "$main"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [[ $sec != - ]]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\n' "$sec"
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$rootfs/etc/apt/sources.list.d/debian.sources"
  # The mirror may be a dated snapshot whose Release files have expired.
  printf 'Acquire::Check-Valid-Until "false";\n' >"$rootfs/etc/apt/apt.conf.d/99snapshot"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*
  mkdir -p "$rootfs/var/lib/apt/lists/partial"
  tar -C "$rootfs" -c . | podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - localhost/debian:bookworm-slim >/dev/null
  local t
  for t in localhost/debian:bookworm docker.io/library/debian:bookworm \
           docker.io/library/debian:bookworm-slim; do
    podman tag localhost/debian:bookworm-slim "$t"
  done
  $SUDO rm -rf "$rootfs"
}
timed "base image" make_base_image

# ---------------------------------------------------------------------------
# 3. Build the image (layers cached; `nice`: the machine is shared).
build_image() {
  say "building $IMAGE"
  nice -n 10 podman build "${PODMAN_OPTS[@]}" --pull=never --format docker --layers \
    -t "$IMAGE" -f Dockerfile . >"$TMP/build.log" 2>&1 ||
    { tail -40 "$TMP/build.log" >&2; return 1; }
}
timed "image build" build_image
IMAGE_SIZE=$(podman image inspect -f '{{.Size}}' "$IMAGE")

# ---------------------------------------------------------------------------
# 4. Run it detached, the gRPC port published on a free loopback port.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
METRICS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
podman volume create "$VOLUME" >/dev/null
# Without systemd, podman logs an error about health-check timers on run, stop
# and rm; it runs health checks on demand only (`podman healthcheck run`), so
# that stderr goes to a file, shown on failure.
start_container() {  # start_container NAME
  podman run -d --name "$1" "${PODMAN_OPTS[@]}" -p "$ADDR:50051" \
    -p "127.0.0.1:$METRICS_PORT:9464" \
    -v "$VOLUME:/var/lib/debias" "$IMAGE" >/dev/null 2>>"$TMP/podman.err" ||
    { cat "$TMP/podman.err" >&2; return 1; }
}
timed "container start" start_container "$NAME"

# The client: the host build's debiasctl, else the image's own binary (same
# Debian 12 libraries), else build it.
pick_client() {
  if [[ -n ${DEBIASCTL:-} ]]; then CTL=$DEBIASCTL; return 0; fi
  if [[ -x $BUILD/client/debiasctl ]]; then CTL=$BUILD/client/debiasctl; return 0; fi
  podman cp "$NAME:/usr/local/bin/debiasctl" "$TMP/debiasctl"
  if "$TMP/debiasctl" --version >/dev/null 2>&1; then CTL=$TMP/debiasctl; return 0; fi
  say "no host debiasctl; make build"
  make build BUILD="$BUILD" >/dev/null
  CTL=$BUILD/client/debiasctl
}
pick_client
say "client $CTL ($("$CTL" --version)), server $ADDR"
export DEBIAS_SERVER=$ADDR

timed "health SERVING" "$CTL" health --wait 60 --timeout 2 >/dev/null
# The image's HEALTHCHECK (kept by --format docker) runs debiasctl inside.
[[ $(podman image inspect -f '{{.HealthCheck.Test}}' "$IMAGE") == *debiasctl*health* ]] ||
  { echo "container-smoke: the image has no debiasctl HEALTHCHECK" >&2; exit 1; }
timed "healthcheck run" podman healthcheck run "$NAME" >/dev/null

# ---------------------------------------------------------------------------
# 5. The API through the published port.
timed "synth (host)" "$CTL" synth --world mnar --users 200 --items 100 --seed 3 \
  --out "$TMP/world" >/dev/null
timed "ingest" "$CTL" ingest --dataset smoke --format csv "$TMP/world/train.csv" >/dev/null
timed "train relmf" "$CTL" train --dataset smoke --loss relmf --param epochs=3 --json \
  >"$TMP/train.json"
MODEL=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert m["state"]=="ready", m; print(m["model_id"])' "$TMP/train.json")
# A user with clicks (u0 may have none in a world this small).
USER_KEY=$(sed -n 2p "$TMP/world/train.csv" | cut -d, -f1)
timed "topk" "$CTL" topk --model "$MODEL" --user "$USER_KEY" --k 5 --json >"$TMP/topk.json"
python3 - "$TMP/topk.json" <<'EOF'
import json, math, sys
r = json.load(open(sys.argv[1]))
assert len(r["items"]) == 5 and len(r["scores"]) == 5, r
assert all(math.isfinite(s) for s in r["scores"]), r
assert r["scores"] == sorted(r["scores"], reverse=True), r
EOF
# The Prometheus endpoint through its published port, and a backup.
python3 - "$METRICS_PORT" <<'EOF'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10).read().decode()
for want in ('debias_rpc_requests_total{method="/debias.v1.ModelService/Train",code="OK"} 1',
             'debias_models{state="ready"} 1', 'debias_training_jobs_total{state="ready"} 1',
             'debias_ingest_events_total ', 'debias_store_disk_bytes ',
             'debias_model_ess_fraction{model='):
    assert want in body, f"metrics: missing {want!r}"
EOF
timed "backup" "$CTL" backup --name smoke --json >"$TMP/backup.json"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); assert b["path"]=="/var/lib/debias/backups/smoke" and b["bytes"]>0, b' "$TMP/backup.json"
say "model $MODEL: top 5 for $USER_KEY: $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["items"]))' "$TMP/topk.json")"

# ---------------------------------------------------------------------------
# 6. SIGTERM: `podman stop` must end debiasd cleanly (exit 0) well before the
# 20 s grace period would turn into SIGKILL (exit 137).
timed "podman stop (SIGTERM)" podman stop -t 20 "$NAME" >/dev/null 2>>"$TMP/podman.err"
EXIT_CODE=$(podman inspect -f '{{.State.ExitCode}}' "$NAME")
if [[ $EXIT_CODE != 0 ]]; then
  echo "container-smoke: debiasd exited with $EXIT_CODE after SIGTERM (expected 0)" >&2
  exit 1
fi
podman logs "$NAME" >"$TMP/server.log" 2>&1
grep -q "received signal 15" "$TMP/server.log" ||
  { echo "container-smoke: debiasd did not log the SIGTERM" >&2; exit 1; }

# The store survives in the volume: a new container serves the same model.
timed "restart on the volume" start_container "$NAME-2"
"$CTL" health --wait 60 --timeout 2 >/dev/null
"$CTL" topk --model "$MODEL" --user "$USER_KEY" --k 5 --json >"$TMP/topk2.json"
cmp -s "$TMP/topk.json" "$TMP/topk2.json" ||
  { echo "container-smoke: top-k differs after a restart on the same volume" >&2; exit 1; }
podman stop -t 20 "$NAME-2" >/dev/null 2>>"$TMP/podman.err"
[[ $(podman inspect -f '{{.State.ExitCode}}' "$NAME-2") == 0 ]] ||
  { echo "container-smoke: the second container did not exit 0" >&2; exit 1; }

for line in "${TIMINGS[@]}"; do say "  $line"; done
say "OK: image $IMAGE ($(( IMAGE_SIZE / 1000000 )) MB), exit 0 on SIGTERM, total $(( $(date +%s) - T_START ))s"
