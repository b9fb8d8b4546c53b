"""The Python client installs with pip, offline, into a fresh venv, and works.

    test_install.py WORK_DIR

Environment:
    DEBIASD: path of the debiasd binary (ctest sets it to build/server/debiasd).
    PROTOC, GRPC_PYTHON_PLUGIN, PROTOBUF_INCLUDE: passed on to the build
        (see gen_stubs.py); optional.

Copies the files `pip install ./client/python` reads from a checkout
(client/python without its tests and build leftovers, proto/, CMakeLists.txt)
to WORK_DIR/src, keeping their layout (so nothing is written into the source
tree), makes WORK_DIR/venv with `python -m venv --system-site-packages`
(Debian's grpcio, protobuf, numpy, pandas, setuptools and wheel stay
visible), runs

    venv/bin/python -m pip install --no-index --no-build-isolation src/client/python

with no generated stubs anywhere, then, from the venv, imports debias_client
(from the venv's site-packages), checks its version is debiasd's, and runs
Client() (DEBIAS_SERVER) against a debiasd on 127.0.0.1 port 0: health,
a small ingest, stats. Run it with the Python whose venv is to be tested.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PY_DIR = os.path.dirname(HERE)                     # client/python
REPO = os.path.normpath(os.path.join(PY_DIR, "..", ".."))

# Run inside the venv: imports the installed package and talks to the server.
CHECK = textwrap.dedent("""
    import importlib.metadata, os, sys
    import debias_client
    from debias_client import Client
    venv = os.path.realpath(sys.prefix)
    assert os.path.realpath(debias_client.__file__).startswith(venv), debias_client.__file__
    assert sys.prefix != sys.base_prefix, "not in a venv"
    print("version", debias_client.__version__, importlib.metadata.version("debias-client"))
    with Client(timeout=10) as c:  # DEBIAS_SERVER
        print("health", c.health())
        print("acked", c.ingest("install", [("u1", "a"), ("u1", "b"), ("u2", "a", 0.0)]))
        print("events", c.stats("install")["events"])
""")


def _copy_checkout(dest: str) -> str:
    """Copies what the build reads into dest; returns dest/client/python."""
    ignore = shutil.ignore_patterns("tests", "build", "*.egg-info", "_proto", "_version.py",
                                    "__pycache__", "*.pyc")
    shutil.copytree(PY_DIR, os.path.join(dest, "client", "python"), ignore=ignore)
    shutil.copytree(os.path.join(REPO, "proto"), os.path.join(dest, "proto"))
    shutil.copy2(os.path.join(REPO, "CMakeLists.txt"), dest)
    return os.path.join(dest, "client", "python")


class InstallTest(unittest.TestCase):
    work = ""

    def run_checked(self, args: list, **kw: object) -> "subprocess.CompletedProcess[str]":
        run = subprocess.run(args, capture_output=True, text=True, **kw)  # type: ignore
        self.assertEqual(run.returncode, 0,
                         f"{' '.join(args)} exited {run.returncode}:\n{run.stdout}\n{run.stderr}")
        return run

    def test_pip_install_offline_into_a_fresh_venv(self) -> None:
        debiasd = os.environ.get("DEBIASD", "")
        if not debiasd or not os.access(debiasd, os.X_OK):
            self.skipTest(f"DEBIASD={debiasd!r} is not an executable debiasd")
        work = self.work
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        src = _copy_checkout(os.path.join(work, "src"))
        self.assertFalse(os.path.exists(os.path.join(src, "debias_client", "_proto")))
        venv = os.path.join(work, "venv")
        self.run_checked([sys.executable, "-m", "venv", "--system-site-packages", venv])
        python = os.path.join(venv, "bin", "python")
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1",
                   PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)  # only what the venv sees
        self.run_checked([python, "-m", "pip", "install", "--no-index", "--no-build-isolation",
                          src], env=env, cwd=work)

        expected = subprocess.run([debiasd, "--version"], capture_output=True,
                                  text=True).stdout.split()[-1]
        tmp = tempfile.mkdtemp(prefix="debias_pyinstall_", dir=work)
        port_file = os.path.join(tmp, "port")
        with open(os.path.join(tmp, "debiasd.log"), "wb") as log:
            server = subprocess.Popen(
                [debiasd, "--listen", "127.0.0.1:0", "--data_dir", os.path.join(tmp, "db"),
                 "--port_file", port_file, "--log_level", "warn"],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
                self.assertIsNone(server.poll(), "debiasd exited")
                self.assertLess(time.monotonic(), deadline, "debiasd did not start")
                time.sleep(0.02)
            with open(port_file) as f:
                port = int(f.read().strip())
            env["DEBIAS_SERVER"] = f"127.0.0.1:{port}"
            for k in ("DEBIAS_TOKEN", "DEBIAS_TLS_CA", "DEBIAS_TLS_CERT", "DEBIAS_TLS_KEY",
                      "DEBIAS_TLS_SERVER_NAME"):
                env.pop(k, None)
            # cwd = tmp: no debias_client folder next to the script to shadow the install.
            out = self.run_checked([python, "-c", CHECK], env=env, cwd=tmp).stdout.split("\n")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        self.assertIn(f"version {expected} {expected}", out)
        self.assertIn("health SERVING", out)
        self.assertIn("acked 3", out)
        self.assertIn("events 3", out)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print(f"usage: {sys.argv[0]} WORK_DIR [unittest options]", file=sys.stderr)
        sys.exit(2)
    InstallTest.work = os.path.abspath(sys.argv.pop(1))
    unittest.main()
