// Paper-fidelity run for kernel balancing (Li et al., ICLR 2024) on Coat:
// the twelve KB variants next to naive MF, IPS and DR-JL run by the same
// engine, several seeds, mean and std; writes the markdown fragment
// docs/results/kb.md (scripts/results_kb.sh runs it).
//
// Usage: fidelity_kb [--seeds N] [--out PATH] [--compare-seeds N]
//                    [--larger-seeds N] [--grid 0|1] [--grid-out PATH]
//                    [--only NAME[,NAME...]] [--tune]
// Data: DEBIAS_SHARED_DATA_DIR "/coat" (train.ascii, test.ascii); exits 0
// with a note when absent.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/kb_compare_world.h"
#include "core/data/dataset_view.h"
#include "core/eval/kb_eval.h"
#include "core/models/kb_trainer.h"
#include "core/synth/kb_world.h"
#include "core/util/status_macros.h"

namespace {

using debias::models::KbMethod;

struct Matrix {
  int rows = 0, cols = 0;
  std::vector<float> v;
};

bool ReadMatrix(const std::string& path, Matrix* m) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  m->rows = 0;
  m->v.clear();
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    float x;
    int c = 0;
    while (ls >> x) {
      m->v.push_back(x);
      ++c;
    }
    if (c == 0) continue;
    if (m->rows == 0) m->cols = c;
    if (c != m->cols) return false;
    ++m->rows;
  }
  return m->rows > 0;
}

struct Triples {
  std::vector<uint32_t> u, i;
  std::vector<float> r;
};

Triples NonZero(const Matrix& m) {
  Triples t;
  for (int a = 0; a < m.rows; ++a) {
    for (int b = 0; b < m.cols; ++b) {
      const float x = m.v[a * m.cols + b];
      if (x != 0) {
        t.u.push_back(a);
        t.i.push_back(b);
        t.r.push_back(x);
      }
    }
  }
  return t;
}

debias::data::DatasetView MakeView(const Triples& t, int nu, int ni) {
  debias::data::DatasetViewBuilder b;
  for (size_t e = 0; e < t.u.size(); ++e) {
    b.Add(t.u[e], t.i[e], t.r[e], std::nullopt, debias::data::kNoList,
          std::nullopt, std::nullopt, {});
  }
  std::vector<std::string> uk(nu), ik(ni);
  for (int k = 0; k < nu; ++k) uk[k] = std::to_string(k);
  for (int k = 0; k < ni; ++k) ik[k] = std::to_string(k);
  return *b.Finish(uk, ik, {}, 1);
}

struct Variant {
  std::string label;
  KbMethod method;
  std::string kernel;  // "" for baselines
  std::map<std::string, std::string> extra;
};

struct Run {
  double auc, ndcg5, ndcg10, f1_5, f1_10, ndcg5_std, f1_5_std, epochs, seconds;
  // Learned weights over the base inverse propensity at the 5th and 95th
  // percentiles (weights_after / weights_before in the diagnostics); NaN for
  // methods without a weight model. Equal ratios mean the weight model
  // learned one constant factor for every pair.
  double w_ratio_p05 = std::nan(""), w_ratio_p95 = std::nan("");
};

struct Stat {
  double mean = 0, sd = 0;
};
Stat Summ(const std::vector<double>& x) {
  Stat s;
  if (x.empty()) return s;
  for (double v : x) s.mean += v;
  s.mean /= x.size();
  if (x.size() > 1) {
    for (double v : x) s.sd += (v - s.mean) * (v - s.mean);
    s.sd = std::sqrt(s.sd / (x.size() - 1));
  }
  return s;
}

// Mean and std of one field over a method's runs.
Stat Column(const std::vector<Run>& runs, double Run::*f) {
  std::vector<double> x;
  for (const Run& r : runs) x.push_back(r.*f);
  return Summ(x);
}

// P(y = 1) from a seeded random 5 % slice of the test pairs, as the
// reference does (the slice stays in the test set; the reference's mild
// leakage, documented in the fragment).
double McarPosRate(const Triples& test_bin, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<size_t> idx(test_bin.u.size());
  for (size_t k = 0; k < idx.size(); ++k) idx[k] = k;
  std::shuffle(idx.begin(), idx.end(), rng);
  const size_t m = std::max<size_t>(1, idx.size() / 20);
  double pos = 0;
  for (size_t k = 0; k < m; ++k) pos += test_bin.r[idx[k]];
  return std::clamp(pos / m, 1e-3, 1 - 1e-3);
}

absl::StatusOr<Run> TrainEval(const Variant& v, const debias::data::DatasetView& train,
                              const Triples& test, uint64_t seed, double mcar,
                              const std::map<std::string, std::string>& over = {}) {
  debias::train::TrainSpec spec;
  spec.loss = std::string(debias::models::KbMethodName(v.method));
  spec.feedback = debias::train::FeedbackKind::kExplicit;
  spec.threshold = 3.0;
  spec.seed = seed;
  if (v.method != KbMethod::kNaive) spec.params["mcar_pos_rate"] = absl::StrCat(mcar);
  if (!v.kernel.empty()) spec.params["kernel"] = v.kernel;
  for (auto& [k, x] : v.extra) spec.params[k] = x;
  for (auto& [k, x] : over) spec.params[k] = x;
  const auto t0 = std::chrono::steady_clock::now();
  auto res = debias::models::TrainKernelBalancing(v.method, train, spec, {});
  if (!res.ok()) return res.status();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  debias::eval::KbEvalOptions ref;
  auto e = debias::eval::EvaluateKb(*res->model, test.u, test.i, test.r, ref);
  if (!e.ok()) return e.status();
  debias::eval::KbEvalOptions std_opts;
  std_opts.ndcg_empty_is_one = false;
  std_opts.f1_from_means = false;
  auto es = debias::eval::EvaluateKb(*res->model, test.u, test.i, test.r, std_opts);
  if (!es.ok()) return es.status();
  Run r;
  r.auc = e->auc;
  r.ndcg5 = e->ndcg[5];
  r.ndcg10 = e->ndcg[10];
  r.f1_5 = e->f1[5];
  r.f1_10 = e->f1[10];
  r.ndcg5_std = es->ndcg[5];
  r.f1_5_std = es->f1[5];
  r.epochs = res->metrics["epochs"].get<int>();
  r.seconds = secs;
  const nlohmann::json& d = res->diagnostics;
  if (d.contains("weights_after") && d.contains("weights_before")) {
    const auto& a = d["weights_after"]["quantiles"];
    const auto& b = d["weights_before"]["quantiles"];
    r.w_ratio_p05 = a["p05"].get<double>() / b["p05"].get<double>();
    r.w_ratio_p95 = a["p95"].get<double>() / b["p95"].get<double>();
  }
  return r;
}


struct GridPick {
  std::string label;
  std::map<std::string, std::string> params;
  double val_auc = 0, val_ndcg5 = 0;
  std::vector<std::string> at_edge;  // "key=value" of picked values at a grid end
};

// The validation grid of one method (see its use in main); writes one line
// per cell to `log` when given.
absl::StatusOr<GridPick> PickOnValidation(const Variant& v, const debias::data::DatasetView& fit,
                                          const Triples& val, const Triples& test,
                                          std::ostream* log) {
  GridPick best;
  double best_score = -1;
  // P(y = 1) as in the final runs (a 5 % slice of the MCAR test's labels
  // feeds the propensity model only; selection uses val), one per seed.
  const uint64_t seeds[] = {100, 101};
  const double mcar[] = {McarPosRate(test, seeds[0]), McarPosRate(test, seeds[1])};
  const char* lrs[] = {"0.005", "0.01", "0.02"};
  const char* l2s[] = {"0.0003", "0.001", "0.003", "0.01"};
  // l2_weight for the KB variants; the DR ones also try their reference value
  // 0.1, under which their weight model collapses to one factor.
  const bool dr = v.method == KbMethod::kKbDr || v.method == KbMethod::kAkbDr ||
                  v.method == KbMethod::kWkbDr;
  std::vector<std::string> l2ws = {""};
  if (!v.kernel.empty()) l2ws = {"0.005", "0.05"};
  if (dr) l2ws.push_back("0.1");
  for (const char* lr : lrs) {
    for (const char* l2 : l2s) {
      for (const std::string& l2w : l2ws) {
        std::map<std::string, std::string> p = {{"lr_pred", lr}, {"l2_pred", l2}};
        if (!l2w.empty()) p["l2_weight"] = l2w;
        std::vector<double> auc, ndcg5;
        for (int k = 0; k < 2; ++k) {
          ASSIGN_OR_RETURN(Run r, TrainEval(v, fit, val, seeds[k], mcar[k], p));
          auc.push_back(r.auc);
          ndcg5.push_back(r.ndcg5);
        }
        const double a = Summ(auc).mean, n = Summ(ndcg5).mean;
        if (log) {
          *log << absl::StrFormat("%s lr_pred=%s l2_pred=%s%s val AUC %.4f val NDCG@5 %.4f\n",
                                  v.label, lr, l2, l2w.empty() ? "" : " l2_weight=" + l2w, a,
                                  n);
        }
        if (a + n > best_score) {
          best_score = a + n;
          best.params = p;
          best.val_auc = a;
          best.val_ndcg5 = n;
        }
      }
    }
  }
  auto edge = [&](const std::string& key, const std::string& lo, const std::string& hi) {
    auto it = best.params.find(key);
    if (it != best.params.end() && (it->second == lo || it->second == hi)) {
      best.at_edge.push_back(key + "=" + it->second);
    }
  };
  edge("lr_pred", lrs[0], lrs[2]);
  edge("l2_pred", l2s[0], l2s[3]);
  if (!v.kernel.empty()) edge("l2_weight", l2ws.front(), l2ws.back());
  return best;
}

// Random vs adaptive centres (KBIPS vs AKBIPS, KBDR vs AKBDR, Gaussian
// kernel) at each bandwidth, each pair trained with the same seed; appends a
// table and a summary that starts with `where` to `md`. The time ratio is
// the summed wall time of the adaptive runs over the random ones.
bool ComparePairs(const std::string& where, const debias::data::DatasetView& train,
                  const Triples& test, const std::function<double(uint64_t)>& mcar, int seeds,
                  uint64_t seed_base, const std::map<std::string, std::string>& base_params,
                  const std::vector<std::string>& bandwidths, std::ostringstream& md) {
  md << "| pair | bandwidth | mean AUC (random) | mean AUC (adaptive) | mean diff (A - R) | "
        "std of diff (standard error) | mean NDCG@5 (random / adaptive) | time ratio A/R |\n";
  md << "|---|---|---|---|---|---|---|---|\n";
  std::vector<std::string> summary;
  const std::pair<KbMethod, KbMethod> pairs[] = {{KbMethod::kKbIps, KbMethod::kAkbIps},
                                                 {KbMethod::kKbDr, KbMethod::kAkbDr}};
  for (const std::string& bw : bandwidths) {
    for (auto [rm, am] : pairs) {
      std::map<std::string, std::string> params = base_params;
      params["bandwidth"] = bw;
      std::vector<double> ra, aa, diff, rn, an;
      double rt = 0, at = 0;
      for (int s = 0; s < seeds; ++s) {
        const uint64_t seed = seed_base + s;
        const double pos_rate = mcar(seed);
        auto r = TrainEval({"r", rm, "gaussian", {}}, train, test, seed, pos_rate, params);
        auto a = TrainEval({"a", am, "gaussian", {}}, train, test, seed, pos_rate, params);
        if (!r.ok() || !a.ok()) {
          std::cerr << where << ": compare failed: " << (r.ok() ? a.status() : r.status()) << "\n";
          return false;
        }
        std::cerr << absl::StrFormat(
            "%s: %s/%s bandwidth %s seed %d AUC %.4f / %.4f  %.1fs / %.1fs\n",
                                     where, debias::models::KbMethodName(rm),
                                     debias::models::KbMethodName(am), bw, s, r->auc, a->auc,
                                     r->seconds, a->seconds);
        ra.push_back(r->auc);
        aa.push_back(a->auc);
        diff.push_back(a->auc - r->auc);
        rn.push_back(r->ndcg5);
        an.push_back(a->ndcg5);
        rt += r->seconds;
        at += a->seconds;
      }
      const double ratio = at / std::max(1e-9, rt);
      const double se = Summ(diff).sd / std::sqrt(static_cast<double>(seeds));
      md << absl::StrFormat(
          "| %s vs %s | %s | %.4f | %.4f | %+.4f | %.4f (%.4f) | %.4f / %.4f | %.2f |\n",
          debias::models::KbMethodName(rm), debias::models::KbMethodName(am), bw, Summ(ra).mean,
          Summ(aa).mean, Summ(diff).mean, Summ(diff).sd, se, Summ(rn).mean, Summ(an).mean, ratio);
      summary.push_back(absl::StrFormat(
          "%s vs %s at bandwidth %s: mean AUC difference %+.4f (std %.4f, standard error %.4f "
          "over %d seeds; the mean is %s 0.001) at %.1fx the time",
          debias::models::KbMethodName(am), debias::models::KbMethodName(rm), bw, Summ(diff).mean,
          Summ(diff).sd, se, seeds, std::fabs(Summ(diff).mean) <= 0.001 ? "within" : "not within",
          ratio));
    }
  }
  md << "\n" << where << ": ";
  for (size_t k = 0; k < summary.size(); ++k) md << (k ? "; " : "") << summary[k];
  md << ".\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int seeds = 5, compare_seeds = 10, larger_seeds = 10;
  std::string out = "docs/results/kb.md";
  std::set<std::string> only;
  bool tune = false, grid = true;
  std::string grid_out;
  for (int a = 1; a < argc; ++a) {
    std::string s = argv[a];
    if (s == "--seeds" && a + 1 < argc) seeds = std::atoi(argv[++a]);
    else if (s == "--out" && a + 1 < argc) out = argv[++a];
    else if (s == "--compare-seeds" && a + 1 < argc) compare_seeds = std::atoi(argv[++a]);
    else if (s == "--larger-seeds" && a + 1 < argc) larger_seeds = std::atoi(argv[++a]);
    else if (s == "--grid" && a + 1 < argc) grid = std::atoi(argv[++a]) != 0;
    else if (s == "--grid-out" && a + 1 < argc) grid_out = argv[++a];
    else if (s == "--only" && a + 1 < argc) {
      for (auto p : absl::StrSplit(argv[++a], ',')) only.insert(std::string(p));
    } else if (s == "--tune") tune = true;
    else {
      std::cerr << "unknown flag " << s << "\n";
      return 2;
    }
  }
  const std::string dir = std::string(DEBIAS_SHARED_DATA_DIR) + "/coat";
  Matrix mtrain, mtest;
  if (!ReadMatrix(dir + "/train.ascii", &mtrain) || !ReadMatrix(dir + "/test.ascii", &mtest)) {
    std::cout << "fidelity_kb: Coat not found under " << dir << "; nothing to do\n";
    return 0;
  }
  const int nu = mtrain.rows, ni = mtrain.cols;
  Triples tr = NonZero(mtrain);
  Triples te = NonZero(mtest);
  for (float& r : te.r) r = r >= 3 ? 1.0f : 0.0f;
  auto train = MakeView(tr, nu, ni);
  std::cerr << "coat: " << nu << "x" << ni << " train " << tr.u.size() << " test "
            << te.u.size() << "\n";

  std::vector<Variant> variants = {
      {"MF (naive)", KbMethod::kNaive, "", {}},
      {"IPS", KbMethod::kIps, "", {}},
      {"DR-JL", KbMethod::kDrJl, "", {}},
  };
  const std::pair<const char*, KbMethod> kb[] = {
      {"KBIPS", KbMethod::kKbIps}, {"AKBIPS", KbMethod::kAkbIps},
      {"WKBIPS", KbMethod::kWkbIps}, {"KBDR", KbMethod::kKbDr},
      {"AKBDR", KbMethod::kAkbDr}, {"WKBDR", KbMethod::kWkbDr}};
  for (auto& [name, m] : kb) {
    variants.push_back({absl::StrCat(name, "-Gau"), m, "gaussian", {}});
    variants.push_back({absl::StrCat(name, "-Exp"), m, "exponential", {}});
  }
  // The validation split of train (20 % of the ratings, MNAR like train);
  // `--tune` and the validation grid below choose settings on it, never on
  // test.
  Triples fit, val;
  {
    std::mt19937_64 rng(7);
    for (size_t e = 0; e < tr.u.size(); ++e) {
      Triples& dst = std::uniform_real_distribution<double>(0, 1)(rng) < 0.2 ? val : fit;
      dst.u.push_back(tr.u[e]);
      dst.i.push_back(tr.i[e]);
      dst.r.push_back(tr.r[e]);
    }
    for (float& r : val.r) r = r >= 3 ? 1.0f : 0.0f;
  }
  auto fit_view = MakeView(fit, nu, ni);

  // Validation grid for IPS, DR-JL and the twelve KB variants: lr_pred x
  // l2_pred (and l2_weight for the KB ones), 2 seeds each, the naive-Bayes P(y = 1) drawn as in
  // the final runs; the cell with the largest val AUC + val NDCG@5 (the two
  // metrics the issue compares on) becomes a row "(val grid)" run on test.
  std::vector<GridPick> picks;
  if (grid && !tune && only.empty()) {
    std::ofstream gout;
    if (!grid_out.empty()) {
      gout.open(grid_out);
      if (!gout) {
        std::cerr << "cannot write " << grid_out << "\n";
        return 1;
      }
    }
    std::vector<Variant> gv = {{"IPS", KbMethod::kIps, "", {}},
                               {"DR-JL", KbMethod::kDrJl, "", {}}};
    for (const Variant& v : variants) {
      if (!v.kernel.empty()) gv.push_back(v);  // all twelve KB variants
    }
    for (const Variant& v : gv) {
      auto pick = PickOnValidation(v, fit_view, val, te, gout.is_open() ? &gout : nullptr);
      if (!pick.ok()) {
        std::cerr << v.label << " grid: " << pick.status() << "\n";
        return 1;
      }
      std::string label = absl::StrCat(v.label, " (val grid:");
      for (auto& [k, x] : pick->params) absl::StrAppend(&label, " ", k, "=", x);
      absl::StrAppend(&label, ")");
      pick->label = label;
      variants.push_back({label, v.method, v.kernel, pick->params});
      picks.push_back(*pick);
    }
  }

  // Ablation: the six Gaussian variants with the weight model frozen at its
  // initialisation (weight_model=frozen): the initial weights, no balancing.
  const std::string kFrozen = " (weight model frozen)";
  std::vector<std::pair<std::string, std::string>> frozen;  // row, trained row
  if (!tune) {
    for (auto& [name, m] : kb) {
      const std::string base = absl::StrCat(name, "-Gau");
      variants.push_back({base + kFrozen, m, "gaussian", {{"weight_model", "frozen"}}});
      frozen.push_back({base + kFrozen, base});
    }
  }

  if (tune) {
    // P(y = 1) for the naive-Bayes weights: the validation split's positive
    // rate (kept as it was when docs/results/kb_tune.txt was written).
    double pos = 0;
    for (float r : val.r) pos += r;
    const double mcar = pos / val.r.size();
    const std::vector<std::map<std::string, std::string>> grid = {
        {}, {{"lr_pred", "0.005"}}, {{"lr_pred", "0.02"}},
        {{"l2_pred", "0.0003"}}, {{"l2_pred", "0.003"}},
        // Bandwidth: at the reference's 0.1 the kernels are nearly constant
        // over the [0, 1/8] features (see the notes); larger values make
        // them tell pairs apart.
        {{"bandwidth", "1"}}, {{"bandwidth", "10"}}, {{"bandwidth", "50"}},
        {{"bandwidth", "200"}}};
    for (const Variant& v : variants) {
      if (!only.empty() && !only.count(v.label)) continue;
      for (const auto& g : grid) {
        if (g.count("bandwidth") && v.kernel.empty()) continue;  // no kernels in the baselines
        std::vector<double> auc, ndcg5;
        for (int s = 0; s < 2; ++s) {
          auto r = TrainEval(v, fit_view, val, 100 + s, mcar, g);
          if (!r.ok()) { std::cerr << r.status() << "\n"; return 1; }
          auc.push_back(r->auc);
          ndcg5.push_back(r->ndcg5);
        }
        std::string gs;
        for (auto& [k, x] : g) gs += k + "=" + x + " ";
        std::cout << v.label << " [" << gs << "] val AUC " << Summ(auc).mean << " val NDCG@5 "
                  << Summ(ndcg5).mean << "\n";
      }
    }
    return 0;
  }

  std::map<std::string, std::vector<Run>> runs;
  for (const Variant& v : variants) {
    if (!only.empty() && !only.count(v.label)) continue;
    for (int s = 0; s < seeds; ++s) {
      const uint64_t seed = 2020 + s;
      auto r = TrainEval(v, train, te, seed, McarPosRate(te, seed));
      if (!r.ok()) {
        std::cerr << v.label << ": " << r.status() << "\n";
        return 1;
      }
      runs[v.label].push_back(*r);
      std::cerr << absl::StrFormat("%-11s seed %d AUC %.4f NDCG@5 %.4f F1@5 %.4f ep %.0f %.2fs\n",
                                   v.label, s, r->auc, r->ndcg5, r->f1_5, r->epochs,
                                   r->seconds);
    }
  }

  std::ostringstream md;
  md << "<!-- written by bench/fidelity/fidelity_kb.cc (scripts/results_kb.sh); do not edit -->\n";
  md << "### Kernel balancing on Coat (Li et al., ICLR 2024)\n\n";
  md << "Coat 290 x 300, train 6,960 MNAR ratings, test 4,640 MCAR ratings, rating >= 3 -> 1. "
     << seeds << " seeds (2020..), mean ± std. AUC pooled over all test pairs; NDCG@K and F1@K "
        "per user with the reference's conventions (NDCG = 1 for users without test "
        "positives; F1 from user-averaged P and R); the last two columns use the standard "
        "conventions (users without positives left out of NDCG; mean of per-user F1). "
        "All rows run on the same engine (core/models/kb_trainer.cc) with the reference's Coat "
        "hyperparameters, except the \"(val grid)\" rows whose settings are in their labels "
        "(B = 128, G = 5, J = 3, k = 4, bandwidth 0.1, Adam, tol 1e-5, "
        "patience 5); the baselines are the engine with w = 1 (naive) or w = naive-Bayes "
        "1/p (IPS, DR-JL). Time is wall-clock per training run on this machine (2 shared cores), "
        "including the seeded MF-IPS pre-training of the kernel features.\n\n";
  md << "| method | AUC | NDCG@5 | NDCG@10 | F1@5 | F1@10 | epochs | time/run | NDCG@5 (std "
        "conv.) | F1@5 (std conv.) | learned w / base w at p05, p95 |\n";
  md << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Variant& v : variants) {
    auto it = runs.find(v.label);
    if (it == runs.end()) continue;
    auto col = [&](double Run::*f) { return Column(it->second, f); };
    auto cell = [&](double Run::*f) {
      Stat s = col(f);
      return absl::StrFormat("%.3f ± %.3f", s.mean, s.sd);
    };
    md << "| " << v.label << " | " << cell(&Run::auc) << " | " << cell(&Run::ndcg5) << " | "
       << cell(&Run::ndcg10) << " | " << cell(&Run::f1_5) << " | " << cell(&Run::f1_10) << " | "
       << absl::StrFormat("%.0f", col(&Run::epochs).mean) << " | "
       << absl::StrFormat("%.2f s", col(&Run::seconds).mean) << " | " << cell(&Run::ndcg5_std)
       << " | " << cell(&Run::f1_5_std) << " | "
       << (std::isnan(it->second[0].w_ratio_p05)
               ? std::string("—")
               : absl::StrFormat("%.3f, %.3f", col(&Run::w_ratio_p05).mean,
                                 col(&Run::w_ratio_p95).mean))
       << " |\n";
  }

  // Which weight models learned a single factor for every pair (equal
  // ratios at p05 and p95 in every seed)?
  {
    std::vector<std::string> constant, varied;
    bool all_half = true;
    for (const Variant& v : variants) {
      auto it = runs.find(v.label);
      if (it == runs.end() || std::isnan(it->second[0].w_ratio_p05)) continue;
      if (v.extra.count("weight_model")) continue;  // the frozen rows: own paragraph
      bool flat = true;
      double factor = 0;
      for (const Run& r : it->second) {
        flat = flat && std::fabs(r.w_ratio_p05 - r.w_ratio_p95) < 1e-3 * r.w_ratio_p95;
        factor += r.w_ratio_p95 / it->second.size();
      }
      if (flat) {
        constant.push_back(absl::StrFormat("%s (factor %.3f)", v.label, factor));
        all_half = all_half && std::fabs(factor - 0.5) < 1e-3;
      } else {
        varied.push_back(v.label);
      }
    }
    md << "\nThe last column compares the learned weights w = rho sigmoid(a(u, i)) with the "
          "naive-Bayes base weights rho at two quantiles (diagnostics weights_after / "
          "weights_before, mean over seeds). Equal values mean the weight model ended with "
          "one factor for every pair. That happened in every seed for: "
       << (constant.empty() ? "none" : absl::StrJoin(constant, ", ")) << ".";
    if (!constant.empty() && all_half) {
      md << " A factor of 0.5 is sigmoid(0): the weight model's parameters decayed to zero "
            "under these rows' l2_weight (the reference's Coat value, paper notes section 1.7, "
            "unless the label names another), "
            "so they train their base method (IPS or DR-JL) with the base weights halved. "
            "Kernel, bandwidth and centres cannot change them, and what sets them apart from "
            "the base method's row is that rescaling (and the random streams), not "
            "balancing.";
    }
    md << " The weights varied across pairs for: "
       << (varied.empty() ? "none" : absl::StrJoin(varied, ", ")) << ".\n";
  }

  // Does each KB variant beat IPS and DR-JL (means) on AUC and NDCG@5?
  auto mean_of = [&](const std::string& label, double Run::*f) {
    return Column(runs[label], f).mean;
  };
  auto beats = [&](const std::string& a, const std::string& b) {
    return mean_of(a, &Run::auc) > mean_of(b, &Run::auc) &&
           mean_of(a, &Run::ndcg5) > mean_of(b, &Run::ndcg5);
  };
  if (runs.count("IPS") && runs.count("DR-JL")) {
    md << "\nKB variants vs the baselines (means; AUC / NDCG@5): ";
    std::vector<std::string> cells;
    for (const Variant& v : variants) {
      if (v.kernel.empty() || !v.extra.empty() || !runs.count(v.label)) continue;
      cells.push_back(absl::StrCat(v.label, " beats IPS: ", beats(v.label, "IPS") ? "yes" : "no",
                                   ", DR-JL: ", beats(v.label, "DR-JL") ? "yes" : "no"));
    }
    for (size_t k = 0; k < cells.size(); ++k) md << (k ? "; " : "") << cells[k];
    md << ".\n";
    if (picks.size() > 2) {
      md << "\nValidation grid (lr_pred {0.005, 0.01, 0.02} x l2_pred {3e-4, 1e-3, 3e-3, "
            "1e-2}, and l2_weight {5e-3, 5e-2} for KBIPS, AKBIPS and WKBIPS, {5e-3, 5e-2, 0.1} "
            "for KBDR, AKBDR and WKBDR; 2 seeds; the 20 % "
            "validation split of train; pick = largest val AUC + val NDCG@5; every cell in "
            "docs/results/kb_grid.txt), val AUC / NDCG@5 of each pick: ";
      for (size_t k = 0; k < picks.size(); ++k) {
        md << (k ? "; " : "")
           << absl::StrFormat("%s %.3f / %.3f", picks[k].label, picks[k].val_auc,
                              picks[k].val_ndcg5);
      }
      const std::string& ips = picks[0].label;
      const std::string& dr = picks[1].label;
      md << ".\n\nWith the validation-grid settings for all of them (test means, AUC / "
            "NDCG@5; IPS "
         << absl::StrFormat("%.3f / %.3f, DR-JL %.3f / %.3f): ", mean_of(ips, &Run::auc),
                            mean_of(ips, &Run::ndcg5), mean_of(dr, &Run::auc),
                            mean_of(dr, &Run::ndcg5));
      for (size_t k = 2; k < picks.size(); ++k) {
        const std::string& kb = picks[k].label;
        md << (k > 2 ? "; " : "")
           << absl::StrFormat("%s %.3f / %.3f beats IPS: %s, DR-JL: %s",
                              kb.substr(0, kb.find(' ')), mean_of(kb, &Run::auc),
                              mean_of(kb, &Run::ndcg5), beats(kb, ips) ? "yes" : "no",
                              beats(kb, dr) ? "yes" : "no");
      }
      md << ".\n\nHow much that says (computed from the rows above):";
      // On the selection criterion itself.
      double best_kb_val = 0;
      for (size_t k = 2; k < picks.size(); ++k) {
        best_kb_val = std::max(best_kb_val, picks[k].val_auc + picks[k].val_ndcg5);
      }
      md << absl::StrFormat(
          " on validation, the criterion the picks maximise, IPS scores %.3f and DR-JL %.3f "
          "(val AUC + val NDCG@5) against at most %.3f for a KB pick;",
          picks[0].val_auc + picks[0].val_ndcg5, picks[1].val_auc + picks[1].val_ndcg5,
          best_kb_val);
      // Size of the test-NDCG@5 margins against the tuned IPS.
      auto sd_of = [&](const std::string& label, double Run::*f) {
        return Column(runs[label], f).sd;
      };
      for (size_t k = 2; k < picks.size(); ++k) {
        const std::string& kb = picks[k].label;
        if (!beats(kb, ips)) continue;
        md << absl::StrFormat(
            " %s's NDCG@5 lead over the tuned IPS is %.3f, against per-row std %.3f and %.3f;",
            kb.substr(0, kb.find(' ')), mean_of(kb, &Run::ndcg5) - mean_of(ips, &Run::ndcg5),
            sd_of(kb, &Run::ndcg5), sd_of(ips, &Run::ndcg5));
      }
      // Tuned vs default rows on test NDCG@5.
      int worse = 0;
      for (const GridPick& g : picks) {
        const std::string base = g.label.substr(0, g.label.find(" (val grid"));
        if (runs.count(base) && mean_of(g.label, &Run::ndcg5) < mean_of(base, &Run::ndcg5)) {
          ++worse;
        }
      }
      const double dr_default = mean_of("DR-JL", &Run::ndcg5);
      std::vector<std::string> above_dr;  // tuned rows above DR-JL at its defaults
      for (const GridPick& g : picks) {
        if (mean_of(g.label, &Run::ndcg5) >= dr_default) {
          above_dr.push_back(absl::StrFormat("%s %.3f", g.label.substr(0, g.label.find(' ')),
                                             mean_of(g.label, &Run::ndcg5)));
        }
      }
      std::string vs_rows;
      if (above_dr.empty()) {
        vs_rows = "above every tuned row";
      } else if (above_dr.size() == picks.size()) {
        vs_rows = "below every tuned row";
      } else {
        vs_rows = absl::StrCat("above every tuned row except ", absl::StrJoin(above_dr, ", "));
      }
      const double dr_tuned = mean_of(picks[1].label, &Run::ndcg5);
      md << absl::StrFormat(
          " %d of the %zu picks have a lower test NDCG@5 than the same method at the reference "
          "defaults (so on this data selecting on the MNAR validation split %s NDCG@5 on the "
          "MCAR test); DR-JL at the defaults (%.3f) is %s; the tuned DR-JL (%.3f) is a %s "
          "baseline than the default one;",
          worse, picks.size(),
          2 * worse > static_cast<int>(picks.size()) ? "mostly costs" : "does not consistently cost",
          dr_default, vs_rows, dr_tuned, dr_tuned < dr_default ? "weaker" : "stronger");
      std::vector<std::string> edges;
      for (const GridPick& g : picks) {
        if (g.at_edge.empty()) continue;
        edges.push_back(absl::StrCat(g.label.substr(0, g.label.find(' ')), " (",
                                     absl::StrJoin(g.at_edge, ", "), ")"));
      }
      md << " picks at an end of the grid, which may not bracket the optimum: "
         << (edges.empty() ? "none" : absl::StrJoin(edges, "; ")) << ".\n";
    }
  }
  md << "\nReference code on Coat (3 seeds, mean; from the issue): MF 0.585 / 0.540 / 0.409, "
        "IPS 0.693 / 0.593 / 0.450, DR-JL 0.716 / 0.615 / 0.467, KBIPS-Gau 0.727 / 0.620 / "
        "0.471, AKBIPS-Gau 0.726 / 0.620 / 0.471, KBDR-Gau 0.750 / 0.638 / 0.483, AKBDR-Gau "
        "0.749 / 0.635 / 0.478 (AUC / NDCG@5 / F1@5).\n";

  // What training the weight model adds: trained rows vs frozen ones.
  {
    std::vector<std::string> rows, vs_trained, vs_base;
    int gains = 0, compared = 0;
    for (const auto& [row, trained] : frozen) {
      if (!runs.count(row)) continue;
      rows.push_back(absl::StrFormat("%s %.3f / %.3f / %.3f", trained,
                                     mean_of(row, &Run::auc), mean_of(row, &Run::ndcg5),
                                     mean_of(row, &Run::f1_5)));
      if (runs.count(trained)) {
        const double da = mean_of(trained, &Run::auc) - mean_of(row, &Run::auc);
        const double dn = mean_of(trained, &Run::ndcg5) - mean_of(row, &Run::ndcg5);
        vs_trained.push_back(absl::StrFormat("%s %+.3f / %+.3f", trained, da, dn));
        ++compared;
        if (da > 0 && dn > 0) ++gains;
      }
      if (runs.count("IPS") && runs.count("DR-JL")) {
        vs_base.push_back(absl::StrCat(trained, " (frozen) beats IPS: ",
                                       beats(row, "IPS") ? "yes" : "no", ", DR-JL: ",
                                       beats(row, "DR-JL") ? "yes" : "no"));
      }
    }
    if (!rows.empty()) {
      md << "\n**What training the weight model adds.** The rows marked \"weight model "
            "frozen\" run `weight_model=frozen`: the weight model keeps its U(0, 1) "
            "initialisation, so w = rho sigmoid(U_u . V_i) with U_u . V_i in [0, 4], a random "
            "factor between 0.5 and 0.98 per pair, fixed for the run, and no centre or "
            "balancing step runs. Everything else is as in the trained row. (This is also what "
            "an earlier revision of the reference code computes by accident: "
            "matrix_factorization_coat.py at 2b67229 reads w through weight_model.predict(), "
            "which returns a detached tensor, so no gradient reaches the weight model; the "
            "revision whose notebook settings are our defaults, fabfb43, calls forward() in "
            "the weight step of the Gaussian KBIPS, AKBIPS, KBDR and AKBDR classes we read, "
            "and trains it.) Frozen rows (AUC / NDCG@5 / F1@5, means): "
         << absl::StrJoin(rows, "; ") << ". Trained minus frozen (AUC / NDCG@5): "
         << absl::StrJoin(vs_trained, "; ") << "; training the weight model raises both for "
         << gains << " of the " << compared << " variants. Frozen rows against our baselines: "
         << absl::StrJoin(vs_base, "; ") << ".\n";
    }
  }

  // Adaptive vs random centres, paired over more seeds: on Coat, then on a
  // synthetic MNAR rating world about eight times Coat's size (the world of
  // `kb_bench --compare`).
  if (compare_seeds > 0 && only.empty()) {
    md << "\n#### Adaptive (AKB) vs random (KB) centres, " << compare_seeds
       << " paired seeds, Gaussian kernel\n\n"
       << "At the reference bandwidth 0.1 the kernels are nearly constant (see the notes "
          "below), so the centres can hardly matter; bandwidth 50 makes them tell pairs apart "
          "(over features in [0, 1/8]^8 the Gaussian kernel then spans about [0.002, 1]).\n\n";
    auto coat_mcar = [&](uint64_t seed) { return McarPosRate(te, seed); };
    if (!ComparePairs("On Coat", train, te, coat_mcar, compare_seeds, 3030, {}, {"0.1", "50"},
                      md)) {
      return 1;
    }
  }
  if (larger_seeds > 0 && only.empty()) {
    const debias::synth::KbWorldOptions o = debias::bench::KbCompareWorld();
    auto w = debias::synth::MakeKbWorld(o);
    if (!w.ok()) {
      std::cerr << "synthetic world: " << w.status() << "\n";
      return 1;
    }
    Triples wt;
    wt.u = w->test_user;
    wt.i = w->test_item;
    wt.r = w->test_label;
    md << "\n#### Adaptive vs random centres on larger data: synthetic world, " << larger_seeds
       << " paired seeds, Gaussian kernel\n\n"
       << absl::StrFormat(
              "`MakeKbWorld` (core/synth/kb_world.h, world seed 5) with %u users x %u items "
              "and %zu observed ratings (%.1fx Coat's). The ratings are self-selected: "
              "P(o | y = 1) = 3c for every item, P(o | y = 0) = c pop_i^2 with pop_i ~ U(0, 1)^2, "
              "so negatives are rated mostly on popular items. Test = the true labels of %zu "
              "uniformly drawn pairs (%u per user, positive rate %.3f; the naive-Bayes P(y = 1) "
              "comes from a 5 %% slice of them, as on Coat). Every run uses batch_size 512 and "
              "neg_ratio 4 (|D| = "
              "2,048; Coat's B = 128 would make %zu batches an epoch), every other setting at "
              "the Coat defaults; seeds 4040.., the same seed for both members of a pair.\n\n",
              o.users, o.items, w->train.num_events(), w->train.num_events() / 6960.0,
              wt.u.size(), o.test_per_user, w->mcar_pos_rate, w->train.num_events() / 128);
    auto world_mcar = [&](uint64_t seed) { return McarPosRate(wt, seed); };
    if (!ComparePairs("On the larger world", w->train, wt, world_mcar, larger_seeds, 4040,
                      {{"batch_size", "512"}, {"neg_ratio", "4"}}, {"0.1", "50"}, md)) {
      return 1;
    }
  }
  md << "\n#### Implementation notes and deviations from the reference\n\n"
        "- **Feature normalisation (bug fixed).** The reference normalises each point set per "
        "call as `phi - f_min/(f_max - f_min)` (operator precedence: a shift, no scaling), then "
        "`/8`, separately for the centres, the observed batch and the sampled batch, so kernels "
        "between sets compare inconsistently shifted points. debias maps every feature column "
        "once over the whole dataset to [0, 1] (min-max over all users / items), then scales by "
        "1/d (d = 8 here, as the reference's `/8`): `norm=global`, the default. `norm=reference` "
        "reproduces the reference's per-call shift for comparison; `norm=none` uses raw features.\n"
        "- **Kernel features.** The reference loads frozen 4-d MF-IPS embeddings from files that "
        "are not public. debias pre-trains them inside the trainer: a seeded MF-IPS run (k = 4, "
        "naive-Bayes weights, Adam lr 0.01, L2 1e-4, at most `pretrain_epochs` = 100 epochs, same "
        "stopping rule), whose user and item factors become the frozen 8-d pair features. "
        "Supplied side features (`features=side|both`) are available through the C++ API.\n"
        "- **Kernels are nearly constant at the reference settings.** With features in [0, 1/8] "
        "per coordinate and bandwidth 0.1, every kernel value lies in [0.988, 1] (Gaussian) or "
        "[0.965, 1] (exponential), so the "
        "hinge mostly balances the constant function (it pins the mean learned weight to about "
        "1) and the choice of centres and of kernel barely matters: Gaussian and exponential "
        "runs, and random, adaptive and worst-case centres, give near-identical models (see the "
        "tables). This is a property of the reference's hyperparameters, reproduced, not a bug "
        "we introduced; `bandwidth` is a parameter. Making the kernels informative did not "
        "help on validation: on the 20 % validation split of train (2 seeds, `--tune`, "
        "output in docs/results/kb_tune.txt), "
        "KBIPS-Gau at bandwidth 1, 10, 50 and 200 reached val AUC 0.659, 0.658, 0.652 and "
        "0.644 and val NDCG@5 0.841, 0.840, 0.839 and 0.842, against 0.658 and 0.842 at 0.1; "
        "DR-JL with lr_pred 0.02 reached 0.672 and 0.849 there, above every KBIPS setting "
        "tried on NDCG@5.\n"
        "- **Sampling.** Unobserved pairs are drawn uniformly with replacement from the users x "
        "items grid per batch (the reference permutes all pairs once per epoch); the grid is "
        "never materialised.\n"
        "- **Naive-Bayes propensity.** As the reference: P(y=1) from a seeded random 5 % slice "
        "of the MCAR test set (the slice stays in the test set: the reference's mild leakage; "
        "passed as `mcar_pos_rate`); P(o=1) = |train| / (users x items) (the reference uses "
        "(max index) x (max index), 289 x 299).\n"
        "- **WKB.** The worst-case objective needs K_DD 1; debias estimates it from the first "
        "`wkb_ref_cap` = 512 sampled points (an unbiased estimate; exact when |D| <= cap) and uses "
        "lamb3 for the eps optimiser (the reference passes lamb2, a bug).\n";
  // A check of the reference itself, run once outside the repository (its
  // code stays out of this repository): the numbers are quoted, ours computed.
  const bool kbdr_flat = runs.count("KBDR-Gau") &&
                         std::fabs(mean_of("KBDR-Gau", &Run::w_ratio_p05) - 0.5) < 1e-3 &&
                         std::fabs(mean_of("KBDR-Gau", &Run::w_ratio_p95) - 0.5) < 1e-3;
  md << "- **The reference's KBDR-Gau collapses too"
     << (kbdr_flat ? ", as debias's does" : "") << ".** A CPU transcription of the reference's "
        "MF_KBDR_Gau and MF_KBIPS_Gau (matrix_factorization_coat.py at fabfb43), run once "
        "outside this repository with Debian's PyTorch 1.13, the notebook settings, seeds "
        "2020-2022 and random 4-d kernel features (the pre-trained ones are not public; at "
        "bandwidth 0.1 the kernels are nearly constant anyway), ended KBDR-Gau with sigmoid(a) "
        "= 0.5000 for every pair and every weight-model parameter at 0.0000 in all three seeds "
        "(test AUC 0.753, 0.750, 0.746), and KBIPS-Gau with learned w / base w of 0.215-0.226 "
        "at p05 and 0.384-0.389 at p95 (the measure of the table's last column; test AUC "
        "0.733, 0.724, 0.725)";
  if (runs.count("KBIPS-Gau") && runs.count("KBDR-Gau")) {
    md << absl::StrFormat(
        "; debias above: KBDR-Gau %.3f at p05 and %.3f at p95, KBIPS-Gau %.3f and %.3f",
        mean_of("KBDR-Gau", &Run::w_ratio_p05), mean_of("KBDR-Gau", &Run::w_ratio_p95),
        mean_of("KBIPS-Gau", &Run::w_ratio_p05), mean_of("KBIPS-Gau", &Run::w_ratio_p95));
  }
  md << ". The same transcription with w fixed at the naive-Bayes rho (no weight step), i.e. "
        "IPS and DR-JL in the reference's own KB code path with its U(0, 1) initialisation and "
        "the KB counterparts' learning rates and weight decays, reached test AUC 0.707, 0.711, "
        "0.698 (IPS, mean 0.705) and 0.730, 0.730, 0.724 (DR-JL, mean 0.728)";
  if (runs.count("IPS") && runs.count("DR-JL")) {
    md << absl::StrFormat("; debias above: IPS %.3f, DR-JL %.3f", mean_of("IPS", &Run::auc),
                          mean_of("DR-JL", &Run::auc));
  }
  const bool ours_ran = runs.count("KBIPS-Gau") && runs.count("DR-JL");
  md << ". Run like for like, the reference's KBIPS-Gau (mean 0.727) does not beat its own "
        "DR-JL (0.728)"
     << (!ours_ran                       ? ""
         : beats("KBIPS-Gau", "DR-JL") ? ", whereas debias's does"
                                       : ", and neither does debias's")
     << ": the issue's DR-JL row (0.716) comes from the reference's "
        "separate baselines.py, whose MF_BaseModel keeps PyTorch's default N(0, 1) "
        "initialisation and whose MF_DR_JL draws G = 1 unobserved pair per observed one by "
        "default (KBDR: 5), not from this code path. "
        "The transcription is not shipped.\n"
        "- **Speed.** For the Gaussian kernel with global normalisation, k factorises over the "
        "user and item halves of the features, so small catalogues use precomputed user-user "
        "and item-item kernel tables (see bench/core/kb_bench.cc for timings).\n"
        "- **Hyperparameters.** The reference's Coat values per variant (section 1.7 of the "
        "paper notes) are the defaults; baselines use lr 0.01 with L2 1e-3 (naive, IPS) or the "
        "KBDR values (DR-JL). No test-set tuning: the \"(val grid)\" rows take the settings "
        "with the best val AUC + val NDCG@5 over the grid above, on a 20 % validation split "
        "of train, for IPS, DR-JL and all twelve kernel-balancing variants alike; `--tune` "
        "evaluates a one-at-a-time grid (lr_pred, l2_pred, bandwidth) on the same split and "
        "prints val AUC and NDCG@5 (docs/results/kb_tune.txt). The two differ in P(y = 1) for "
        "the naive-Bayes weights: `--tune` uses the validation split's positive rate, the grid "
        "the 5 % test slice of the final runs, so the same setting scores differently in the "
        "two files. The validation split is MNAR like train, so selecting on it cannot reward "
        "debiasing as such (see the grid paragraph for what it did here).\n";
  std::cout << md.str();
  if (!out.empty() && out != "-") {
    std::ofstream f(out);
    if (!f) {
      std::cerr << "cannot write " << out << "\n";
      return 1;
    }
    f << md.str();
    std::cerr << "wrote " << out << "\n";
  }
  return 0;
}
