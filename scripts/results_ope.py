#!/usr/bin/env python3
"""Off-policy estimators against a known truth, through the front door.

Writes docs/results/02-ope.md: bias, standard deviation, RMSE and 95 % interval
coverage of every `debiasctl evaluate --policy-estimator` over R fresh logs
of one simulated logged-bandit world (R >= 20), all estimators in one call
per log (`--policy-estimator dm,ipw,...`).

The generator (documented here, seeded, numpy-free):
  * contexts = U users, actions = A items; user u has x_u ~ N(0, I_d), item
    i has y_i ~ N(0, I_d) and a bias b_i ~ N(-0.5, 0.5^2); the true reward of
    (u, i) is Bernoulli(q(u, i)), q = sigmoid(x_u . y_i + b_i).
  * a training set (every user sees `train_per_user` uniformly drawn items,
    reward drawn from q) trains the evaluated model (`train --loss naive`);
    the model is the target policy (greedy, or softmax with --temperature)
    and, through sigmoid(score), the DM / DR reward model.
  * the logging policy is mu(i | u) = softmax_i(beta * (x_u . y_i + b_i + e_ui))
    with e_ui ~ N(0, 1) and beta = 0.5: informative but noisy, every
    probability > 0.
  * a log: N decisions, u uniform over users, i ~ mu(. | u), reward ~
    Bernoulli(q(u, i)), written as CSV user,item,label,propensity
    (propensity = mu(i | u)), with the decision's index as timestamp (the
    store keys events by (user, item, timestamp): without it repeated
    (user, item) decisions would overwrite each other), and ingested as its
    own dataset.
  * truth: V(pi) = mean_u sum_i pi(i | u) q(u, i), with pi computed from the
    model's scores (`debiasctl score`) exactly as the server does.
  * further calls per log: dm, dr, sndr with `--reward-model crossfit` (a
    reward model fitted on the log with 5-fold cross-fitting), and ipw, dr,
    switch-dr, dr-os, subgaussian-dr with `--slope` (knobs chosen by SLOPE);
    the main call's trust report ("recommended") is tallied.
  * a large-action world for MIPS: 10 users, 200 items in 10 categories, the reward
    depends on the item only through its category (y_i = z_c(i), b_i =
    b_c(i)), the logging policy on the item itself; categories uploaded with
    `--item-category`; greedy target.
  * a slate world: 10 items, slates of L = 3 whose positions the logging
    policy fills independently (mu_k(i | u) = softmax of beta (logit +
    position-specific noise), so the logged propensity is both the marginal
    and the conditional probability), rewards with a cascade interaction
    r_1 ~ B(q(a_1)), r_k ~ B(q(a_k) (1 - 0.5 r_{k-1})); the target is the
    model's own top-3 (`--target ranking`); truth sum_k p_k with p_1 = q(t_1),
    p_k = q(t_k) (1 - 0.5 p_{k-1}).

    /usr/bin/python3 scripts/results_ope.py [--build build] [--logs 20]
"""
import argparse
import math
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from frontdoor import Server, write_fragment  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ESTIMATORS = ["dm", "ipw", "snips", "dr", "sndr", "switch-dr", "dr-os",
              "subgaussian-ipw", "subgaussian-dr", "balanced-ipw"]

TUNED = ["switch-dr", "dr-os", "subgaussian-ipw", "subgaussian-dr"]
KNOB = {"switch-dr": "tau", "dr-os": "lambda", "subgaussian-ipw": "subgaussian_lambda",
        "subgaussian-dr": "subgaussian_lambda"}


def label(e, params):
    return f"{e} ({KNOB[e]}={params[KNOB[e]]})" if e in KNOB else e


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def softmax(v, t=1.0):
    m = max(v)
    e = [math.exp((x - m) / t) for x in v]
    s = sum(e)
    return [x / s for x in e]


class World:
    def __init__(self, users, items, dim, beta, seed, categories=None):
        g = random.Random(seed)
        self.users = [f"u{k}" for k in range(users)]
        self.items = [f"i{k}" for k in range(items)]
        x = [[g.gauss(0, 1) for _ in range(dim)] for _ in range(users)]
        groups = categories or items
        y = [[g.gauss(0, 1) for _ in range(dim)] for _ in range(groups)]
        b = [g.gauss(-0.5, 0.5) for _ in range(groups)]
        self.category = [i % groups for i in range(items)]
        y = [y[c] for c in self.category]
        b = [b[c] for c in self.category]
        self.logit = [[sum(p * q for p, q in zip(x[u], y[i])) + b[i] for i in range(items)]
                      for u in range(users)]
        self.q = [[sigmoid(z) for z in row] for row in self.logit]
        self.mu = [softmax([beta * (z + g.gauss(0, 1)) for z in row]) for row in self.logit]

    def training_csv(self, path, per_user, seed):
        g = random.Random(seed)
        with open(path, "w") as f:
            f.write("user,item,label\n")
            for u, uk in enumerate(self.users):
                # every item at least once overall, so the model knows all of them
                for i in g.sample(range(len(self.items)), per_user):
                    f.write(f"{uk},{self.items[i]},{int(g.random() < self.q[u][i])}\n")

    def log_csv(self, path, n, seed):
        g = random.Random(seed)
        rows = []
        for _ in range(n):
            u = g.randrange(len(self.users))
            i = g.choices(range(len(self.items)), weights=self.mu[u])[0]
            rows.append((self.users[u], self.items[i], int(g.random() < self.q[u][i]),
                         self.mu[u][i]))
        # The timestamp (the decision's index) keeps repeated (user, item)
        # decisions apart: the store's natural key is (user, item, timestamp).
        with open(path, "w") as f:
            f.write("user,item,label,timestamp,propensity\n")
            for t, r in enumerate(rows):
                f.write(f"{r[0]},{r[1]},{r[2]},{t},{r[3]:.9g}\n")


    def slate_mus(self, positions, beta, seed):
        g = random.Random(seed)
        return [[softmax([beta * (z + g.gauss(0, 1)) for z in row]) for row in self.logit]
                for _ in range(positions)]

    def slate_log_csv(self, path, n, mus, gamma, seed):
        g = random.Random(seed)
        with open(path, "w") as f:
            f.write("user,item,label,timestamp,propensity,list_id,position\n")
            for t in range(n):
                u = g.randrange(len(self.users))
                prev = 0
                for k, mu in enumerate(mus):
                    i = g.choices(range(len(self.items)), weights=mu[u])[0]
                    r = int(g.random() < self.q[u][i] * (1 - gamma * prev))
                    prev = r
                    f.write(f"{self.users[u]},{self.items[i]},{r},{t},{mu[u][i]:.9g},"
                            f"s{t},{k + 1}\n")


def target_policy(srv, model, world, target, temperature):
    pis = []
    for uk in world.users:
        s = srv.ctl("score", "--model", str(model), "--user", uk,
                    "--items", ",".join(world.items))["scores"]
        if target == "greedy":
            top = max(range(len(s)), key=lambda j: s[j])  # first maximum, as the server
            pis.append([1.0 if j == top else 0.0 for j in range(len(s))])
        else:
            pis.append(softmax(s, temperature))
    return pis


def summarize(name, truth, runs):
    est = [r["value"] for r in runs]
    n = len(est)
    mean = sum(est) / n
    sd = math.sqrt(sum((e - mean) ** 2 for e in est) / (n - 1))
    rmse = math.sqrt(sum((e - truth) ** 2 for e in est) / n)
    cov_n = sum(r["normal"][0] <= truth <= r["normal"][1] for r in runs) / n
    boot = [r for r in runs if r["boot"] is not None]
    cov_b = sum(r["boot"][0] <= truth <= r["boot"][1] for r in boot) / len(boot) if boot else None
    t = (mean - truth) / (sd / math.sqrt(n)) if sd > 0 else float("inf")
    return (f"| {name} | {mean:.4f} | {mean - truth:+.4f} ({100 * (mean - truth) / truth:+.1f} %) "
            f"| {t:+.1f} | {sd:.4f} | {rmse:.4f} | {cov_n:.2f} | "
            f"{'' if cov_b is None else f'{cov_b:.2f}'} |")


def run_calls(srv, model, name, calls, seed, extra=()):
    """One evaluate call per (label suffix, estimators, flags); returns
    {row label: run} for every estimator of every call, and the main
    call's trust recommendation."""
    out, recommended = {}, None
    for suffix, estimators, flags in calls:
        args = ["evaluate", "--model", str(model), "--dataset", name,
                "--policy-estimator", ",".join(estimators), "--seed", str(seed)]
        ev = srv.ctl(*(args + list(flags) + list(extra)))
        if recommended is None:
            recommended = ev["diagnostics"].get("trust", {}).get("recommended")
        for e in estimators:
            key = f"policy_value/{e}"
            bi = ev["intervals"].get(key)
            out[e + suffix] = {"value": ev["metrics"][key],
                               "normal": tuple(ev["normal_intervals"][key]),
                               "boot": tuple(bi) if bi else None}
    return out, recommended


def section(srv, model, tmp, title, truth, note, calls, logs, make_log, extra=()):
    """R fresh logs through the calls; the table of every row label."""
    runs, tally = {}, {}
    for r in range(logs):
        name = f"{title.split()[0].lower()}-{r}"
        path = os.path.join(tmp, f"{name}.csv")
        if make_log is not None:
            make_log(path, r)
            srv.ctl("ingest", "--dataset", name, "--format", "csv", path)
        got, rec = run_calls(srv, model, name, calls, r, extra)
        for k, v in got.items():
            runs.setdefault(k, []).append(v)
        rec = rec or "none (no reference with ESS >= 10)"
        tally[rec] = tally.get(rec, 0) + 1
    rows = [f"#### {title}", "", f"True value {truth:.4f}. {note}", "",
            "| estimator | mean | bias | t | sd | RMSE | normal coverage | bootstrap coverage |",
            "|---|---|---|---|---|---|---|---|"]
    rows += [summarize(k, truth, v) for k, v in runs.items()]
    rows += ["", "Trust report of the first call (`diagnostics.trust.recommended`, smallest "
             "estimated MSE) over the logs: " +
             ", ".join(f"{k} {v}/{logs}" for k, v in sorted(tally.items(), key=lambda kv: -kv[1])) +
             ".", ""]
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--logs", type=int, default=20)
    ap.add_argument("--decisions", type=int, default=5000)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "02-ope.md"))
    a = ap.parse_args()
    if a.logs < 2:
        sys.exit("--logs must be >= 2")
    # Two fixed settings of each hyperparameter, chosen before the runs (no
    # tuning on the truth): the first in the main call, the second in a
    # call of its own for the four estimators that take one.
    params = {"tau": "20", "lambda": "10", "subgaussian_lambda": "0.1"}
    params2 = {"tau": "200", "lambda": "1000", "subgaussian_lambda": "0.01"}
    knobs = lambda p: ["--tau", p["tau"], "--lambda", p["lambda"],  # noqa: E731
                       "--subgaussian-lambda", p["subgaussian_lambda"]]
    world = World(a.users, a.items, dim=4, beta=0.5, seed=7)
    t0 = time.time()
    out = ["### Off-policy estimators against a known truth",
           "",
           "Produced by `scripts/results_ope.py` (its docstring documents the generators): "
           "simulated worlds with known reward means and known logging probabilities, "
           f"{a.logs} fresh logs of {a.decisions} decisions (or slates) per world and target, "
           "each ingested and evaluated by debiasd through `debiasctl evaluate "
           "--policy-estimator ...` (several estimators per call). The evaluated model is an "
           "MF (`train --loss naive`) fitted on a separate uniformly-exposed training set of "
           "the same world; it is the target policy and, through sigmoid(score), the `self` "
           "reward model (misspecified: DM is biased by design); `(crossfit)` rows use "
           "`--reward-model crossfit` instead, `(slope)` rows `--slope`. Hyperparameters of the "
           f"plain rows are fixed before the runs (`--tau {params['tau']} --lambda "
           f"{params['lambda']} --subgaussian-lambda {params['subgaussian_lambda']}`, and a "
           f"second setting `--tau {params2['tau']} --lambda {params2['lambda']} "
           f"--subgaussian-lambda {params2['subgaussian_lambda']}`), not tuned on the truth.",
           "",
           "Columns: mean estimate over the logs; bias = mean - truth (relative); t = bias / "
           "(sd / sqrt(R)), |t| > 3 is a bias the logs resolve; sd across logs; RMSE; share of "
           "logs whose 95 % normal (delta-method) and percentile-bootstrap intervals cover the "
           "truth (bootstrap only in the first call of a world).",
           ""]
    boot = ["--bootstrap", str(a.bootstrap)]
    with tempfile.TemporaryDirectory(prefix="debias-ope-") as tmp, Server(a.build) as srv:
        def train_on(w, tag, per_user):
            path = os.path.join(tmp, f"train-{tag}.csv")
            w.training_csv(path, per_user=per_user, seed=11)
            srv.ctl("ingest", "--dataset", f"train-{tag}", "--format", "csv", path)
            return srv.ctl("train", "--dataset", f"train-{tag}", "--loss", "naive",
                           "--seed", "0")["model_id"]

        def truth_of(w, pis):
            return sum(sum(p * q for p, q in zip(pis[u], w.q[u]))
                       for u in range(len(w.users))) / len(w.users)

        # Single actions.
        model = train_on(world, "single", 10)
        mu_value = truth_of(world, world.mu)
        for target, temperature in (("greedy", None), ("softmax", 0.5)):
            pis = target_policy(srv, model, world, target, temperature)
            tflags = ["--target", target] + (["--temperature", str(temperature)]
                                             if temperature else [])
            calls = [("", ESTIMATORS, knobs(params) + boot),
                     ("'", TUNED, knobs(params2)),
                     (" (crossfit)", ["dm", "dr", "sndr", "switch-dr"],
                      ["--reward-model", "crossfit", "--tau", params["tau"]]),
                     (" (slope)", ["ipw", "dr", "switch-dr", "dr-os", "subgaussian-dr"],
                      ["--slope"])]
            make = (lambda path, r: world.log_csv(path, a.decisions, seed=1000 + r)) \
                if target == "greedy" else None
            rows = section(srv, model, tmp, "single", truth_of(world, pis),
                           f"Logging policy's value {mu_value:.4f}.", calls, a.logs, make,
                           tflags)
            rows[0] = f"#### Single actions, target: {target}" + (
                f" (temperature {temperature})" if temperature else "")
            out += [relabel(row, params, params2) for row in rows]
            print(f"{target}: done at {time.time() - t0:.0f} s", file=sys.stderr)

        # Large action space: MIPS.
        # Few contexts, many actions: 10 users, so each (user, category) cell
        # holds ~50 decisions for the marginal weights' regression.
        big = World(10, 200, dim=4, beta=0.5, seed=8, categories=10)
        bmodel = train_on(big, "big", 150)
        cats = os.path.join(tmp, "categories.csv")
        with open(cats, "w") as f:
            f.write("item,category\n")
            for i, c in zip(big.items, big.category):
                f.write(f"{i},c{c}\n")
        bpis = target_policy(srv, bmodel, big, "greedy", None)
        out += section(srv, bmodel, tmp, "Large action space (mips)", truth_of(big, bpis),
                       f"Logging policy's value {truth_of(big, big.mu):.4f}.",
                       [("", ["ipw", "snips", "dr", "mips", "snmips"],
                         ["--item-category", cats] + boot)],
                       a.logs, lambda path, r: big.log_csv(path, a.decisions, seed=3000 + r))
        print(f"mips: done at {time.time() - t0:.0f} s", file=sys.stderr)

        # Slates.
        sw = World(a.users, 10, dim=4, beta=1.0, seed=9)
        smodel = train_on(sw, "slate", 10)
        mus = sw.slate_mus(3, beta=1.0, seed=21)
        gamma = 0.5
        truth = 0.0
        for u, uk in enumerate(sw.users):
            s_ = srv.ctl("score", "--model", str(smodel), "--user", uk,
                         "--items", ",".join(sw.items))["scores"]
            top = sorted(range(len(s_)), key=lambda j: (-s_[j], j))[:3]
            p = 0.0
            for k, i in enumerate(top):
                p = sw.q[u][i] * (1 - gamma * p) if k else sw.q[u][i]
                truth += p / len(sw.users)
        out += section(srv, smodel, tmp, "Slates", truth,
                       "Target: the model's top-3 (`--target ranking`); cascade interaction "
                       "(IIPS's position-wise independence does not hold).",
                       [("", ["dm", "iips", "sips", "rips", "cascade-dr"], boot),
                        (" (crossfit)", ["dm", "cascade-dr"], ["--reward-model", "crossfit"])],
                       a.logs,
                       lambda path, r: sw.slate_log_csv(path, a.decisions, mus, gamma,
                                                        seed=5000 + r),
                       ["--target", "ranking"])
        print(f"slates: done at {time.time() - t0:.0f} s", file=sys.stderr)
    out += READING
    write_fragment(a.out, out, t0)


def relabel(row, params, params2):
    """Row labels with their knob (switch-dr (tau=20), ...)."""
    if not row.startswith("| "):
        return row
    name = row[2:].split(" |", 1)[0]
    base, p = (name[:-1], params2) if name.endswith("'") else (name, params)
    if base in KNOB:
        return row.replace(f"| {name} |", f"| {label(base, p)} |", 1)
    return row


READING = [
    "Reading. Single actions: IPS, SNIPS, DR and SNDR are unbiased within noise with close "
    "to nominal coverage; DM carries its reward model's bias. The cross-fitted reward model "
    "(`--reward-model crossfit`, shrunk logged means) has a much smaller DM bias than the "
    "self model on the greedy target and leaves DR unbiased; on the softmax target (mass "
    "spread over items rarely logged for a user) its DM is as biased as the self model's, "
    "and DR corrects it. switch-DR, DR-os and the sub-Gaussian estimators trade bias for "
    "variance through their knob. SLOPE (`--slope`) picks a knob whose interval still "
    "overlaps the less clipped ones; with delta-method widths on heavy weights that "
    "accepts biases of about 2 (se_i + se_j), so here its choices are biased (|t| > 3) and "
    "cover the truth rarely: it is reported, not recommended as a default. Large action "
    "space: MIPS with the marginal weights estimated per (user, category) cell has a bit "
    "less spread than IPS (its intervals include the weight regression); SN-MIPS has a "
    "third of IPS's spread. Slates (cascade interaction, `--target ranking`): SIPS is "
    "unbiased in expectation but heavy-tailed (a few matched slates carry the estimate; "
    "its delta-method intervals cover rarely), RIPS less so, Cascade-DR has the smallest "
    "spread of the unbiased slate estimators and near-nominal coverage; IIPS stays close "
    "to the truth here because the interaction is mild. The trust report recommends an "
    "unbiased or mildly biased estimator in most logs; it recommended DM (biased by 16-50 %) "
    "in 1 and 2 of 20 logs, where the reference's own noise hid that bias, and nothing "
    "when no unbiased estimator had an effective sample size of 10.",
    ""]


if __name__ == "__main__":
    main()
