"""Generates debias_client's gRPC stubs from proto/ (used by setup.py and generate.sh).

    python3 gen_stubs.py PACKAGE_DIR

writes PACKAGE_DIR/_proto/ (the *_pb2.py / *_pb2_grpc.py modules, as a
package) and PACKAGE_DIR/_version.py (the project version of the top-level
CMakeLists.txt, the one debiasd and debiasctl report).

Generator: protoc + grpc_python_plugin (Debian's protobuf-compiler and
protobuf-compiler-grpc, the toolchain that builds the server) when both are
found ($PROTOC / $GRPC_PYTHON_PLUGIN, else on PATH), else
``python -m grpc_tools.protoc`` (pip's grpcio-tools; Debian 12's
python3-grpc-tools 1.14 bundles protoc 3.5, which rejects the proto3
``optional`` fields of proto/, so it is no use there). $PROTOBUF_INCLUDE
(default /usr/include) holds google/protobuf/struct.proto.

protoc names Python modules after the .proto paths (debias.v1.x_pb2,
grpc.health.v1.health_pb2); a top-level ``grpc`` package would shadow grpcio
itself, so the imports between generated modules are rewritten to live under
debias_client._proto. Descriptor names stay as in the .proto files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
#: proto/ and CMakeLists.txt of the repository this folder (client/python) is in.
REPO_ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

PROTOS = ("debias/v1/common.proto", "debias/v1/dataset_service.proto",
          "debias/v1/model_service.proto", "debias/v1/scoring_service.proto",
          "debias/v1/evaluation_service.proto", "debias/v1/admin_service.proto",
          "grpc/health/v1/health.proto")
_PACKAGES = ("", "debias", "debias/v1", "grpc", "grpc/health", "grpc/health/v1")
_IMPORT_REWRITES = ((re.compile(r"^from debias\.v1 import ", re.M),
                     "from debias_client._proto.debias.v1 import "),
                    (re.compile(r"^from grpc\.health\.v1 import ", re.M),
                     "from debias_client._proto.grpc.health.v1 import "))


def project_version(cmake_lists: str = os.path.join(REPO_ROOT, "CMakeLists.txt")
                    ) -> Optional[str]:
    """The VERSION of ``project(debias VERSION x.y.z ...)``, or None when the
    file is absent or has none."""
    try:
        with open(cmake_lists, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"project\s*\(\s*debias\s+VERSION\s+([0-9][0-9A-Za-z.+-]*)", text)
    return m.group(1) if m else None


def _generator(python: str) -> "tuple[List[str], List[str]]":
    """(command prefix, extra include dirs) of the stub generator."""
    protoc = os.environ.get("PROTOC") or shutil.which("protoc")
    plugin = os.environ.get("GRPC_PYTHON_PLUGIN") or shutil.which("grpc_python_plugin")
    if protoc and plugin:
        return [protoc, f"--plugin=protoc-gen-grpc_python={plugin}"], []
    probe = subprocess.run(
        [python, "-c", "import grpc_tools, os; "
                       "print(os.path.join(os.path.dirname(grpc_tools.__file__), '_proto'))"],
        capture_output=True, text=True)
    if probe.returncode != 0:
        raise RuntimeError(
            "no gRPC Python stub generator: install protoc and grpc_python_plugin "
            "(Debian: apt-get install protobuf-compiler protobuf-compiler-grpc) or "
            "grpcio-tools, or set PROTOC and GRPC_PYTHON_PLUGIN")
    return [python, "-m", "grpc_tools.protoc"], [probe.stdout.strip()]


def generate(package_dir: str, proto_dir: str = os.path.join(REPO_ROOT, "proto"),
             version: Optional[str] = None, python: str = sys.executable) -> None:
    """Writes package_dir/_proto (replacing it) and package_dir/_version.py."""
    proto_dir = os.path.abspath(proto_dir)
    gen = os.path.join(os.path.abspath(package_dir), "_proto")
    if version is None:
        version = project_version()
    if not version:
        raise RuntimeError(f"no project version in {REPO_ROOT}/CMakeLists.txt")
    command, includes = _generator(python)
    shutil.rmtree(gen, ignore_errors=True)
    os.makedirs(gen)
    include = os.environ.get("PROTOBUF_INCLUDE") or "/usr/include"
    args = command + ["-I", "."] + [a for d in [include] + includes for a in ("-I", d)]
    args += [f"--python_out={gen}", f"--grpc_python_out={gen}", *PROTOS]
    run = subprocess.run(args, cwd=proto_dir, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"stub generation failed ({' '.join(args)}):\n{run.stderr}"
                           "(an old protoc, e.g. Debian 12's python3-grpc-tools, rejects "
                           "proto3 `optional`: use protoc >= 3.15 + grpc_python_plugin)")
    for sub in _PACKAGES:
        open(os.path.join(gen, sub, "__init__.py"), "w").close()
    for sub in ("debias/v1", "grpc/health/v1"):
        folder = os.path.join(gen, sub)
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".py") or name == "__init__.py":
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for pattern, replacement in _IMPORT_REWRITES:
                text = pattern.sub(replacement, text)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    with open(os.path.join(package_dir, "_version.py"), "w", encoding="utf-8") as f:
        f.write("# Generated from the project version in CMakeLists.txt (never committed).\n"
                f"__version__ = {version!r}\n")


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} PACKAGE_DIR", file=sys.stderr)
        return 2
    try:
        generate(argv[1], python=os.environ.get("PYTHON") or sys.executable)
    except RuntimeError as e:
        print(f"gen_stubs: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
