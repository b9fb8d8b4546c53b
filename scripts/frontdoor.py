"""The front door, scripted: start debiasd, drive it with debiasctl --json.

Every headline number in docs/RESULTS.md comes through this module: the
server with its defaults, driven by the same `debiasctl` commands the README
shows, plus only options the docs show. Nothing here reaches into core/.

    with Server("build") as srv:
        srv.ctl("ingest", "--dataset", "coat", "--format", "coat",
                "--threshold", "3", "../shared/data/coat/train.ascii")
        m = srv.ctl("train", "--dataset", "coat", "--loss", "ips", "--seed", "0")
        ev = srv.ctl("evaluate", "--model", str(m["model_id"]), "--dataset", "coat-test")
"""
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def wait_port_file(proc, port_file, log_dir):
    """The port a starting debiasd wrote to --port_file (it exits: an error)."""
    for _ in range(200):
        if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"debiasd exited; see {log_dir}/debiasd.log")
        time.sleep(0.05)
    with open(port_file) as f:
        return int(f.read().strip())


class CtlError(RuntimeError):
    def __init__(self, args, code, stderr):
        super().__init__(f"debiasctl {' '.join(args)} exited {code}: {stderr.strip()}")
        self.code = code
        self.stderr = stderr


class Server:
    """A debiasd on a free loopback port with a throw-away database."""

    def __init__(self, build="build", data_dir=None, extra_flags=()):
        self.build = build
        self.debiasd = os.path.join(build, "server", "debiasd")
        self.debiasctl = os.path.join(build, "client", "debiasctl")
        self._own_dir = data_dir is None
        self.dir = data_dir or tempfile.mkdtemp(prefix="debias-frontdoor-")
        self.extra_flags = list(extra_flags)
        self.proc = None
        self.address = None

    def __enter__(self):
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        self.log = open(os.path.join(self.dir, "debiasd.log"), "w")
        self.proc = subprocess.Popen(
            [self.debiasd, "--listen", "127.0.0.1:0", "--data_dir",
             os.path.join(self.dir, "db"), "--port_file", port_file] + self.extra_flags,
            stdout=self.log, stderr=subprocess.STDOUT)
        self.address = "127.0.0.1:%d" % wait_port_file(self.proc, port_file, self.dir)
        self.ctl("health", "--wait", "10")
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def ctl(self, *args, json_out=True, check=True):
        """Runs debiasctl with --server and --json; returns the parsed JSON."""
        cmd = [self.debiasctl] + list(args) + ["--server", self.address]
        if json_out:
            cmd.append("--json")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            if check:
                raise CtlError(list(args), r.returncode, r.stderr)
            return None
        if not json_out:
            return r.stdout
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def ctl_raw(self, *args):
        """Runs debiasctl; returns (exit code, stdout, stderr)."""
        cmd = [self.debiasctl] + list(args) + ["--server", self.address]
        r = subprocess.run(cmd, capture_output=True, text=True)
        return r.returncode, r.stdout, r.stderr


def mean_std(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return float("nan"), float("nan")
    if len(xs) == 1:
        return xs[0], 0.0
    return statistics.mean(xs), statistics.stdev(xs)


def fmt(xs, digits=4):
    m, s = mean_std(xs)
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def write_fragment(path, lines, t0):
    """Writes a docs/results fragment with its wall-time footer."""
    lines = list(lines) + [f"Total wall time {time.time() - t0:.0f} s on the shared 2-core "
                           "machine.\n"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {path}", file=__import__("sys").stderr)
