#!/usr/bin/env bash
# Assembles an importable `debias_client` package in OUT_DIR, without pip:
#   OUT_DIR/debias_client/*.py           the wrapper (copied from this folder)
#   OUT_DIR/debias_client/_proto/...     modules generated from proto/
#   OUT_DIR/debias_client/_version.py    the project version (CMakeLists.txt)
# Then `PYTHONPATH=OUT_DIR python3 -c 'import debias_client'`.
# (`pip install ./client/python` needs none of this: setup.py generates the
# same files at build time.)
#
# Generated code is never committed. The generation is gen_stubs.py's (run
# with $PYTHON, default python3): Debian's protoc + grpc_python_plugin
# (protobuf-compiler, protobuf-compiler-grpc) when both are found, else
# `$PYTHON -m grpc_tools.protoc`. Override with PROTOC=... GRPC_PYTHON_PLUGIN=...
# PROTOBUF_INCLUDE=... (default /usr/include, for struct.proto).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$1"
PYTHON="${PYTHON:-python3}"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PKG="$OUT/debias_client"

# The wrapper sources (skipped when generating in place, OUT_DIR = this folder).
if [[ "$OUT" != "$HERE" ]]; then
  mkdir -p "$PKG"
  cp "$HERE"/debias_client/*.py "$HERE"/debias_client/py.typed "$PKG"/
fi
PYTHON="$PYTHON" "$PYTHON" "$HERE/gen_stubs.py" "$PKG"
