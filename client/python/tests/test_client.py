"""End-to-end test of debias_client against the real debiasd binary.

Environment:
    DEBIASD: path of the debiasd binary (ctest sets it to build/server/debiasd).
    PYTHONPATH: must hold the directory generate.sh assembled the package in.

Starts one server on 127.0.0.1 port 0 (--port_file) with a temporary
--data_dir for the whole class, drives it through the wrapper, and finally
stops it with SIGTERM and checks that it exits 0.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
from typing import Any, Dict, List, Optional, Sequence
from unittest import mock

import numpy as np
import pandas as pd

from debias_client import Client, DebiasError, IngestError, TrainingError, TrainingJob
from debias_client.client import parse_model_ref, sc_pb2

N_USERS = 200
N_ITEMS = 50
DATASET = "clicks"


def synthetic_clicks(seed: int = 7) -> pd.DataFrame:
    """200 users x 50 items: each user clicks 5-14 distinct items drawn with a
    power-law popularity (so exposure is biased), plus a timestamp."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
    pop /= pop.sum()
    users: List[str] = []
    items: List[str] = []
    for u in range(N_USERS):
        n = int(rng.integers(5, 15))
        for i in rng.choice(N_ITEMS, size=n, replace=False, p=pop):
            users.append(f"u{u}")
            items.append(f"i{i}")
    return pd.DataFrame({
        "user": users,
        "item": items,
        "label": np.ones(len(users), dtype=np.float32),
        "timestamp": np.arange(len(users), dtype=np.int64),
    })


class ClientTest(unittest.TestCase):
    proc: Optional[subprocess.Popen] = None
    tmp: str = ""
    client: Client
    frame: pd.DataFrame
    model: Dict[str, Any]

    @classmethod
    def setUpClass(cls) -> None:
        debiasd = os.environ.get("DEBIASD", "")
        if not debiasd or not os.access(debiasd, os.X_OK):
            raise unittest.SkipTest(f"DEBIASD={debiasd!r} is not an executable debiasd")
        cls.tmp = tempfile.mkdtemp(prefix="debias_pyclient_")
        port_file = os.path.join(cls.tmp, "port")
        cls.log = open(os.path.join(cls.tmp, "debiasd.log"), "wb")
        cls.proc = subprocess.Popen(
            [debiasd, "--listen", "127.0.0.1:0", "--data_dir", os.path.join(cls.tmp, "db"),
             "--port_file", port_file, "--log_level", "warn"],
            stdout=cls.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if cls.proc.poll() is not None or time.monotonic() > deadline:
                cls._stop_server()
                raise RuntimeError("debiasd did not start:\n" + cls._server_log())
            time.sleep(0.02)
        with open(port_file) as f:
            port = int(f.read().strip())
        # Plaintext, no token, whatever DEBIAS_TOKEN / DEBIAS_TLS_* say.
        cls.client = Client(f"127.0.0.1:{port}", timeout=30.0, token="", tls_ca="",
                            tls_cert="", tls_key="")
        cls.frame = synthetic_clicks()

    @classmethod
    def _server_log(cls) -> str:
        try:
            with open(os.path.join(cls.tmp, "debiasd.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    @classmethod
    def _stop_server(cls) -> Optional[int]:
        code = None
        if cls.proc is not None and cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            try:
                code = cls.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
        elif cls.proc is not None:
            code = cls.proc.returncode
        cls.log.close()
        return code

    @classmethod
    def tearDownClass(cls) -> None:
        if hasattr(cls, "client"):
            cls.client.close()
        code = cls._stop_server()
        log = cls._server_log()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        # SIGTERM must shut the server down cleanly.
        if code != 0:
            raise AssertionError(f"debiasd exited with {code} after SIGTERM:\n{log}")

    # The steps build on each other (ingest -> train -> score); unittest runs
    # them in name order.

    def test_01_health(self) -> None:
        self.assertEqual(self.client.health(), "SERVING")
        self.client.wait_until_serving(timeout=1.0)

    def test_02_ingest_dataframe_and_stats(self) -> None:
        progress: List[int] = []
        acked = self.client.ingest(DATASET, self.frame, batch_size=500,
                                   on_progress=progress.append)
        self.assertEqual(acked, len(self.frame))
        self.assertEqual(progress[-1], len(self.frame))
        self.assertEqual(len(progress), math.ceil(len(self.frame) / 500))
        stats = self.client.stats(DATASET)
        self.assertEqual(stats["events"], len(self.frame))
        self.assertEqual(stats["users"], self.frame["user"].nunique())
        self.assertEqual(stats["items"], self.frame["item"].nunique())
        self.assertEqual(stats["positives"], len(self.frame))
        self.assertEqual(stats["zero_labels"], 0)
        self.assertAlmostEqual(stats["density"],
                               len(self.frame) / (stats["users"] * stats["items"]), places=6)
        names = [d["name"] for d in self.client.list_datasets()]
        self.assertIn(DATASET, names)
        self.assertEqual(self.client.get_dataset(DATASET)["users"], N_USERS)
        back = self.client.export(DATASET)
        self.assertEqual(len(back), len(self.frame))
        self.assertEqual(sorted(back["timestamp"].tolist()), list(range(len(self.frame))))

    def test_03_ingest_iterables_and_broken_stream(self) -> None:
        # Tuples (user, item, label, timestamp, ...) and dicts; a new dataset.
        events = [("a", "x", 1.0, 1), ("a", "y"), {"user": "b", "item": "x", "label": 0.0}]
        self.assertEqual(self.client.ingest("small", events), 3)
        stats = self.client.stats("small")
        self.assertEqual((stats["events"], stats["positives"], stats["zero_labels"]), (3, 2, 1))
        # Batch 1 (3 events) is stored; batch 2 holds a propensity outside
        # (0, 1], which the server rejects, ending the stream.
        bad = [("c", "x"), ("c", "y"), ("c", "z"),
               {"user": "d", "item": "x", "propensity": 2.0}]
        with self.assertRaises(IngestError) as ctx:
            self.client.ingest("small", bad, batch_size=3)
        self.assertEqual(ctx.exception.code, "INVALID_ARGUMENT")
        self.assertEqual(ctx.exception.events_acknowledged, 3)
        self.assertEqual(self.client.stats("small")["events"], 6)
        # A local conversion error (no item) also reports what was stored.
        with self.assertRaises(IngestError) as ctx:
            self.client.ingest("small", [("e", "x"), {"user": "e"}], batch_size=1)
        self.assertEqual(ctx.exception.code, "INVALID_ARGUMENT")
        self.assertEqual(ctx.exception.events_acknowledged, 1)
        self.assertEqual(self.client.delete_dataset("small"), 7)
        # A click log with optional columns, some values missing (left unset:
        # None / pd.NA, never NaN, see test_03a).
        log = pd.DataFrame({
            "user": ["a", "a", "b", "b"], "item": ["x", "y", "x", "z"],
            "label": [1.0, 0.0, 1.0, 0.0],
            "list_id": ["l1", "l1", "l2", None],
            "position": pd.array([1, 2, 1, None], dtype="Int32"),
            "propensity": pd.array([0.9, 0.5, None, 0.25], dtype="Float64"),
        })
        self.assertEqual(self.client.ingest("log", log, create_if_missing=True), 4)
        stats = self.client.stats("log")
        self.assertEqual((stats["events"], stats["positives"], stats["zero_labels"]), (4, 2, 2))
        self.assertEqual((stats["lists"], stats["max_position"], stats["with_propensity"]),
                         (2, 2, 3))
        back = self.client.export("log").sort_values(["user", "item"]).reset_index(drop=True)
        self.assertEqual(back["item"].tolist(), ["x", "y", "x", "z"])
        self.assertEqual(back["label"].tolist(), [1.0, 0.0, 1.0, 0.0])
        self.assertTrue(pd.isna(back["position"][3]))
        self.assertEqual(back["list_id"].tolist(), ["l1", "l1", "l2", None])
        self.client.delete_dataset("log")
        with self.assertRaises(DebiasError) as ctx2:
            self.client.get_dataset("small")
        self.assertEqual(ctx2.exception.code, "NOT_FOUND")

    def test_03b_event_ids_are_idempotency_keys(self) -> None:
        frame = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"],
                              "label": [1.0, 0.0, 1.0], "event_id": ["e1", "e2", "e3"]})
        first = self.client.ingest("ids", frame)
        self.assertEqual((int(first), first.events_stored, first.events_duplicate), (3, 3, 0))
        retry = self.client.ingest("ids", frame)  # a retried upload adds nothing
        self.assertEqual((int(retry), retry.events_stored, retry.events_duplicate), (3, 0, 3))
        self.assertEqual(retry.data_version, first.data_version)
        changed = frame.copy()
        changed.loc[0, "label"] = 0.0  # the same id for other content
        with self.assertRaises(IngestError) as ctx:
            self.client.ingest("ids", changed)
        self.assertEqual(ctx.exception.code, "ALREADY_EXISTS")
        self.assertIn("events[0].event_id='e1'", str(ctx.exception))
        self.assertEqual(self.client.stats("ids")["events"], 3)
        # Without ids every row is stored, repeats included.
        again = self.client.ingest("ids", frame.drop(columns=["event_id"]))
        self.assertEqual(again.events_stored, 3)
        self.assertEqual(self.client.stats("ids")["events"], 6)
        self.client.delete_dataset("ids")
        created = self.client.create_dataset("nk", dedup="natural_key")
        self.assertEqual(created["dedup"], "natural_key")
        self.client.ingest("nk", frame.drop(columns=["event_id"]))
        nk = self.client.ingest("nk", frame.drop(columns=["event_id"]))
        self.assertEqual((nk.events_stored, nk.events_duplicate), (0, 3))
        self.client.delete_dataset("nk")

    def test_03a_ingest_rejects_non_finite_labels_and_propensities(self) -> None:
        # NaN/inf labels and propensities are refused before anything is sent
        # (the server's wording, the caller's 0-based row); never stored as a
        # click or as "no propensity".
        name = "nonfinite"

        def rejected(events: Any, row: int, what: str) -> IngestError:
            with self.assertRaises(IngestError, msg=what) as ctx:
                self.client.ingest(name, events, batch_size=2)
            err = ctx.exception
            self.assertIsInstance(err, DebiasError)
            self.assertEqual(err.code, "INVALID_ARGUMENT", what)
            self.assertIn(f"row {row}:", err.message, what)
            self.assertIn("must be a finite number", err.message, what)
            return err

        base = {"user": ["a", "a", "b", "b"], "item": ["x", "y", "x", "z"]}
        cases = [
            ("label", [1.0, 0.0, np.nan, 0.0], 2, "label=nan"),
            ("label", np.array([1, 1, 1, np.inf], dtype=np.float32), 3, "label=inf"),
            ("label", [-np.inf, 1.0, 1.0, 1.0], 0, "label=-inf"),
            ("propensity", [0.5, np.nan, 0.5, 0.5], 1, "propensity=nan"),
            ("propensity", [0.5, 0.5, 0.5, np.inf], 3, "propensity=inf"),
            ("propensity", pd.Series([0.5, 0.5, float("nan"), None], dtype=object), 2,
             "propensity=nan"),
        ]
        for column, values, row, text in cases:
            frame = pd.DataFrame(dict(base, **{column: values}))
            err = rejected(frame, row, text)
            self.assertIn(text, err.message)
            # The whole frame is checked before the stream opens: nothing stored.
            self.assertEqual(err.events_acknowledged, 0, text)
        # Dicts and tuples: the row is the event's place in the iterable.
        err = rejected([{"user": "a", "item": "x"}, {"user": "a", "item": "y"},
                        {"user": "b", "item": "x", "label": float("nan")}], 2, "dict")
        self.assertIn("label=nan", err.message)
        self.assertEqual(err.events_acknowledged, 2)  # the first batch of 2 went through
        err = rejected([("a", "x", 1.0, None, None, None, np.float32("nan"))], 0, "tuple")
        self.assertIn("propensity=nan", err.message)
        rejected([("a", "x", math.inf)], 0, "tuple label")
        stats = self.client.stats(name)
        self.assertEqual((stats["events"], stats["with_propensity"]), (2, 0))
        back = self.client.export(name)
        self.assertTrue(np.all(np.isfinite(back["label"].to_numpy())))
        # An explicit missing label (None / pd.NA) is refused too: leave the
        # label out for a click rather than have a hole turned into one.
        with self.assertRaises(IngestError) as ctx:
            self.client.ingest(name, pd.DataFrame(
                dict(base, label=pd.array([1.0, None, 1.0, 1.0], dtype="Float64"))))
        self.assertEqual(ctx.exception.code, "INVALID_ARGUMENT")
        self.assertIn("row 1: label is missing", ctx.exception.message)
        with self.assertRaises(IngestError) as ctx:
            self.client.ingest(name, [{"user": "c", "item": "x", "label": None}])
        self.assertIn("row 0: label is missing", ctx.exception.message)
        # Missing propensities (None / pd.NA) stay unset, finite ones are sent.
        ok = pd.DataFrame({"user": ["c", "c", "d", "d"], "item": ["x", "y", "x", "z"],
                           "propensity": pd.array([0.5, None, 0.25, None], dtype="Float64")})
        self.assertEqual(self.client.ingest(name, ok), 4)
        self.assertEqual(self.client.ingest(name, [{"user": "e", "item": "x",
                                                    "propensity": None}]), 1)
        stats = self.client.stats(name)
        self.assertEqual((stats["events"], stats["with_propensity"]), (7, 2))
        self.client.delete_dataset(name)

    def test_04_train_with_progress(self) -> None:
        epochs: List[Dict[str, Any]] = []
        model = self.client.train(DATASET, "naive", {"epochs": "3", "dim": "8"}, seed=1,
                                  on_progress=epochs.append)
        self.assertEqual(model["state"], "ready")
        self.assertGreaterEqual(model["id"], 1)
        self.assertEqual(model["dataset"], DATASET)
        self.assertEqual([e["epoch"] for e in epochs], [1, 2, 3])
        self.assertTrue(all(e["total_epochs"] == 3 for e in epochs))
        self.assertTrue(all(math.isfinite(e["loss"]) for e in epochs))
        self.assertEqual(len(model["progress"]), 3)
        self.assertEqual(model["users"], N_USERS)
        self.assertEqual(model["items"], self.frame["item"].nunique())
        type(self).model = model
        self.assertEqual(self.client.get_model(model["id"])["state"], "ready")
        self.assertIn(model["id"], [m["id"] for m in self.client.list_models(DATASET)])

    def test_04a_train_detached(self) -> None:
        # detach=True returns a reference as soon as the job starts; a job of
        # 100000 epochs (over a minute here) is watched, then cancelled.
        start = time.monotonic()
        job = self.client.train(DATASET, "naive", {"epochs": 100000, "dim": 8}, seed=2,
                                detach=True, timeout=10)
        self.assertIsInstance(job, TrainingJob)
        self.assertLess(time.monotonic() - start, 5)
        self.assertGreaterEqual(job.id, 1)
        self.assertEqual(self.client.get_model(job.id)["state"], "training")
        self.assertFalse(job.done())
        deadline = time.monotonic() + 10
        while job.progress() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        first = job.progress()
        self.assertIsNotNone(first)
        self.assertEqual(first["total_epochs"], 100000)
        time.sleep(0.1)
        self.assertGreater(job.progress()["epoch"], first["epoch"])  # it runs on its own
        with self.assertRaises(DebiasError) as ctx:
            job.wait(timeout=0.05)
        self.assertEqual(ctx.exception.code, "DEADLINE_EXCEEDED")
        self.assertEqual(job.state(), "training")  # a wait that times out leaves it be
        final = job.cancel()
        self.assertEqual(final["state"], "cancelled")
        self.assertLess(final["progress"][-1]["epoch"], 100000)
        with self.assertRaises(TrainingError) as ctx2:
            job.wait()
        self.assertEqual(ctx2.exception.model["state"], "cancelled")
        self.assertEqual(ctx2.exception.code, "CANCELLED")  # the stored code, not a blanket one
        self.assertEqual(job.wait(check=False)["state"], "cancelled")
        self.assertEqual(job.cancel()["state"], "cancelled")  # again: no error
        self.client.delete_model(job.id)
        # wait() returns the model, feeding on_progress every epoch once.
        epochs: List[Dict[str, Any]] = []
        job = self.client.train(DATASET, "naive", {"epochs": 40, "dim": 8}, seed=1,
                                detach=True, on_progress=epochs.append)
        model = job.wait(timeout=30)
        self.assertEqual(model["state"], "ready")
        self.assertEqual(model["id"], job.id)
        self.assertEqual([e["epoch"] for e in epochs], list(range(1, 41)))
        self.assertEqual(job.cancel()["state"], "ready")  # ended first: no error
        self.client.delete_model(job.id)

    def test_05_score_and_topk(self) -> None:
        mid = self.model["id"]
        items = [f"i{i}" for i in range(10)]
        scores = self.client.score(mid, "u0", items)
        self.assertIsInstance(scores, np.ndarray)
        self.assertEqual(scores.dtype, np.float32)
        self.assertEqual(scores.shape, (10,))
        self.assertTrue(np.all(np.isfinite(scores)))
        top_items, top_scores = self.client.topk(mid, "u0", 5)
        self.assertEqual(len(top_items), 5)
        self.assertEqual(top_scores.dtype, np.float32)
        self.assertTrue(np.all(np.diff(top_scores) <= 0))  # best first
        # TopK's scores agree with Score's for the same items.
        np.testing.assert_allclose(self.client.score(mid, "u0", top_items), top_scores,
                                   rtol=1e-5, atol=1e-6)
        seen = set(self.frame.loc[self.frame["user"] == "u0", "item"])
        unseen, _ = self.client.topk(mid, "u0", 5, exclude_seen=True)
        self.assertFalse(seen & set(unseen))
        batch = self.client.batch_score(mid, {"u0": items, "u1": items[:3]})
        np.testing.assert_allclose(batch["u0"], scores, rtol=1e-6)
        self.assertEqual(batch["u1"].shape, (3,))
        # BatchTopK: one row per user and rank, equal to the exact TopK calls.
        frame = self.client.batch_topk(mid, ["u0", "u1", "u2"], 4, exclude_seen=True,
                                       retrieval="exact", batch=2)
        self.assertEqual(list(frame.columns), ["user", "rank", "item", "score"])
        self.assertEqual(list(frame["user"]), ["u0"] * 4 + ["u1"] * 4 + ["u2"] * 4)
        self.assertEqual(list(frame["rank"]), [1, 2, 3, 4] * 3)
        self.assertEqual(frame["score"].dtype, np.float32)
        for u in ("u0", "u1", "u2"):
            one_items, one_scores = self.client.topk(mid, u, 4, exclude_seen=True,
                                                     retrieval="exact")
            rows = frame[frame["user"] == u]
            self.assertEqual(list(rows["item"]), one_items)
            np.testing.assert_array_equal(rows["score"].to_numpy(), one_scores)
        with self.assertRaises(DebiasError) as ctx:
            self.client.batch_topk(mid, ["u0"], 4, retrieval="approximate")
        self.assertEqual(ctx.exception.code, "FAILED_PRECONDITION")
        self.assertIn(f"model {mid}", str(ctx.exception))
        negatives = self.client.sample_negatives("u0", 5, dataset=DATASET, seed=3)
        self.assertEqual(len(negatives), 5)
        self.assertFalse(seen & set(negatives))

    def test_06_evaluate_ips_with_bootstrap(self) -> None:
        report = self.client.evaluate(self.model["id"], DATASET, estimator="ips", k=[5],
                                      bootstrap=50, seed=11)
        self.assertIn("dcg@5", report["metrics"])
        self.assertTrue(report["intervals"])
        for name, (low, high) in report["intervals"].items():
            value = report["metrics"][name]
            self.assertTrue(math.isfinite(value), name)
            self.assertLessEqual(low, value, name)
            self.assertLessEqual(value, high, name)
        self.assertEqual(set(report["normal_intervals"]), set(report["intervals"]))
        self.assertIsInstance(report["diagnostics"], dict)
        self.assertTrue(report["diagnostics"])
        # Same seed, same answer.
        again = self.client.evaluate(self.model["id"], DATASET, estimator="ips", k=5,
                                     bootstrap=50, seed=11)
        self.assertEqual(again["intervals"], report["intervals"])

    def test_06a_dataframes_out(self) -> None:
        mid = self.model["id"]
        top = self.client.topk_frame(mid, ["u0", "u1"], 3)
        self.assertEqual(list(top.columns), ["user", "rank", "item", "score"])
        self.assertEqual(top["user"].tolist(), ["u0"] * 3 + ["u1"] * 3)
        self.assertEqual(top["rank"].tolist(), [1, 2, 3, 1, 2, 3])
        items, scores = self.client.topk(mid, "u1", 3)
        self.assertEqual(top.loc[top["user"] == "u1", "item"].tolist(), items)
        pairs = pd.DataFrame({"user": ["u1", "u0", "u1"], "item": ["i0", "i1", "i2"]})
        scored = self.client.score_frame(mid, pairs, chunk_users=1)
        np.testing.assert_allclose(scored["score"].to_numpy(), [
            self.client.score(mid, "u1", ["i0"])[0], self.client.score(mid, "u0", ["i1"])[0],
            self.client.score(mid, "u1", ["i2"])[0]], rtol=1e-6)
        models = self.client.models_frame(DATASET)
        self.assertIn(mid, models["id"].tolist())
        self.assertEqual(models.loc[models["id"] == mid, "state"].item(), "ready")
        table = self.client.evaluate_frame(mid, DATASET, estimator="snips", k=5, bootstrap=20,
                                           seed=3)
        self.assertEqual(list(table.columns), ["metric", "value", "low", "high", "mar"])
        row = table.set_index("metric").loc["dcg@5"]
        self.assertLessEqual(row["low"], row["value"])
        self.assertLessEqual(row["value"], row["high"])
        self.assertTrue(any(w.startswith("snips scale:")
                            for w in table.attrs["diagnostics"]["warnings"]))

    def test_06b_evaluate_own_policy_obp_style(self) -> None:
        # A bandit log with logging probabilities: u_k saw i0 (p 0.5, reward
        # 1) and i1 (p 0.25, reward 0).
        log = pd.DataFrame({"user": [f"u{k}" for k in range(10) for _ in range(2)],
                            "item": ["i0", "i1"] * 10, "label": [1.0, 0.0] * 10,
                            "propensity": [0.5, 0.25] * 10,
                            "event_id": [f"d{k}" for k in range(20)]})
        self.client.ingest("bandit", log)
        # Your own policy: prefer i0 for every user (greedy).
        mine = pd.DataFrame({"user": [f"u{k}" for k in range(10) for _ in range(2)],
                             "item": ["i0", "i1"] * 10, "score": [2.0, 1.0] * 10})
        table = self.client.evaluate_policy("bandit", ["ipw", "snips"], scores=mine,
                                            bootstrap=30, seed=2)
        self.assertEqual(table["estimator"].tolist(), ["ipw", "snips"])
        ipw = table.set_index("estimator").loc["ipw"]
        self.assertAlmostEqual(ipw["value"], (10 * 1.0 / 0.5) / 20, places=9)
        self.assertLessEqual(ipw["low"], ipw["value"])
        self.assertEqual(table.set_index("estimator").loc["snips", "value"], 1.0)
        self.client.delete_dataset("bandit")

    def test_06c_asyncio_client(self) -> None:
        import asyncio
        from debias_client.aio import AsyncClient

        async def main() -> None:
            async with AsyncClient(self.client.target, token="", tls_ca="", tls_cert="",
                                   tls_key="") as c:
                self.assertEqual(await c.health(), "SERVING")
                frame = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"],
                                      "event_id": ["1", "2", "3"]})
                acked = await c.ingest("aio", frame, batch_size=2)
                self.assertEqual((int(acked), acked.events_stored), (3, 3))
                self.assertEqual((await c.ingest("aio", frame)).events_duplicate, 3)
                with self.assertRaises(IngestError):
                    await c.ingest("aio", [{"user": "a", "item": "x", "label": float("nan")}])
                mid = self.model["id"]
                users = ["u0", "u1", "u2"]
                many = await asyncio.gather(*(c.score(mid, u, ["i0", "i1"]) for u in users))
                for u, got in zip(users, many):
                    np.testing.assert_allclose(got, self.client.score(mid, u, ["i0", "i1"]),
                                               rtol=1e-6)
                items, _ = await c.topk(mid, "u0", 4)
                self.assertEqual(items, self.client.topk(mid, "u0", 4)[0])
                model = await c.train("aio", "naive", {"epochs": 2, "dim": 4})
                self.assertEqual(model["state"], "ready")
                with self.assertRaises(DebiasError) as ctx:
                    await c.get_model(10**9)
                self.assertEqual(ctx.exception.code, "NOT_FOUND")
                report = await c.evaluate(mid, DATASET, estimator="ips", k=5)
                self.assertIn("dcg@5", report["metrics"])
        asyncio.run(main())
        self.client.delete_dataset("aio")

    def test_06d_export_import_backup(self) -> None:
        path = os.path.join(self.tmp, "model.pb")
        header = self.client.export_model(self.model["id"], path)
        self.assertGreater(header["parameters_bytes"], 0)
        self.assertFalse(os.path.exists(path + ".tmp"))
        imported = self.client.import_model(path)
        self.assertEqual(imported["state"], "ready")
        self.assertNotEqual(imported["id"], self.model["id"])
        np.testing.assert_allclose(self.client.score(imported["id"], "u0", ["i0", "i1"]),
                                   self.client.score(self.model["id"], "u0", ["i0", "i1"]))
        self.client.delete_model(imported["id"])
        with open(os.path.join(self.tmp, "junk.pb"), "wb") as f:
            f.write(b"not a snapshot")
        with self.assertRaises(DebiasError) as ctx:
            self.client.import_model(os.path.join(self.tmp, "junk.pb"))
        self.assertEqual(ctx.exception.code, "INVALID_ARGUMENT")
        with self.assertRaises(DebiasError) as ctx:
            self.client.backup("b1")  # this server runs without --backup_dir
        self.assertEqual(ctx.exception.code, "FAILED_PRECONDITION")

    def test_07_errors(self) -> None:
        with self.assertRaises(DebiasError) as ctx:
            self.client.train(DATASET, "no-such-loss")
        self.assertEqual(ctx.exception.code, "INVALID_ARGUMENT")
        with self.assertRaises(DebiasError) as ctx:
            self.client.topk(self.model["id"], "u0", 0)
        self.assertEqual(ctx.exception.code, "INVALID_ARGUMENT")
        self.assertIn("k", ctx.exception.message)
        with self.assertRaises(DebiasError) as ctx:
            self.client.get_model(10**9)
        self.assertEqual(ctx.exception.code, "NOT_FOUND")
        with self.assertRaises(TypeError):
            self.client.evaluate(self.model["id"], DATASET, no_such_option=1)

    def test_08_delete_model(self) -> None:
        mid = self.model["id"]
        self.client.delete_model(mid)
        with self.assertRaises(DebiasError) as ctx:
            self.client.get_model(mid)
        self.assertEqual(ctx.exception.code, "NOT_FOUND")


_ENV_KEYS = ("DEBIAS_SERVER", "DEBIAS_TOKEN", "DEBIAS_TLS_CA", "DEBIAS_TLS_CERT",
             "DEBIAS_TLS_KEY", "DEBIAS_TLS_SERVER_NAME")


def start_debiasd(tmp: str, extra: Sequence[str] = ()) -> "tuple[subprocess.Popen, int]":
    """Starts $DEBIASD on 127.0.0.1 port 0 in ``tmp``; returns (process, port)."""
    debiasd = os.environ.get("DEBIASD", "")
    if not debiasd or not os.access(debiasd, os.X_OK):
        raise unittest.SkipTest(f"DEBIASD={debiasd!r} is not an executable debiasd")
    port_file = os.path.join(tmp, "port")
    with open(os.path.join(tmp, "debiasd.log"), "wb") as log:
        proc = subprocess.Popen(
            [debiasd, "--listen", "127.0.0.1:0", "--data_dir", os.path.join(tmp, "db"),
             "--port_file", port_file, "--log_level", "warn", *extra],
            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            with open(os.path.join(tmp, "debiasd.log"), "rb") as f:
                raise RuntimeError("debiasd did not start:\n" + f.read().decode(errors="replace"))
        time.sleep(0.02)
    with open(port_file) as f:
        return proc, int(f.read().strip())


class NamesAndBalancingTest(unittest.TestCase):
    """Model names, versions and labels (issue 23), and one client balancing
    its calls over two servers with round_robin."""

    def setUp(self) -> None:
        self.tmps = [tempfile.mkdtemp(prefix="debias_pynames_") for _ in range(2)]
        self.procs, self.ports = [], []
        for t in self.tmps:
            proc, port = start_debiasd(t)
            self.procs.append(proc)
            self.ports.append(port)
        self.a = Client(f"127.0.0.1:{self.ports[0]}", token="", tls_ca="", tls_cert="",
                        tls_key="")

    def tearDown(self) -> None:
        self.a.close()
        for p in self.procs:
            p.terminate()
            p.wait(timeout=20)
        for t in self.tmps:
            shutil.rmtree(t, ignore_errors=True)

    def test_names_labels_and_round_robin(self) -> None:
        self.a.ingest(DATASET, synthetic_clicks())
        v1 = self.a.train(DATASET, "naive", {"epochs": 2, "dim": 4}, seed=1, name="rec")
        v2 = self.a.train(DATASET, "naive", {"epochs": 2, "dim": 4}, seed=2, name="rec")
        self.assertEqual((v1["name"], v1["version"], v2["version"]), ("rec", 1, 2))
        self.assertEqual(self.a.get_model("rec")["version"], 2)  # latest without stable
        self.assertEqual(self.a.set_model_label("rec", "stable", 1), {"stable": 1})
        self.a.set_model_label("rec", "canary", 2)
        self.assertEqual(self.a.get_model("rec")["id"], v1["id"])
        self.assertEqual(self.a.get_model("rec@canary")["id"], v2["id"])
        np.testing.assert_allclose(self.a.score("rec:1", "u0", ["i1", "i2"]),
                                   self.a.score(v1["id"], "u0", ["i1", "i2"]))
        self.assertEqual(self.a.get_model_labels("rec")["versions"], [1, 2])
        with self.assertRaises(DebiasError) as e:
            self.a.score("rec@gold", "u0", ["i1"])
        self.assertEqual(e.exception.code, "NOT_FOUND")
        with self.assertRaises(DebiasError) as e:
            self.a.score("Rec!", "u0", ["i1"])
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        with self.assertRaises(DebiasError) as e:
            self.a.train(DATASET, "naive", name="Bad Name")
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.assertIn("name=", e.exception.message)

        # The second server has its own "rec" (a different id); one
        # round_robin client then reaches both servers, by name.
        with Client(f"127.0.0.1:{self.ports[1]}", token="", tls_ca="", tls_cert="",
                    tls_key="") as b:
            b.ingest(DATASET, synthetic_clicks())
            b.train(DATASET, "naive", {"epochs": 2, "dim": 4}, seed=3)  # unnamed: id 1
            w = b.train(DATASET, "naive", {"epochs": 2, "dim": 4}, seed=2, name="rec")
            self.assertEqual((w["id"], w["version"]), (2, 1))
        target = f"ipv4:127.0.0.1:{self.ports[0]},127.0.0.1:{self.ports[1]}"
        with Client(target, token="", tls_ca="", tls_cert="", tls_key="",
                    lb_policy="round_robin") as both:
            both.wait_until_serving(10)
            served = set()
            for _ in range(20):
                resp = both._call(both._scoring.Score,
                                  sc_pb2.ScoreRequest(model=parse_model_ref("rec"), user="u0",
                                                      items=["i1"]))
                served.add((resp.served.id, resp.served.version))
            # A serves rec@stable (id 1), B its only version (id 2).
            self.assertEqual(served, {(v1["id"], 1), (2, 1)})


class ClientFromEnvironmentTest(unittest.TestCase):
    """Client() with no argument connects like debiasctl: DEBIAS_SERVER,
    DEBIAS_TOKEN and DEBIAS_TLS_* against a mutual-TLS server with tokens."""

    TOKEN = "py-client-test-token"

    @classmethod
    def setUpClass(cls) -> None:
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("openssl not found (needed to make test certificates)")
        cls.tmp = tempfile.mkdtemp(prefix="debias_pyclient_tls_")
        d = cls.tmp
        key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        # The server certificate names only debias.test, so connecting to
        # 127.0.0.1 needs the server-name override.
        cmd = (f"cd {d} && printf 'subjectAltName=DNS:debias.test\\n' > san.cnf && "
               f"openssl req -x509 {key} -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca && "
               f"openssl req {key} -keyout server.key -out server.csr -subj /CN=debias.test && "
               f"openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
               f"-out server.pem -days 2 -extfile san.cnf && "
               f"openssl req {key} -keyout client.key -out client.csr -subj /CN=client && "
               f"openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
               f"-out client.pem -days 2")
        subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        with open(os.path.join(d, "tokens"), "w") as f:
            f.write(f"admin {cls.TOKEN}\n")
        cls.proc, cls.port = start_debiasd(d, [
            "--auth_tokens", os.path.join(d, "tokens"),
            "--tls_cert", os.path.join(d, "server.pem"),
            "--tls_key", os.path.join(d, "server.key"),
            "--tls_client_ca", os.path.join(d, "ca.pem")])

    @classmethod
    def tearDownClass(cls) -> None:
        if getattr(cls, "proc", None) is not None:
            cls.proc.terminate()
            try:
                cls.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def env(self, **values: str) -> Any:
        """os.environ with every DEBIAS_* connection variable unset but ``values``."""
        patch = mock.patch.dict(os.environ, values)
        patch.start()
        self.addCleanup(patch.stop)
        for k in _ENV_KEYS:
            if k not in values:
                os.environ.pop(k, None)

    def full_env(self, **override: str) -> Dict[str, str]:
        d = self.tmp
        env = {"DEBIAS_SERVER": f"127.0.0.1:{self.port}", "DEBIAS_TOKEN": self.TOKEN,
               "DEBIAS_TLS_CA": os.path.join(d, "ca.pem"),
               "DEBIAS_TLS_CERT": os.path.join(d, "client.pem"),
               "DEBIAS_TLS_KEY": os.path.join(d, "client.key"),
               "DEBIAS_TLS_SERVER_NAME": "debias.test"}
        env.update(override)
        return {k: v for k, v in env.items() if v}

    def test_default_target(self) -> None:
        self.env()
        with Client() as c:
            self.assertEqual(c.target, "127.0.0.1:50051")

    def test_everything_from_the_environment(self) -> None:
        self.env(**self.full_env())
        with Client(timeout=10) as c:
            self.assertEqual(c.target, f"127.0.0.1:{self.port}")
            self.assertEqual(c.health(), "SERVING")
            self.assertEqual(c.list_datasets(), [])  # needs the token

    def test_arguments_override_the_environment(self) -> None:
        self.env(**self.full_env(DEBIAS_SERVER="127.0.0.1:1", DEBIAS_TOKEN="wrong"))
        with Client(f"127.0.0.1:{self.port}", timeout=10, token=self.TOKEN) as c:
            self.assertEqual(c.list_datasets(), [])
        with Client(f"127.0.0.1:{self.port}", timeout=10) as c:  # the wrong token
            with self.assertRaises(DebiasError) as ctx:
                c.list_datasets()
            self.assertEqual(ctx.exception.code, "UNAUTHENTICATED")

    def test_each_setting_is_needed(self) -> None:
        for missing, code in (("DEBIAS_TOKEN", "UNAUTHENTICATED"),
                              ("DEBIAS_TLS_SERVER_NAME", "UNAVAILABLE"),
                              ("DEBIAS_TLS_CA", "UNAVAILABLE")):  # system roots
            self.env(**self.full_env(**{missing: ""}))
            with Client(timeout=5) as c:
                with self.assertRaises(DebiasError, msg=missing) as ctx:
                    c.list_datasets()
                self.assertEqual(ctx.exception.code, code, missing)
        # Without a client certificate the mutual-TLS handshake fails.
        self.env(**self.full_env(DEBIAS_TLS_CERT="", DEBIAS_TLS_KEY=""))
        with Client(timeout=5) as c:
            with self.assertRaises(DebiasError) as ctx:
                c.list_datasets()
            self.assertEqual(ctx.exception.code, "UNAVAILABLE")

    def test_bad_tls_settings(self) -> None:
        self.env(**self.full_env(DEBIAS_TLS_CA=os.path.join(self.tmp, "absent.pem")))
        with self.assertRaises(DebiasError) as ctx:
            Client()
        self.assertEqual(ctx.exception.code, "INVALID_ARGUMENT")
        self.assertIn("absent.pem", ctx.exception.message)
        self.env(**self.full_env(DEBIAS_TLS_KEY=""))
        with self.assertRaises(DebiasError) as ctx:
            Client()
        self.assertEqual(ctx.exception.code, "INVALID_ARGUMENT")


if __name__ == "__main__":
    unittest.main()
