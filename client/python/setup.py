"""Build hook of debias-client: generates the gRPC stubs at build time.

The packaging metadata is in pyproject.toml; this file adds what it cannot
say: the version, read from the top-level CMakeLists.txt (the one debiasd
reports), and a build_py that runs gen_stubs.py on ../../proto into the
built package (debias_client/_proto and debias_client/_version.py). So

    pip install --no-index --no-build-isolation ./client/python

works from a checkout with no generate.sh step. Generation needs protoc +
grpc_python_plugin (Debian: protobuf-compiler, protobuf-compiler-grpc) or
grpcio-tools; see gen_stubs.py. Outside a checkout (no ../../proto) the
package must already hold the generated files (generate.sh OUT_DIR).
"""

import os
import re
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_stubs  # noqa: E402  (next to this file)

PROTO_DIR = os.path.join(gen_stubs.REPO_ROOT, "proto")
HAVE_PROTO = os.path.isfile(os.path.join(PROTO_DIR, gen_stubs.PROTOS[0]))
PREGENERATED = os.path.isdir(os.path.join(HERE, "debias_client", "_proto"))


def _version() -> str:
    version = gen_stubs.project_version()
    if version:
        return version
    try:  # a tree assembled by generate.sh
        with open(os.path.join(HERE, "debias_client", "_version.py"), encoding="utf-8") as f:
            m = re.search(r"__version__ = '([^']+)'", f.read())
        if m:
            return m.group(1)
    except OSError:
        pass
    raise RuntimeError(f"debias-client: no version: neither {gen_stubs.REPO_ROOT}/CMakeLists.txt "
                       "nor a generated debias_client/_version.py")


def _packages() -> list:
    if HAVE_PROTO or not PREGENERATED:
        return ["debias_client"]  # build_py adds the generated _proto packages
    return ["debias_client"] + [
        "debias_client._proto" + ("." + p.replace("/", ".") if p else "")
        for p in ("", "debias", "debias/v1", "grpc", "grpc/health", "grpc/health/v1")]


class BuildPyWithStubs(build_py):
    """build_py that also generates debias_client/_proto and _version.py."""

    def run(self) -> None:
        super().run()
        if self.dry_run:
            return
        if not HAVE_PROTO:
            if not PREGENERATED:
                raise RuntimeError(f"debias-client: {PROTO_DIR} not found and no generated "
                                   "stubs in debias_client/_proto: build from a checkout "
                                   "(pip install ./client/python) or run generate.sh")
            return
        # An editable install imports the source folder: generate there.
        target = (os.path.join(HERE, "debias_client") if getattr(self, "editable_mode", False)
                  else os.path.join(self.build_lib, "debias_client"))
        gen_stubs.generate(target, PROTO_DIR, version=VERSION)


VERSION = _version()
setup(version=VERSION, packages=_packages(), cmdclass={"build_py": BuildPyWithStubs})
