#!/usr/bin/env bash
# Assembles an importable `debias_client` package in OUT_DIR:
#   OUT_DIR/debias_client/*.py           the wrapper (copied from this folder)
#   OUT_DIR/debias_client/_proto/...     modules generated from proto/
#   OUT_DIR/pyproject.toml               so that `pip install OUT_DIR` works
# Then `PYTHONPATH=OUT_DIR python3 -c 'import debias_client'`.
#
# Generated code is never committed; run this at build/test time.
# Generator: Debian's protoc + grpc_python_plugin (protobuf-compiler,
# protobuf-compiler-grpc: the same toolchain that builds the server) when both
# are on PATH, else `$PYTHON -m grpc_tools.protoc` (pip's grpcio-tools; note
# that Debian 12's python3-grpc-tools bundles protoc 3.5, which cannot compile
# proto3 `optional` fields). Override with PROTOC=... GRPC_PYTHON_PLUGIN=...
#
# protoc names Python modules after the .proto paths (debias.v1.x_pb2,
# grpc.health.v1.health_pb2); `grpc` would shadow grpcio itself, so the
# imports between generated modules are rewritten to live under
# debias_client._proto. Descriptor names stay as in the .proto files.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROTO_DIR="$(cd "$HERE/../../proto" && pwd)"
OUT="$1"
PYTHON="${PYTHON:-python3}"
PROTOBUF_INCLUDE="${PROTOBUF_INCLUDE:-/usr/include}"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PKG="$OUT/debias_client"
GEN="$PKG/_proto"

# The wrapper sources (skipped when generating in place, OUT_DIR = this folder).
if [[ "$OUT" != "$HERE" ]]; then
  mkdir -p "$PKG"
  cp "$HERE"/debias_client/*.py "$HERE"/debias_client/py.typed "$PKG"/
  cp "$HERE"/pyproject.toml "$OUT"/
fi

rm -rf "$GEN"
mkdir -p "$GEN"
PROTOS=(debias/v1/common.proto debias/v1/dataset_service.proto
        debias/v1/model_service.proto debias/v1/scoring_service.proto
        debias/v1/evaluation_service.proto debias/v1/admin_service.proto
        grpc/health/v1/health.proto)

PROTOC="${PROTOC:-$(command -v protoc || true)}"
GRPC_PYTHON_PLUGIN="${GRPC_PYTHON_PLUGIN:-$(command -v grpc_python_plugin || true)}"
if [[ -n "$PROTOC" && -n "$GRPC_PYTHON_PLUGIN" ]]; then
  (cd "$PROTO_DIR" && "$PROTOC" -I . -I "$PROTOBUF_INCLUDE" \
     --plugin=protoc-gen-grpc_python="$GRPC_PYTHON_PLUGIN" \
     --python_out="$GEN" --grpc_python_out="$GEN" "${PROTOS[@]}")
else
  (cd "$PROTO_DIR" && "$PYTHON" -m grpc_tools.protoc -I . -I "$PROTOBUF_INCLUDE" \
     --python_out="$GEN" --grpc_python_out="$GEN" "${PROTOS[@]}")
fi

# Make the generated tree a package and point its cross-imports into it.
for d in "$GEN" "$GEN/debias" "$GEN/debias/v1" "$GEN/grpc" "$GEN/grpc/health" \
         "$GEN/grpc/health/v1"; do
  : > "$d/__init__.py"
done
sed -i -e 's/^from debias\.v1 import /from debias_client._proto.debias.v1 import /' \
       -e 's/^from grpc\.health\.v1 import /from debias_client._proto.grpc.health.v1 import /' \
       "$GEN"/debias/v1/*.py "$GEN"/grpc/health/v1/*.py
