#!/usr/bin/env python3
"""The fleet on loopback (issue 23): one store server trains and publishes
into a snapshot repository, three scoring replicas poll it, and
`debiasctl bench score` drives them through one multi-address target with
`--lb round_robin` and gRPC's retry of UNAVAILABLE. During the load: a new
version is published and `stable` moved to it, one replica is SIGKILLed, and
a fresh replica (empty store, the killed one's address) joins after its
warm-up.

Asserts: 0 failed calls; each replica's share of the calls within +-30 % of
an even share while all three are up; every replica serves the new version
within the poll interval plus a few seconds; the calls served before the move
went to version 1 and after it to version 2 (the bench counts them by the
version that answered); the fresh replica takes a share of the calls.
Prints one JSON report on stdout.

    fleet_test.py BUILD_DIR [--duration S] [--report FILE]

CI runs it at --duration 20 (ctest -L fleet); `make fleet` at 120 s.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from frontdoor import Server, wait_port_file  # noqa: E402

POLL_SECONDS = 1
SCORE_METHOD = '/debias.v1.ScoringService/Score'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    """A scoring debiasd with its own empty store, fed by the repository."""

    def __init__(self, build, root, name, repository, port=0):
        self.debiasd = os.path.join(build, "server", "debiasd")
        self.debiasctl = os.path.join(build, "client", "debiasctl")
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.metrics_port = free_port()
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "debiasd.log"), "w")
        self.proc = subprocess.Popen(
            [self.debiasd, "--listen", f"127.0.0.1:{port}", "--data_dir",
             os.path.join(self.dir, "db"), "--port_file", port_file,
             "--model_repository", repository, "--poll_seconds", str(POLL_SECONDS),
             "--metrics_listen", f"127.0.0.1:{self.metrics_port}",
             "--max_connection_age_seconds", "30"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.port = wait_port_file(self.proc, port_file, self.dir)
        self.address = f"127.0.0.1:{self.port}"

    def wait_ready(self, seconds=30):
        """Blocks until health is SERVING (the repository's models are warm)."""
        t0 = time.time()
        r = subprocess.run([self.debiasctl, "health", "--wait", str(seconds), "--server",
                            self.address], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"replica {self.name} not ready: {r.stderr}")
        return time.time() - t0

    def score_calls(self):
        """Score calls this replica answered OK (its /metrics)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as r:
            text = r.read().decode()
        total = 0
        for line in text.splitlines():
            if line.startswith("debias_rpc_requests_total{") and SCORE_METHOD in line \
                    and 'code="OK"' in line:
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def served_version(self, ref="rec"):
        r = subprocess.run([self.debiasctl, "score", "--model", ref, "--user", self.user,
                            "--items", self.item, "--server", self.address, "--json"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)["served"]["version"]

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def counts(replicas):
    return {r.name: r.score_calls() for r in replicas}


def within_even_share(delta, tolerance=0.30):
    total = sum(delta.values())
    even = total / len(delta)
    return all(abs(v - even) <= tolerance * even for v in delta.values()), even


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--rate", type=float, default=300, help="calls/s over all workers")
    ap.add_argument("--report", help="also write the JSON report here")
    args = ap.parse_args()
    D = args.duration
    root = tempfile.mkdtemp(prefix="debias-fleet-")
    repo = os.path.join(root, "repository")
    os.makedirs(os.path.join(root, "store"))
    replicas, failures = [], []
    report = {"duration_seconds": D, "target_rate": args.rate, "poll_seconds": POLL_SECONDS}
    t_start = time.time()
    try:
        with Server(args.build, data_dir=os.path.join(root, "store")) as store:
            # 1. The store server: a world, two versions of "rec", v1 published as stable.
            world = os.path.join(root, "world")
            store.ctl("synth", "--world", "mnar", "--users", "300", "--items", "200",
                      "--expected-clicks", "6000", "--seed", "3", "--out", world,
                      json_out=False)
            store.ctl("ingest", "--dataset", "clicks", "--format", "csv",
                      os.path.join(world, "train.csv"))
            for seed in (1, 2):
                m = store.ctl("train", "--dataset", "clicks", "--loss", "naive", "--name", "rec",
                              "--seed", str(seed), "--param", "epochs=3")
                assert m["version"] == seed, m
            store.ctl("model", "publish", "--model", "rec:1", "--repository", repo,
                      "--label", "stable")
            # 2. Three replicas; each is ready only once rec:1 is warm.
            for i in range(3):
                replicas.append(Replica(args.build, root, f"replica{i}", repo))
            report["replica_ready_seconds"] = [round(r.wait_ready(), 2) for r in replicas]
            user, item = first_pair(os.path.join(world, "train.csv"))
            for r in replicas:
                r.user, r.item = user, item
            assert all(r.served_version() == 1 for r in replicas)

            # 3. The load, through one round_robin channel with retries.
            target = "ipv4:" + ",".join(r.address for r in replicas)
            bench = subprocess.Popen(
                [store.debiasctl, "bench", "score", "--server", target, "--lb", "round_robin",
                 "--model", "rec", "--concurrency", "4", "--connections", "2", "--duration",
                 str(D), "--warmup", "0", "--rate", str(args.rate), "--candidates", "20",
                 "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            t0 = time.time()

            def at(fraction):
                time.sleep(max(0.0, t0 + fraction * D - time.time()))

            # All three up: the share of each.
            at(0.05)
            c0 = counts(replicas)
            at(0.3)
            c1 = counts(replicas)
            share = {k: c1[k] - c0[k] for k in c1}
            ok, even = within_even_share(share)
            report["all_up_calls_per_replica"] = share
            report["all_up_even_share"] = round(even, 1)
            if not ok:
                failures.append(f"uneven share while all were up: {share}")

            # Label move: publish rec:2 as stable; each replica follows.
            store.ctl("model", "publish", "--model", "rec:2", "--repository", repo,
                      "--label", "stable")
            t_pub = time.time()
            follow = {}
            for r in replicas:
                while r.served_version() != 2 and time.time() - t_pub < POLL_SECONDS + 10:
                    time.sleep(0.1)
                follow[r.name] = round(time.time() - t_pub, 2)
            report["label_move_seconds_per_replica"] = follow
            if max(follow.values()) > POLL_SECONDS + 5:
                failures.append(f"a replica took over {POLL_SECONDS + 5} s to serve v2: {follow}")

            # SIGKILL one replica under load.
            at(0.45)
            victim = replicas[1]
            victim.kill()
            report["killed"] = victim.name

            # A fresh replica (empty store) on the killed one's address.
            at(0.55)
            fresh = Replica(args.build, root, "replica3", repo, port=victim.port)
            fresh.user, fresh.item = user, item
            report["fresh_ready_seconds"] = round(fresh.wait_ready(), 2)
            live = [replicas[0], replicas[2], fresh]
            time.sleep(2)  # the channel reconnects to the address after its backoff
            c2 = counts(live)
            at(0.97)
            c3 = counts(live)
            after = {k: c3[k] - c2[k] for k in c3}
            report["after_join_calls_per_replica"] = after
            ok, _ = within_even_share(after)
            if not ok:
                failures.append(f"the fresh replica does not take an even share: {after}")
            replicas.append(fresh)

            out, err = bench.communicate(timeout=D + 60)
            if bench.returncode not in (0, 1) or not out.strip():
                raise RuntimeError(f"bench failed: {err}")
            b = json.loads(out)
            report["bench"] = {k: b[k] for k in ("calls", "ok", "errors", "errors_by_code",
                                                  "throughput", "served", "latency_ms")}
            if b["errors"] != 0:
                failures.append(f"{b['errors']} failed calls: {b['errors_by_code']}")
            served = b.get("served", {})
            if served.get("rec:1", 0) == 0 or served.get("rec:2", 0) == 0:
                failures.append(f"expected calls served by rec:1 then rec:2: {served}")
    finally:
        for r in replicas:
            r.stop()
        report["wall_seconds"] = round(time.time() - t_start, 1)
        report["failures"] = failures
        text = json.dumps(report, indent=2, sort_keys=True)
        print(text)
        if args.report:
            with open(args.report, "w") as f:
                f.write(text + "\n")
        if failures:
            print(f"logs kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failures else 0


def first_pair(csv_path):
    with open(csv_path) as f:
        header = f.readline().strip().split(",")
        row = f.readline().strip().split(",")
    return row[header.index("user")], row[header.index("item")]


if __name__ == "__main__":
    sys.exit(main())
