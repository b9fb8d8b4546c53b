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
    def __init__(self, users, items, dim, beta, seed):
        g = random.Random(seed)
        self.users = [f"u{k}" for k in range(users)]
        self.items = [f"i{k}" for k in range(items)]
        x = [[g.gauss(0, 1) for _ in range(dim)] for _ in range(users)]
        y = [[g.gauss(0, 1) for _ in range(dim)] for _ in range(items)]
        b = [g.gauss(-0.5, 0.5) for _ in range(items)]
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
    world = World(a.users, a.items, dim=4, beta=0.5, seed=7)
    t0 = time.time()
    out = ["### Off-policy estimators against a known truth",
           "",
           "Produced by `scripts/results_ope.py` (its docstring documents the generator): "
           f"one simulated logged-bandit world ({a.users} contexts = users, {a.items} actions "
           "= items, Bernoulli rewards with known means, a noisy softmax logging policy with "
           f"known probabilities), {a.logs} fresh logs of {a.decisions} decisions, each "
           "ingested and evaluated by debiasd through `debiasctl evaluate --policy-estimator "
           f"{','.join(ESTIMATORS)}` (one call per log and target) with `--tau {params['tau']} "
           f"--lambda {params['lambda']} --subgaussian-lambda {params['subgaussian_lambda']} "
           f"--bootstrap {a.bootstrap}` and no clipping; a second call per log runs "
           f"{', '.join(TUNED)} at `--tau {params2['tau']} --lambda {params2['lambda']} "
           f"--subgaussian-lambda {params2['subgaussian_lambda']}` (both settings fixed before "
           "the runs, not tuned on the truth). The evaluated model is an MF "
           "(`train --loss naive`) fitted on a separate uniformly-exposed training set; it is "
           "the target policy and, through sigmoid(score), the reward model of DM and the DR "
           "family (a misspecified reward model: DM is biased by design).",
           "",
           "Columns: mean estimate over the logs; bias = mean - truth (relative); t = bias / "
           "(sd / sqrt(R)), |t| > 3 is a bias the logs resolve; sd across logs; RMSE; share of "
           "logs whose 95 % normal (delta-method) and percentile-bootstrap intervals cover the "
           "truth.",
           ""]
    with tempfile.TemporaryDirectory(prefix="debias-ope-") as tmp, Server(a.build) as srv:
        train = os.path.join(tmp, "train.csv")
        world.training_csv(train, per_user=10, seed=11)
        srv.ctl("ingest", "--dataset", "train", "--format", "csv", train)
        model = srv.ctl("train", "--dataset", "train", "--loss", "naive", "--seed", "0")["model_id"]
        for target, temperature in (("greedy", None), ("softmax", 0.5)):
            pis = target_policy(srv, model, world, target, temperature)
            truth = sum(sum(p * q for p, q in zip(pis[u], world.q[u]))
                        for u in range(a.users)) / a.users
            runs = {e: [] for e in ESTIMATORS + [t + "'" for t in TUNED]}
            for r in range(a.logs):
                name = f"log-{r}"
                if target == "greedy":
                    path = os.path.join(tmp, f"{name}.csv")
                    world.log_csv(path, a.decisions, seed=1000 + r)
                    srv.ctl("ingest", "--dataset", name, "--format", "csv", path)
                args = ["evaluate", "--model", str(model), "--dataset", name,
                        "--policy-estimator", ",".join(ESTIMATORS), "--tau", params["tau"],
                        "--lambda", params["lambda"], "--subgaussian-lambda",
                        params["subgaussian_lambda"], "--bootstrap", str(a.bootstrap),
                        "--seed", str(r), "--target", target]
                if temperature:
                    args += ["--temperature", str(temperature)]
                ev = srv.ctl(*args)
                args2 = list(args)
                args2[args2.index("--policy-estimator") + 1] = ",".join(TUNED)
                for k in ("tau", "lambda", "subgaussian_lambda"):
                    flag = "--" + k.replace("_", "-")
                    args2[args2.index(flag) + 1] = params2[k]
                ev2 = srv.ctl(*args2)
                for e in ESTIMATORS + [t + "'" for t in TUNED]:
                    src, name = (ev2, e[:-1]) if e.endswith("'") else (ev, e)
                    key = f"policy_value/{name}"
                    ni = src["normal_intervals"][key]
                    bi = src["intervals"].get(key)
                    runs[e].append({"value": src["metrics"][key],
                                    "normal": tuple(ni),
                                    "boot": tuple(bi) if bi else None})
            out += [f"#### Target: {target}" + (f" (temperature {temperature})" if temperature else ""),
                    "",
                    f"True value {truth:.4f}; logging policy's value "
                    f"{sum(sum(p * q for p, q in zip(world.mu[u], world.q[u])) for u in range(a.users)) / a.users:.4f}.",
                    "",
                    "| estimator | mean | bias | t | sd | RMSE | normal coverage | bootstrap coverage |",
                    "|---|---|---|---|---|---|---|---|"]
            out += [summarize(label(e, params), truth, runs[e]) for e in ESTIMATORS]
            out += [summarize(label(t, params2), truth, runs[t + "'"]) for t in TUNED]
            out.append("")
            print(f"{target}: done at {time.time() - t0:.0f} s", file=sys.stderr)
    out += ["Reading: IPS, SNIPS, DR and SNDR are unbiased within noise with close to "
            "nominal coverage; DM carries its reward model's bias. switch-DR, DR-os and the "
            "sub-Gaussian estimators trade bias for variance through their knob: at a "
            "setting that shrinks the large weights here, DR-os and switch-DR move toward "
            "DM's bias and sub-Gaussian IPW toward 0 (rewards are >= 0); choosing the knob "
            "from data (SLOPE) is still open in issue 27. balanced-ipw estimates the weights "
            "per (user, item) cell from about 50 decisions per user over 20 items: target mass "
            "on cells never logged is lost, a downward bias its fixed-weight intervals do not "
            "cover.",
            ""]
    write_fragment(a.out, out, t0)


if __name__ == "__main__":
    main()
