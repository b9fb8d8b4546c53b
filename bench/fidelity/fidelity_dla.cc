// Fidelity run for DLA (Ai et al., SIGIR 2018) on synthetic click logs
// (core/synth/click_log_world.h: nonlinear graded relevance 0..4, a logging
// ranker, PBM clicks with exam^eta and noise eps = 0.1); writes the markdown
// fragment docs/results/dla.md (scripts/results_dla.sh runs it).
//
// Part 1, propensities: for each eta and seed, one log of `--queries` x
// `--impressions` lists of 10 shown documents; the position curve recovered
// by DLA and by regression-EM (both with their default settings: MLP ranker
// 64-32, held-out stopping rule), the naive click-rate ratio, and the result
// randomisation estimate (from a second log of the same world with every
// list shuffled) against the true examination ratios exam(r)/exam(1);
// relative error per position 1-10 and its maximum, mean and std over seeds.
// Part 2, ranking: at eta = 1, for each seed, DLA, naive-clicks and IPW with
// the true propensities (oracle) trained on the same log; nDCG@1/3/5/10
// (2^l - 1 gains) and ERR@10 on the labelled test queries (all candidates
// of each query ranked), mean and std over seeds.
//
// Two reference rows that are not methods: the PBM maximum-likelihood curve
// given the true click probabilities (the log's own sampling noise) and
// DLA's dual fixed point with the true relevance (DLA with a perfect ranker).
// World seeds: propensities --world-seed (100) + s, rankers
// --rank-world-seed (200) + s; tuning used other seeds (300-302), see the
// fragment's notes. --trace-out writes one JSON line per curve run with the
// per-evaluation propensities (diagnostics["trace"]) for studying the
// stopping rule; --methods limits the trained curve methods;
// --supplement-queries Q adds DLA-only curves (with the reference rows) at
// --supplement-etas on logs of Q x impressions lists, same world seeds.
//
// Usage: fidelity_dla [--out PATH] [--seeds N] [--rank-seeds N]
//                     [--queries Q] [--impressions I] [--etas 0.5,1,2]
//                     [--dim D] [--params k=v,k=v] [--world-seed S]
//                     [--rank-world-seed S] [--methods dla,regression-em]
//                     [--trace-out PATH] [--supplement-queries Q]
//                     [--supplement-etas 2] [--rank-queries Q (default --queries)]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/clickmodels/click_model.h"
#include "core/data/dataset_view.h"
#include "core/eval/ltr_metrics.h"
#include "core/models/dla_trainer.h"
#include "core/propensity/position_lists.h"
#include "core/synth/click_log_world.h"
#include "nlohmann/json.hpp"

namespace {

using debias::models::ClickMethod;

struct Stat {
  std::vector<double> v;
  void Add(double x) { v.push_back(x); }
  double Mean() const {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / v.size();
  }
  double Std() const {
    if (v.size() < 2) return 0;
    const double m = Mean();
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / (v.size() - 1));
  }
  std::string Fmt(int prec = 3) const {
    return absl::StrFormat("%.*f ± %.*f", prec, Mean(), prec, Std());
  }
};

template <typename T>
T Check(absl::StatusOr<T> s, const char* what) {
  if (!s.ok()) {
    std::cerr << what << ": " << s.status() << "\n";
    std::exit(1);
  }
  return *std::move(s);
}

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string out = "docs/results/dla.md";
  int seeds = 3, rank_seeds = 5, queries = 10000, impressions = 10, dim = 16;
  int world_seed = 100, rank_world_seed = 200, supplement_queries = 0, rank_queries = 0;
  std::vector<double> supplement_etas = {2.0};
  std::string trace_out;
  std::vector<std::string> curve_methods = {"dla", "regression-em"};
  std::vector<double> etas = {0.5, 1.0, 2.0};
  std::map<std::string, std::string> extra;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--out") out = v;
    else if (k == "--seeds") seeds = std::stoi(v);
    else if (k == "--rank-seeds") rank_seeds = std::stoi(v);
    else if (k == "--queries") queries = std::stoi(v);
    else if (k == "--rank-queries") rank_queries = std::stoi(v);
    else if (k == "--impressions") impressions = std::stoi(v);
    else if (k == "--dim") dim = std::stoi(v);
    else if (k == "--world-seed") world_seed = std::stoi(v);
    else if (k == "--rank-world-seed") rank_world_seed = std::stoi(v);
    else if (k == "--trace-out") trace_out = v;
    else if (k == "--supplement-queries") supplement_queries = std::stoi(v);
    else if (k == "--supplement-etas") {
      supplement_etas.clear();
      for (auto e : absl::StrSplit(v, ',')) supplement_etas.push_back(std::stod(std::string(e)));
    }
    else if (k == "--methods") curve_methods = absl::StrSplit(v, ',');
    else if (k == "--etas") {
      etas.clear();
      if (v != "none") {
        for (auto s : absl::StrSplit(v, ',')) etas.push_back(std::stod(std::string(s)));
      }
    } else if (k == "--params") {
      for (auto kv : absl::StrSplit(v, ',')) {
        std::vector<std::string> p = absl::StrSplit(kv, '=');
        if (p.size() == 2) extra[p[0]] = p[1];
      }
    } else {
      std::cerr << "unknown flag " << k << "\n";
      return 2;
    }
  }
  const int K = 10;
  if (rank_queries <= 0) rank_queries = queries;
  const double t_start = Now();
  std::ostringstream md;
  md << "# DLA: position propensities and rankers from click logs\n\n"
     << "Generated by `bench/fidelity/fidelity_dla.cc` (scripts/results_dla.sh). "
     << "Synthetic logs from `ClickLogWorld`: " << queries << " queries x "
     << impressions << " impressions = " << queries * impressions
     << " logged lists of 10 shown documents (30 candidates per query, " << dim
     << " features, graded relevance 0..4 a nonlinear function of the features, "
     << "ridge logging ranker), PBM clicks with exam(r)^eta, eps = 0.1, ymax = 4. "
     << "Trainers run with their default settings (MLP ranker 64-32, Adam "
     << "lr 0.001; DLA propensity logits started at the log click-rate ratios, "
     << "Adagrad lr 0.05; evaluation every 200 steps, stop after 5 evaluations "
     << "without a better held-out click likelihood, at most 6000 steps, best "
     << "checkpoint returned; see core/models/dla_trainer.h)"
     << (extra.empty() ? "" : absl::StrCat(", overrides: ", absl::StrJoin(extra, ",", absl::PairFormatter("="))))
     << ".\n\n";

  auto spec_for = [&](const std::string& loss, uint64_t seed) {
    debias::train::TrainSpec spec;
    spec.loss = loss;
    spec.feedback = debias::train::FeedbackKind::kClickLog;
    spec.seed = seed;
    spec.params = extra;
    return spec;
  };

  // ---- Part 1: propensity curves.
  md << "## Position propensities (examination relative to position 1)\n\n"
     << "Relative error |p_hat - p| / p per position; `max` is the largest over "
     << "positions 1-10, mean ± std over " << seeds << " world seed(s) per eta ("
     << world_seed << ".." << world_seed + seeds - 1
     << "; each seed draws a new world and log; training seed = seed index + 1). "
     << "Per-position values are means over the seeds.\n\n";
  std::ofstream trace_file;
  if (!trace_out.empty()) trace_file.open(trace_out);
  std::ostringstream notes, targets;
  // Pass 0: the main tables; pass 1 (--supplement-queries > 0): DLA alone on
  // bigger logs, to separate DLA's sampling noise from its bias.
  struct Pass {
    int nq;
    std::vector<double> etas;
    std::vector<std::string> methods;
  };
  std::vector<Pass> passes = {{queries, etas, curve_methods}};
  if (supplement_queries > 0) passes.push_back({supplement_queries, supplement_etas, {"dla"}});
  using Key = std::pair<int, double>;  // pass, eta
  std::map<Key, Stat> dla_max_by_eta, ctr_max_by_eta, dual_max_by_eta, mle_max_by_eta;
  for (int pi = 0; pi < static_cast<int>(passes.size()); ++pi) {
  const Pass& pass = passes[pi];
  if (pi == 1) {
    md << "## Supplement: DLA on " << pass.nq * impressions
       << " logged lists\n\nThe same worlds (seeds " << world_seed << ".."
       << world_seed + seeds - 1 << ") with " << pass.nq << " queries instead of "
       << queries << " (the issue's minimum is 100,000 lists), DLA with the "
       << "same default settings; the reference rows (the oracle-relevance MLE, "
       << "DLA with a perfect ranker) show how much of each error is the sampling "
       << "noise of the log rather than a bias of the estimator.\n\n";
  }
  for (double eta : pass.etas) {
  const Key key{pi, eta};
    std::map<std::string, std::vector<Stat>> per_pos, per_pos_err;
    std::map<std::string, Stat> max_err;
    std::map<std::string, Stat> secs;
    std::vector<double> truth;
    std::vector<std::string> names = pass.methods;
    for (const char* n : {"randomization", "click-rate ratio", "oracle-relevance MLE",
                          "dla dual, true relevance"}) {
      names.push_back(n);
    }
    std::vector<std::string> run_notes;
    for (int s = 0; s < seeds; ++s) {
      debias::synth::ClickLogWorldOptions o;
      o.num_queries = pass.nq;
      o.impressions_per_query = impressions;
      o.feature_dim = dim;
      o.num_test_queries = 0;
      o.eta = eta;
      o.seed = world_seed + s;
      auto world = Check(debias::synth::ClickLogWorld::Generate(o), "world");
      auto view = Check(world.ClickView(), "click view");
      truth = world.ExaminationCurve();
      for (int i = K - 1; i >= 0; --i) truth[i] /= truth[0];
      std::map<std::string, std::vector<double>> curves;
      for (const std::string& m : pass.methods) {
        const double t0 = Now();
        auto r = Check(debias::models::TrainClickRanker(
                           m == "dla" ? ClickMethod::kDla : ClickMethod::kRegressionEm,
                           view, spec_for(m, s + 1), {}),
                       m.c_str());
        secs[m].Add(Now() - t0);
        curves[m] = r.diagnostics["position_propensities"].get<std::vector<double>>();
        run_notes.push_back(absl::StrCat(
            m, " seed ", o.seed, ": best step ", r.diagnostics["best_step"].dump(),
            " of ", r.diagnostics["steps"].dump()));
        std::cerr << "eta " << eta << " seed " << o.seed << " " << m << " steps "
                  << r.diagnostics["steps"] << " best " << r.diagnostics["best_step"]
                  << " " << Now() - t0 << " s\n";
        if (trace_file.is_open()) {
          nlohmann::json j = {{"eta", eta}, {"world_seed", o.seed}, {"method", m},
                              {"truth", truth}, {"params", r.resolved_params},
                              {"trace", r.diagnostics["trace"]},
                              {"final", curves[m]}};
          trace_file << j.dump() << "\n";
          trace_file.flush();
        }
      }
      auto cl = Check(debias::propensity::BuildClickLists(view, K), "lists");
      curves["click-rate ratio"] = Check(debias::propensity::ClickRateRatios(cl), "ctr");
      // Noise floor: the PBM maximum-likelihood examination with the TRUE
      // click probabilities of the shown documents (clicks_r / sum of
      // click(y) at r), i.e. what an estimator that knew relevance exactly
      // would get from this log.
      {
        auto cp = Check(debias::clickmodels::ClickProbabilities(o.eps, o.pos, o.ymax), "cp");
        std::vector<double> num(K, 0.0), den(K, 0.0);
        for (uint64_t l = 0; l < world.num_lists(); ++l) {
          const auto docs = world.ListDocs(l);
          const auto clicks = world.ListClicks(l);
          const auto labels = world.Labels(world.ListQuery(l));
          for (int i = 0; i < K && i < static_cast<int>(docs.size()); ++i) {
            num[i] += clicks[i];
            den[i] += cp[std::min<int>(labels[docs[i]], o.ymax)];
          }
        }
        std::vector<double> e(K);
        for (int i = 0; i < K; ++i) e[i] = num[i] / den[i];
        for (int i = K - 1; i >= 0; --i) e[i] /= e[0];
        curves["oracle-relevance MLE"] = e;
        // DLA's dual fixed point with the TRUE relevance in place of the
        // ranker: p_i proportional to sum_q c_qi click(y_q1) / click(y_qi).
        std::vector<double> a(K, 0.0);
        for (uint64_t l = 0; l < world.num_lists(); ++l) {
          const auto docs = world.ListDocs(l);
          const auto clicks = world.ListClicks(l);
          const auto labels = world.Labels(world.ListQuery(l));
          const double c1 = cp[std::min<int>(labels[docs[0]], o.ymax)];
          for (int i = 0; i < K && i < static_cast<int>(docs.size()); ++i) {
            if (clicks[i]) a[i] += c1 / cp[std::min<int>(labels[docs[i]], o.ymax)];
          }
        }
        for (int i = K - 1; i >= 0; --i) a[i] /= a[0];
        curves["dla dual, true relevance"] = a;
      }
      o.randomized_fraction = 1.0;
      auto rworld = Check(debias::synth::ClickLogWorld::Generate(o), "world");
      auto rview = Check(rworld.ClickView(), "click view");
      auto rcl = Check(debias::propensity::BuildClickLists(rview, K), "lists");
      curves["randomization"] = Check(debias::propensity::RandomizationPropensities(rcl), "rand");
      for (const auto& n : names) {
        per_pos[n].resize(K);
        per_pos_err[n].resize(K);
        double mx = 0;
        for (int i = 0; i < K; ++i) {
          const double e = std::abs(curves[n][i] - truth[i]) / truth[i];
          per_pos[n][i].Add(curves[n][i]);
          per_pos_err[n][i].Add(e);
          mx = std::max(mx, e);
        }
        max_err[n].Add(mx);
      }
    }
    if (max_err.count("dla")) dla_max_by_eta[key] = max_err["dla"];
    ctr_max_by_eta[key] = max_err["click-rate ratio"];
    dual_max_by_eta[key] = max_err["dla dual, true relevance"];
    mle_max_by_eta[key] = max_err["oracle-relevance MLE"];
    md << "### eta = " << eta
       << (pi == 0 ? std::string() : absl::StrCat(", ", pass.nq * impressions, " lists"))
       << "\n\nEstimates (mean over seeds):\n\n| method | ";
    for (int i = 1; i <= K; ++i) md << "p" << i << " | ";
    md << "max rel. error | train s |\n|---|";
    for (int i = 0; i <= K + 1; ++i) md << "---|";
    md << "\n| truth | ";
    for (int i = 0; i < K; ++i) md << absl::StrFormat("%.4f", truth[i]) << " | ";
    md << "0 | |\n";
    for (const auto& n : names) {
      md << "| " << n << " | ";
      for (int i = 0; i < K; ++i) {
        md << absl::StrFormat("%.4f", per_pos[n][i].Mean()) << " | ";
      }
      md << max_err[n].Fmt(3) << " | "
         << (secs.count(n) ? absl::StrFormat("%.0f", secs[n].Mean()) : "") << " |\n";
    }
    md << "\nRelative error per position (mean over seeds):\n\n| method | ";
    for (int i = 1; i <= K; ++i) md << "p" << i << " | ";
    md << "\n|---|";
    for (int i = 0; i < K; ++i) md << "---|";
    md << "\n";
    for (const auto& n : names) {
      md << "| " << n << " | ";
      for (int i = 0; i < K; ++i) {
        md << absl::StrFormat("%.3f", per_pos_err[n][i].Mean()) << " | ";
      }
      md << "\n";
    }
    md << "\n";
    if (max_err.count("dla")) {
      std::vector<std::string> per_seed;
      for (double v : max_err["dla"].v) per_seed.push_back(absl::StrFormat("%.3f", v));
      notes << "- eta = " << eta
            << (pi == 0 ? std::string() : absl::StrCat(" (", pass.nq * impressions, " lists)"))
            << ": DLA max relative error per seed "
            << absl::StrJoin(per_seed, ", ") << "; " << absl::StrJoin(run_notes, "; ")
            << ".\n";
    }
    std::cerr << md.str().substr(md.str().rfind("### eta")) << "\n";
  }
  }  // passes
  if (!etas.empty()) {
    md << "Randomisation is computed on a second log of the same world with every "
       << "list shuffled (it needs such logs); the click-rate ratio is CTR(r)/CTR(1) "
       << "on the logged (unshuffled) lists; `oracle-relevance MLE` is the PBM "
       << "maximum-likelihood examination curve given the TRUE click probability of "
       << "every shown document (clicks at r / sum of click(y) at r): not a method, "
       << "but the sampling noise of the log itself, which no estimator beats on "
       << "average.\n\n"
       << "`dla dual, true relevance` is DLA's propensity fixed point "
       << "(softmax(g)_i proportional to sum_q c_qi r_qi) with r_qi = click(y_q1) / "
       << "click(y_qi) from the TRUE labels, i.e. DLA with a perfect ranker: the "
       << "sampling noise of DLA's own estimator on this log.\n\n"
       << "Training runs (best step = the checkpoint returned, chosen by held-out "
       << "click likelihood):\n\n" << notes.str() << "\n"
       << "How the DLA defaults were checked: the levers (stopping rule: patience, "
       << "evaluation interval, best checkpoint; ranker lr 0.0003; propensity lr "
       << "0.2 and 0.3; propensity_init uniform vs ctr; MLP 32-16; ranker l2 "
       << "0.001 and 0.01) were compared at eta = 2 on world seeds 300-302 (logs of 100,000 lists), "
       << "disjoint from the seeds reported here, using the per-evaluation curves "
       << "in diagnostics[\"trace\"]. None brought the eta = 2 tail within 15% on "
       << "all three seeds. From the click-rate start the position-10 estimate "
       << "settles 15-30% below the truth by the held-out optimum and keeps "
       << "sinking with longer training; from the uniform start with propensity lr "
       << "0.05 it is still far above the truth when the stopping rule fires; with "
       << "propensity lr 0.3 it crosses the truth and keeps sinking, and the "
       << "chosen checkpoint lands anywhere between -15% and +34%. The held-out "
       << "click likelihood is nearly flat along that direction "
       << "(it cannot tell the tail propensity from the ranker's scores of the "
       << "documents shown there), so the defaults were left unchanged.\n\n";
  }

  // ---- Part 2: rankers at eta = 1.
  if (rank_seeds > 0) {
    md << "## Rankers at eta = 1 (test queries, all 30 candidates ranked)\n\n"
       << rank_queries * impressions << " logged lists per world, "
       << rank_seeds << " world seeds (" << rank_world_seed << ".." << rank_world_seed + rank_seeds - 1
       << "; training seed = world seed index + 1), mean ± std. `ipw oracle` "
       << "uses the true examination ratios.\n\n"
       << "| method | nDCG@1 | nDCG@3 | nDCG@5 | nDCG@10 | ERR@10 |\n"
       << "|---|---|---|---|---|---|\n";
    const std::vector<std::string> metric_keys = {"ndcg@1", "ndcg@3", "ndcg@5", "ndcg@10", "err@10"};
    const std::vector<std::string> methods = {"dla", "naive-clicks", "ipw oracle"};
    std::map<std::string, std::map<std::string, Stat>> res;
    for (int s = 0; s < rank_seeds; ++s) {
      debias::synth::ClickLogWorldOptions o;
      o.num_queries = rank_queries;
      o.impressions_per_query = impressions;
      o.feature_dim = dim;
      o.num_test_queries = 500;
      o.eta = 1.0;
      o.seed = rank_world_seed + s;
      auto world = Check(debias::synth::ClickLogWorld::Generate(o), "world");
      auto view = Check(world.ClickView(), "click view");
      auto test = Check(debias::data::BuildViewFromInteractions(world.TestEvents()), "test");
      std::vector<double> truth = world.ExaminationCurve();
      for (int i = K - 1; i >= 0; --i) truth[i] /= truth[0];
      for (const auto& m : methods) {
        ClickMethod cm = m == "dla" ? ClickMethod::kDla
                         : m == "naive-clicks" ? ClickMethod::kNaive
                                               : ClickMethod::kIpw;
        auto spec = spec_for(m, s + 1);
        if (cm == ClickMethod::kIpw) {
          spec.params["propensities"] = absl::StrJoin(truth, ",");
        }
        const double t0 = Now();
        auto r = Check(debias::models::TrainClickRanker(cm, view, spec, {}), m.c_str());
        auto metrics = Check(debias::eval::EvaluateRankerOnLists(*r.model, test), "eval");
        for (const auto& k : metric_keys) res[m][k].Add(metrics[k]);
        std::cerr << "rank seed " << s << " " << m;
        for (const auto& k : metric_keys) std::cerr << " " << k << " " << metrics[k];
        std::cerr << " steps " << r.diagnostics["steps"] << " " << Now() - t0 << " s\n";
      }
    }
    for (const auto& m : methods) {
      md << "| " << m << " | ";
      for (const auto& k : metric_keys) md << res[m][k].Fmt(4) << " | ";
      md << "\n";
    }
    md << "\nDLA relative to the oracle (mean over seeds): ";
    std::vector<std::string> rel;
    for (const auto& k : metric_keys) {
      rel.push_back(absl::StrFormat("%s %+.2f%%", k,
                                    100.0 * (res["dla"][k].Mean() / res["ipw oracle"][k].Mean() - 1)));
    }
    md << absl::StrJoin(rel, ", ") << ".\n\n";
    // The ranking targets, checked on the means.
    bool beats_naive = true, within_2pct = true;
    for (const auto& k : metric_keys) {
      beats_naive &= res["dla"][k].Mean() > res["naive-clicks"][k].Mean();
      within_2pct &= res["dla"][k].Mean() >= 0.98 * res["ipw oracle"][k].Mean();
    }
    targets << "- Rankers (eta = 1, " << rank_seeds << " seeds): DLA "
            << (beats_naive ? "beats" : "does NOT beat")
            << " the naive click ranker on every metric and is "
            << (within_2pct ? "within" : "NOT within")
            << " 2% of the IPW oracle on every metric (means).\n";
  }
  if (!dla_max_by_eta.empty() || rank_seeds > 0) {
    std::ostringstream t;
    for (const auto& [key, st] : dla_max_by_eta) {
      const double eta = key.second;
      t << "- Propensities, eta = " << eta
        << (key.first == 0 ? std::string()
                           : absl::StrCat(" (supplement, ", supplement_queries * impressions, " lists)"))
        << ": DLA max relative error "
        << st.Fmt(3) << " over " << st.v.size() << " seed(s), worst seed "
        << absl::StrFormat("%.3f", *std::max_element(st.v.begin(), st.v.end()))
        << "; the 15% target " << (st.Mean() <= 0.15 ? "holds" : "is MISSED")
        << " on the mean"
        << (*std::max_element(st.v.begin(), st.v.end()) <= 0.15
                ? " and on every seed" : "")
        << "; the click-rate ratio is " << ctr_max_by_eta[key].Fmt(3)
        << " off; DLA with a perfect ranker (dual, true relevance) "
        << dual_max_by_eta[key].Fmt(3) << ", the oracle-relevance MLE "
        << mle_max_by_eta[key].Fmt(3) << ".\n";
    }
    md << "## Against the issue's targets (computed by the program)\n\n"
       << t.str() << targets.str() << "\n";
  }
  md << absl::StrFormat("Total run time %.0f s (wall, shared machine).\n", Now() - t_start);
  std::ofstream f(out);
  f << md.str();
  std::cout << md.str();
  return 0;
}
