// Fidelity program for the unbiased evaluators (issue 7): writes
// docs/results/eval.md (see scripts/results_eval.sh).
//
// Ranking metrics. One synthetic MNAR world (core/synth MnarWorld) with known
// relevance gamma_ui and exposure theta_ui. Six models of different quality
// rank every item for every user (seen items included): two noisy oracles
// (gamma + N(0, s^2) noise), MF trained by the naive and the relmf losses
// (core/train registry) on the world's own click log, item popularity in that
// log, and random scores. Their TRUE dcg/precision/recall/map@5 follow from
// gamma (definitions in core/eval/unbiased.h). Then, for each of --seeds
// fresh evaluation click logs drawn from the same world (click ~
// Bernoulli(theta gamma), independent of the training log), every model is
// scored by naive, IPS and SNIPS with the true propensities, by IPS and SNIPS
// with the popularity estimator fitted on that log, and by DR (true theta,
// clip 0.1, relmf's predicted relevance as the imputation), each with a 95%
// percentile bootstrap interval over users. Reported: relative bias of the
// mean estimate, coverage of the intervals, Kendall's tau between the models'
// order by estimate and by truth. SNIPS estimates kappa x metric (see
// unbiased.h), so its bias is measured against kappa x truth, with naive's
// bias on the same click scale beside it.
//
// Policy data. Contexts are the world's users, actions 20 fixed items, reward
// ~ Bernoulli(gamma); a popularity-driven logging policy, a target policy
// that is a softmax over relmf's scores; DM/IPS/SNIPS/DR/switch-DR/DR-OS with
// a good reward model (gamma + N(0, 0.05^2)) and DR with a poor one (naive
// MF). Then slates of 3 positions under a position-based model.
//
// Usage: fidelity_eval [--out=PATH] [--seeds=N] [--bootstrap=B]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/data/dataset_view.h"
#include "core/eval/policy.h"
#include "core/eval/unbiased.h"
#include "core/propensity/estimators.h"
#include "core/synth/mnar_world.h"
#include "core/train/registry.h"
#include "core/train/train_spec.h"

namespace debias {
namespace {

using eval::Interval;
using eval::RelevanceEstimator;

std::string Flag(int argc, char** argv, const std::string& name,
                 std::string def) {
  for (int k = 1; k < argc; ++k) {
    std::string a = argv[k];
    if (a.rfind("--" + name + "=", 0) == 0) return a.substr(name.size() + 3);
  }
  return def;
}

double Mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}
double Sd(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  double m = Mean(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / (v.size() - 1));
}
double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Kendall's tau-a between two score vectors over the same models.
double KendallTau(const std::vector<double>& a, const std::vector<double>& b) {
  int n = static_cast<int>(a.size()), s = 0, pairs = 0;
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      double x = (a[i] - a[j]) * (b[i] - b[j]);
      s += x > 0 ? 1 : (x < 0 ? -1 : 0);
      ++pairs;
    }
  }
  return pairs ? static_cast<double>(s) / pairs : 0.0;
}

constexpr int kTop = 10;
const std::vector<std::string> kMetricNames = {"dcg@5", "precision@5",
                                               "recall@5", "map@5"};

struct ModelRanks {
  std::string name;
  std::vector<std::vector<int32_t>> top;  // per user, top kTop
  std::map<std::string, double> truth;
};

// True metrics of a ranking (definitions in core/eval/unbiased.h).
std::map<std::string, double> TrueMetrics(
    const std::vector<std::vector<int32_t>>& top, const std::vector<float>& rel,
    const std::vector<double>& total_rel, int I) {
  const int K = 5;
  double dcg = 0, prec = 0, rec = 0, map = 0;
  const int U = static_cast<int>(top.size());
  for (int u = 0; u < U; ++u) {
    double d = 0, cum = 0, ap = 0;
    for (int r = 0; r < K; ++r) {
      double g = rel[static_cast<size_t>(u) * I + top[u][r]];
      d += g / std::log2(r + 2.0);
      ap += g * (1.0 + cum) / (r + 1.0);
      cum += g;
    }
    dcg += d;
    prec += cum / K;
    rec += cum / total_rel[u];
    map += ap / std::min(total_rel[u], static_cast<double>(K));
  }
  return {{"dcg@5", dcg / U},
          {"precision@5", prec / U},
          {"recall@5", rec / U},
          {"map@5", map / U}};
}

std::vector<std::vector<int32_t>> TopFromScores(const std::vector<float>& s,
                                                int U, int I) {
  std::vector<std::vector<int32_t>> top(U);
  std::vector<int32_t> order(I);
  for (int u = 0; u < U; ++u) {
    const float* row = s.data() + static_cast<size_t>(u) * I;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + kTop, order.end(),
                      [&](int a, int b) {
                        return row[a] > row[b] || (row[a] == row[b] && a < b);
                      });
    top[u].assign(order.begin(), order.begin() + kTop);
  }
  return top;
}

std::map<std::string, std::string> MfParams() {
  // The semi-synthetic MF setting of fidelity_relmf (Saito et al. 2020).
  return {
      {"sampling", "uniform"}, {"bias", "true"},      {"dim", "10"},
      {"lr", "0.01"},          {"l2", "1e-5"},        {"epochs", "10"},
      {"neg_ratio", "9"},      {"val_fraction", "0"}, {"batch_size", "512"}};
}

absl::StatusOr<std::vector<float>> TrainAndScore(const data::DatasetView& v,
                                                 const std::string& loss, int U,
                                                 int I) {
  train::TrainSpec spec;
  spec.loss = loss;
  spec.feedback = train::FeedbackKind::kImplicit;
  spec.seed = 1;
  spec.params = MfParams();
  if (loss == "relmf") {
    spec.propensity = "popularity";
    spec.clip = 0.05;
  }
  auto r = train::RunTraining(v, spec, {});
  if (!r.ok()) return r.status();
  std::vector<float> s(static_cast<size_t>(U) * I);
  for (int u = 0; u < U; ++u) {
    r->model->ScoreAll(u,
                       std::span<float>(s.data() + static_cast<size_t>(u) * I,
                                        static_cast<size_t>(I)));
  }
  return s;
}

// One estimator configuration of the ranking study.
struct Row {
  std::string name;
  RelevanceEstimator est;
  double popularity_eta;  // > 0: fitted popularity propensities, not theta
  double clip;
  bool click_scale;              // SNIPS: compare with kappa x truth
  bool good_imputation = false;  // DR: gamma + noise instead of relmf
};

struct Cell {
  std::vector<double> est;
  int boot_cover = 0, normal_cover = 0;
  std::vector<double> width;
};

std::string RankingSection(int seeds, int bootstrap) {
  std::ostringstream md;
  auto t0 = std::chrono::steady_clock::now();
  synth::MnarWorldOptions wo;
  wo.num_users = 2000;
  wo.num_items = 500;
  wo.dim = 16;
  wo.exposure_power = 1.0;
  wo.popularity_exponent = 0.5;
  wo.relevance_mean = 0.2;
  wo.user_activity_sigma = 0.5;
  wo.expected_clicks = 40000;
  wo.mar_test_items_per_user = 0;
  wo.truth_sample_pairs = 0;
  wo.seed = 7;
  auto world = synth::MnarWorld::Generate(wo);
  if (!world.ok()) return absl::StrCat("world: ", world.status().ToString());
  const int U = static_cast<int>(world->num_users());
  const int I = static_cast<int>(world->num_items());
  std::vector<float> rel(static_cast<size_t>(U) * I), theta(rel.size());
  std::vector<double> total_rel(U, 0.0);
  double sum_rel = 0, sum_click = 0;
  for (int u = 0; u < U; ++u) {
    for (int i = 0; i < I; ++i) {
      size_t j = static_cast<size_t>(u) * I + i;
      rel[j] = static_cast<float>(world->Relevance(u, i));
      theta[j] = static_cast<float>(world->Exposure(u, i));
      total_rel[u] += rel[j];
      sum_click += static_cast<double>(rel[j]) * theta[j];
    }
    sum_rel += total_rel[u];
  }
  const double kappa = sum_click / sum_rel;
  auto train_view = world->ClickView();
  if (!train_view.ok()) return "click view failed";

  // The models.
  std::vector<ModelRanks> models;
  std::vector<float> relmf_prob;            // DR imputation
  std::vector<float> good_imp(rel.size());  // gamma + N(0, 0.05^2), clamped
  {
    std::mt19937_64 g(99);
    std::normal_distribution<float> n01(0.0f, 1.0f);
    for (size_t j = 0; j < rel.size(); ++j) {
      good_imp[j] = std::clamp(rel[j] + 0.05f * n01(g), 0.0f, 1.0f);
    }
    for (float sd : {0.05f, 0.2f}) {
      std::vector<float> s(rel.size());
      for (size_t j = 0; j < s.size(); ++j) s[j] = rel[j] + sd * n01(g);
      models.push_back({absl::StrFormat("oracle + N(0, %.2f²)", sd),
                        TopFromScores(s, U, I),
                        {}});
    }
    for (const char* loss : {"relmf", "naive"}) {
      auto s = TrainAndScore(*train_view, loss, U, I);
      if (!s.ok()) return absl::StrCat(loss, ": ", s.status().ToString());
      if (std::string(loss) == "relmf") {
        relmf_prob.resize(s->size());
        for (size_t j = 0; j < s->size(); ++j) {
          relmf_prob[j] = static_cast<float>(Sigmoid((*s)[j]));
        }
      }
      models.push_back(
          {absl::StrCat("MF ", loss), TopFromScores(*s, U, I), {}});
    }
    std::vector<float> pop(rel.size());
    std::vector<double> count(I, 0.0);
    for (size_t e = 0; e < train_view->num_events(); ++e) {
      count[train_view->item[e]] += 1;
    }
    for (int u = 0; u < U; ++u) {
      for (int i = 0; i < I; ++i) {
        // Tiny user-specific jitter only breaks ties between equal counts.
        pop[static_cast<size_t>(u) * I + i] =
            static_cast<float>(count[i] + 1e-3 * n01(g));
      }
    }
    models.push_back({"popularity", TopFromScores(pop, U, I), {}});
    std::vector<float> rnd(rel.size());
    std::uniform_real_distribution<float> u01(0.0f, 1.0f);
    for (float& x : rnd) x = u01(g);
    models.push_back({"random", TopFromScores(rnd, U, I), {}});
  }
  for (auto& m : models) m.truth = TrueMetrics(m.top, rel, total_rel, I);
  const int NM = static_cast<int>(models.size());

  const std::vector<Row> rows = {
      {"naive", RelevanceEstimator::kNaive, 0, 0.0, false},
      {"IPS (true θ)", RelevanceEstimator::kIps, 0, 0.0, false},
      {"SNIPS (true θ)", RelevanceEstimator::kSnips, 0, 0.0, true},
      {"IPS (popularity η 0.5)", RelevanceEstimator::kIps, 0.5, 0.0, false},
      {"SNIPS (popularity η 0.5)", RelevanceEstimator::kSnips, 0.5, 0.0, true},
      {"IPS (popularity η 1)", RelevanceEstimator::kIps, 1.0, 0.0, false},
      {"SNIPS (popularity η 1)", RelevanceEstimator::kSnips, 1.0, 0.0, true},
      {"DR (true θ, clip 0.1, relmf imputation)", RelevanceEstimator::kDr, 0,
       0.1, false},
      {"DR (true θ, clip 0.1, good imputation)", RelevanceEstimator::kDr, 0,
       0.1, false, true},
  };
  const int NR = static_cast<int>(rows.size());
  // cells[row][model][metric]
  std::vector<std::vector<std::map<std::string, Cell>>> cells(
      NR, std::vector<std::map<std::string, Cell>>(NM));
  std::vector<std::vector<double>> seed_tau(NR);
  double clicks_total = 0;
  std::vector<std::vector<int32_t>> clicked(U);

  for (int seed = 0; seed < seeds; ++seed) {
    std::mt19937_64 g(1000 + seed);
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    data::DatasetViewBuilder b;
    for (int u = 0; u < U; ++u) {
      clicked[u].clear();
      for (int i = 0; i < I; ++i) {
        size_t j = static_cast<size_t>(u) * I + i;
        if (u01(g) < static_cast<double>(theta[j]) * rel[j]) {
          clicked[u].push_back(i);
          b.Add(u, i, 1.0f, std::nullopt, data::kNoList, std::nullopt,
                std::nullopt, {});
        }
      }
      clicks_total += clicked[u].size();
    }
    auto view = b.Finish(train_view->user_keys, train_view->item_keys, {}, 0);
    if (!view.ok()) return "eval view failed";
    propensity::PopularityOptions po05, po1;
    po05.eta = 0.5;
    po1.eta = 1.0;
    auto pop05 = propensity::FitPopularity(*view, {}, po05);
    auto pop1 = propensity::FitPopularity(*view, {}, po1);
    if (!pop05.ok() || !pop1.ok()) return "popularity fit failed";
    for (int r = 0; r < NR; ++r) {
      const Row& row = rows[r];
      std::vector<double> est_dcg(NM), true_dcg(NM);
      for (int m = 0; m < NM; ++m) {
        std::vector<eval::UserRanking> users(U);
        for (int u = 0; u < U; ++u) {
          auto& ur = users[u];
          ur.ranked = models[m].top[u];
          ur.clicked = clicked[u];
          for (int32_t i : clicked[u]) {
            double p = theta[static_cast<size_t>(u) * I + i];
            if (row.popularity_eta == 0.5) p = (*pop05)->Pair(u, i);
            if (row.popularity_eta == 1.0) p = (*pop1)->Pair(u, i);
            ur.clicked_propensity.push_back(p);
          }
          if (row.est == RelevanceEstimator::kDr) {
            for (int32_t i : ur.ranked) {
              size_t j = static_cast<size_t>(u) * I + i;
              ur.ranked_propensity.push_back(theta[j]);
              ur.ranked_imputed.push_back(row.good_imputation ? good_imp[j]
                                                              : relmf_prob[j]);
            }
          }
        }
        eval::UnbiasedRankingOptions o;
        o.estimator = row.est;
        o.ks = {5, 10};
        o.clip = row.clip;
        o.bootstrap = bootstrap;
        o.seed = seed;
        o.num_threads = 2;
        auto res = eval::EstimateRankingMetrics(users, o);
        if (!res.ok()) return res.status().ToString();
        for (const auto& name : kMetricNames) {
          auto it = res->metrics.find(name);
          if (it == res->metrics.end()) continue;
          double truth = models[m].truth[name];
          if (row.click_scale && (name == "dcg@5" || name == "precision@5")) {
            truth *= kappa;
          }
          Cell& c = cells[r][m][name];
          c.est.push_back(it->second);
          Interval bi = res->intervals.at(name);
          Interval ni = res->normal_intervals.at(name);
          c.boot_cover += bi.low <= truth && truth <= bi.high;
          c.normal_cover += ni.low <= truth && truth <= ni.high;
          c.width.push_back(bi.high - bi.low);
        }
        est_dcg[m] = res->metrics.at("dcg@5");
        true_dcg[m] = models[m].truth["dcg@5"];
      }
      seed_tau[r].push_back(KendallTau(est_dcg, true_dcg));
    }
    if ((seed + 1) % 10 == 0) {
      std::cerr << "ranking seed " << seed + 1 << "/" << seeds << " "
                << std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - t0)
                       .count()
                << " s\n";
    }
  }

  auto target = [&](int r, int m, const std::string& name) {
    double t = models[m].truth[name];
    if (rows[r].click_scale && (name == "dcg@5" || name == "precision@5")) {
      t *= kappa;
    }
    return t;
  };
  auto relbias = [&](int r, int m, const std::string& name) {
    double t = target(r, m, name);
    return (Mean(cells[r][m][name].est) - t) / t;
  };
  auto naive_click_bias = [&](int m, const std::string& name) {
    double t = models[m].truth[name];
    if (name == "dcg@5" || name == "precision@5") t *= kappa;
    return (Mean(cells[0][m][name].est) - t) / t;
  };

  md << "### Ranking metrics on the synthetic MNAR world\n\n"
     << "MnarWorld " << U << " users x " << I
     << " items (dim 16, Zipf popularity exponent 0.5, exposure power 1, "
        "user activity sigma 0.5, relevance mean 0.2, world seed 7); every "
        "model ranks all items (seen included). "
     << seeds << " evaluation click logs (click ~ Bernoulli(θγ), "
     << absl::StrFormat("%.0f", clicks_total / seeds)
     << " clicks each on average), " << bootstrap
     << " bootstrap resamples of users per estimate, 95% intervals. "
        "kappa = E[#clicks] / Σγ = "
     << absl::StrFormat("%.4f", kappa)
     << " is the click scale SNIPS estimates on (core/eval/unbiased.h): "
        "SNIPS rows are compared with kappa x truth for dcg and precision "
        "(recall and map are per-user ratios and need no scale). Popularity "
        "rows use the popularity estimator (η = 0.5, the registry default, and "
        "η = 1, the world's exposure power) fitted on each evaluation log; it "
        "sets the most clicked item's propensity to 1 and absorbs the items' "
        "relevance into their exposure, so it is misspecified here. DR uses "
        "the true θ clipped at 0.1 and as the imputation either relmf's "
        "predicted relevance or a good model (γ + N(0, 0.05²)).\n\n";

  md << "True metrics of the models (from γ):\n\n"
     << "| model | dcg@5 | precision@5 | recall@5 | map@5 "
        "|\n|---|---|---|---|---|\n";
  for (const auto& m : models) {
    md << "| " << m.name;
    for (const auto& n : kMetricNames) {
      md << absl::StrFormat(" | %.4f", m.truth.at(n));
    }
    md << " |\n";
  }
  md << "\n";

  for (const std::string metric : {"dcg@5", "recall@5"}) {
    md << "Relative bias of the mean estimate over the seeds, " << metric
       << " (ratio = |bias| / |naive bias| on the same scale; target <= "
          "0.33):\n\n"
       << "| model | truth | naive |";
    for (int r = 1; r < NR; ++r) md << " " << rows[r].name << " |";
    if (metric == "dcg@5")
      md << " naive on the click scale | ratio IPS | ratio SNIPS |";
    md << "\n|---|---|---|";
    for (int r = 1; r < NR; ++r) md << "---|";
    if (metric == "dcg@5") md << "---|---|---|";
    md << "\n";
    for (int m = 0; m < NM; ++m) {
      md << "| " << models[m].name
         << absl::StrFormat(" | %.4f", models[m].truth[metric]);
      for (int r = 0; r < NR; ++r) {
        if (cells[r][m][metric].est.empty()) {
          md << " | -";
        } else {
          md << absl::StrFormat(" | %+.1f%%", 100 * relbias(r, m, metric));
        }
      }
      if (metric == "dcg@5") {
        double nb = relbias(0, m, metric), nc = naive_click_bias(m, metric);
        md << absl::StrFormat(" | %+.1f%%", 100 * nc)
           << absl::StrFormat(" | %.3f", std::abs(relbias(1, m, metric) / nb))
           << absl::StrFormat(" | %.3f", std::abs(relbias(2, m, metric) / nc));
      }
      md << " |\n";
    }
    md << "\n";
  }

  md << "Coverage of the 95% intervals of dcg@5 over " << seeds
     << " seeds, bootstrap / normal (target >= 90%), and mean bootstrap "
        "interval width relative to the truth:\n\n| model |";
  for (int r = 0; r < NR; ++r) md << " " << rows[r].name << " |";
  md << "\n|---|";
  for (int r = 0; r < NR; ++r) md << "---|";
  md << "\n";
  for (int m = 0; m < NM; ++m) {
    md << "| " << models[m].name;
    for (int r = 0; r < NR; ++r) {
      const Cell& c = cells[r][m]["dcg@5"];
      md << absl::StrFormat(" | %.0f%% / %.0f%% (±%.1f%%)",
                            100.0 * c.boot_cover / seeds,
                            100.0 * c.normal_cover / seeds,
                            50 * Mean(c.width) / target(r, m, "dcg@5"));
    }
    md << " |\n";
  }
  md << "\n";

  md << "Summary per estimator and metric over the " << NM
     << " models: mean |relative bias|, minimum bootstrap coverage, and "
        "Kendall's tau between the models' order by mean estimate and by "
        "truth (dcg@5: also the mean of the per-seed tau):\n\n"
     << "| estimator | metric | mean abs rel. bias | min coverage | tau (mean "
        "estimate) | mean per-seed tau |\n|---|---|---|---|---|---|\n";
  for (int r = 0; r < NR; ++r) {
    for (const auto& name : kMetricNames) {
      if (cells[r][0][name].est.empty()) continue;
      std::vector<double> est(NM), truth(NM);
      double bias = 0;
      int min_cov = seeds;
      for (int m = 0; m < NM; ++m) {
        est[m] = Mean(cells[r][m][name].est);
        truth[m] = models[m].truth[name];
        bias += std::abs(relbias(r, m, name)) / NM;
        min_cov = std::min(min_cov, cells[r][m][name].boot_cover);
      }
      md << "| " << rows[r].name << " | " << name
         << absl::StrFormat(" | %.1f%% | %.0f%% | %.3f | ", 100 * bias,
                            100.0 * min_cov / seeds, KendallTau(est, truth))
         << (name == "dcg@5" ? absl::StrFormat("%.3f", Mean(seed_tau[r]))
                             : std::string("-"))
         << " |\n";
    }
  }
  md << "\n";
  {
    // The criteria on dcg@5, in numbers.
    double max_ratio_ips = 0, max_ratio_snips = 0, max_snips_bias = 0;
    int snips_models = 0;
    int min_cov_ips = seeds, min_cov_snips = seeds;
    for (int m = 0; m < NM; ++m) {
      max_ratio_ips = std::max(max_ratio_ips, std::abs(relbias(1, m, "dcg@5") /
                                                       relbias(0, m, "dcg@5")));
      // Only where naive's click-scale bias is real (> 3 standard errors
      // of the mean over the seeds); elsewhere the ratio is noise / noise.
      const auto& ne = cells[0][m]["dcg@5"].est;
      double naive_se =
          Sd(ne) / std::sqrt(ne.size()) / (kappa * models[m].truth["dcg@5"]);
      double snips_abs = std::abs(relbias(2, m, "dcg@5"));
      max_snips_bias = std::max(max_snips_bias, snips_abs);
      if (std::abs(naive_click_bias(m, "dcg@5")) > 3 * naive_se) {
        ++snips_models;
        max_ratio_snips =
            std::max(max_ratio_snips,
                     snips_abs / std::abs(naive_click_bias(m, "dcg@5")));
      }
      min_cov_ips = std::min(min_cov_ips, cells[1][m]["dcg@5"].boot_cover);
      min_cov_snips = std::min(min_cov_snips, cells[2][m]["dcg@5"].boot_cover);
    }
    std::vector<double> ips_mean(NM), snips_mean(NM), naive_mean(NM), tr(NM);
    for (int m = 0; m < NM; ++m) {
      naive_mean[m] = Mean(cells[0][m]["dcg@5"].est);
      ips_mean[m] = Mean(cells[1][m]["dcg@5"].est);
      snips_mean[m] = Mean(cells[2][m]["dcg@5"].est);
      tr[m] = models[m].truth["dcg@5"];
    }
    md << "Checks (dcg@5, true propensities, " << NM << " models):\n\n"
       << absl::StrFormat(
              "- IPS |relative bias| / naive |relative bias|: max %.3f over "
              "the models (target <= 0.33: %s); SNIPS against naive on the "
              "click scale: max %.3f over the %d models whose naive "
              "click-scale bias exceeds 3 standard errors (%s); SNIPS "
              "|relative bias| <= %.1f%% for every model.\n",
              max_ratio_ips, max_ratio_ips <= 1.0 / 3 ? "met" : "NOT met",
              max_ratio_snips, snips_models,
              max_ratio_snips <= 1.0 / 3 ? "met" : "NOT met",
              100 * max_snips_bias)
       << absl::StrFormat(
              "- Bootstrap 95%% interval coverage: min over models %.0f%% "
              "(IPS), %.0f%% (SNIPS) (target >= 90%%: %s).\n",
              100.0 * min_cov_ips / seeds, 100.0 * min_cov_snips / seeds,
              std::min(min_cov_ips, min_cov_snips) >= 0.9 * seeds ? "met"
                                                                  : "NOT met")
       << absl::StrFormat(
              "- Kendall's tau between the order by mean estimate and by "
              "truth: naive %.3f, IPS %.3f, SNIPS %.3f; mean per-seed tau: "
              "naive %.3f, IPS %.3f, SNIPS %.3f.\n\n",
              KendallTau(naive_mean, tr), KendallTau(ips_mean, tr),
              KendallTau(snips_mean, tr), Mean(seed_tau[0]), Mean(seed_tau[1]),
              Mean(seed_tau[2]));
  }
  std::cerr << "ranking section "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                             t0)
                   .count()
            << " s\n";
  return md.str();
}

// ---------------------------------------------------------------------------
// Policy data.

struct PolicyRow {
  std::string name;
  eval::PolicyEstimator est;
  bool good_model;
  double tau = 1e300, lambda = 1.0;
};

std::string PolicySection(int seeds, int bootstrap) {
  std::ostringstream md;
  auto t0 = std::chrono::steady_clock::now();
  synth::MnarWorldOptions wo;
  wo.num_users = 2000;
  wo.num_items = 500;
  wo.popularity_exponent = 0.5;
  wo.user_activity_sigma = 0.5;
  wo.expected_clicks = 40000;
  wo.mar_test_items_per_user = 0;
  wo.truth_sample_pairs = 0;
  wo.seed = 7;
  auto world = synth::MnarWorld::Generate(wo);
  if (!world.ok()) return "world failed";
  auto view = world->ClickView();
  if (!view.ok()) return "view failed";
  const int U = static_cast<int>(world->num_users());
  const int I = static_cast<int>(world->num_items());
  auto relmf = TrainAndScore(*view, "relmf", U, I);
  auto naive = TrainAndScore(*view, "naive", U, I);
  if (!relmf.ok() || !naive.ok()) return "training failed";
  const int A = 20;
  std::vector<int> actions;
  {
    std::mt19937_64 g(5);
    std::vector<int> all(I);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), g);
    actions.assign(all.begin(), all.begin() + A);
  }
  // Per user: mu (popularity-driven, 10% uniform), pi (softmax of relmf),
  // gamma, good and poor reward models.
  std::vector<double> mu(static_cast<size_t>(U) * A), pi(mu.size()),
      gam(mu.size()), good(mu.size()), poor(mu.size());
  std::mt19937_64 gm(6);
  std::normal_distribution<double> noise(0.0, 0.05);
  double truth = 0;
  for (int u = 0; u < U; ++u) {
    double sm = 0, sp = 0, mx = -1e300;
    for (int a = 0; a < A; ++a) {
      mx = std::max(mx, static_cast<double>(
                            (*relmf)[static_cast<size_t>(u) * I + actions[a]]));
    }
    for (int a = 0; a < A; ++a) {
      size_t j = static_cast<size_t>(u) * A + a;
      int i = actions[a];
      mu[j] = world->Popularity(i);
      sm += mu[j];
      pi[j] = std::exp(2.0 * ((*relmf)[static_cast<size_t>(u) * I + i] - mx));
      sp += pi[j];
      gam[j] = world->Relevance(u, i);
      good[j] = std::clamp(gam[j] + noise(gm), 0.0, 1.0);
      poor[j] = Sigmoid((*naive)[static_cast<size_t>(u) * I + i]);
    }
    for (int a = 0; a < A; ++a) {
      size_t j = static_cast<size_t>(u) * A + a;
      mu[j] = 0.9 * mu[j] / sm + 0.1 / A;
      pi[j] /= sp;
      truth += pi[j] * gam[j] / U;
    }
  }
  const std::vector<PolicyRow> rows = {
      {"DM (good model)", eval::PolicyEstimator::kDm, true},
      {"IPS", eval::PolicyEstimator::kIps, true},
      {"SNIPS", eval::PolicyEstimator::kSnips, true},
      {"DR (good model)", eval::PolicyEstimator::kDr, true},
      {"DR (poor model)", eval::PolicyEstimator::kDr, false},
      {"DM (poor model)", eval::PolicyEstimator::kDm, false},
      {"switch-DR (tau 5)", eval::PolicyEstimator::kSwitchDr, true, 5.0},
      {"DR-OS (lambda 10)", eval::PolicyEstimator::kDrOs, true, 1e300, 10.0},
  };
  const int n = 5000;
  struct Acc {
    std::vector<double> v, w;
    int cover = 0, ncover = 0;
  };
  std::vector<Acc> acc(rows.size());
  auto pick = [](const double* p, int A, double x) {
    double c = 0;
    for (int a = 0; a < A; ++a) {
      c += p[a];
      if (x < c) return a;
    }
    return A - 1;
  };
  auto record = [&](Acc& a, const eval::PolicyResult& r, double t) {
    a.v.push_back(r.value);
    a.w.push_back(r.interval->high - r.interval->low);
    a.cover += r.interval->low <= t && t <= r.interval->high;
    a.ncover += r.normal_interval.low <= t && t <= r.normal_interval.high;
  };
  for (int seed = 0; seed < seeds; ++seed) {
    std::mt19937_64 g(5000 + seed);
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    std::vector<eval::LoggedDecision> good_log(n), poor_log(n);
    for (int t = 0; t < n; ++t) {
      int u = static_cast<int>(g() % U);
      size_t base = static_cast<size_t>(u) * A;
      int a = pick(&mu[base], A, u01(g));
      double r = u01(g) < gam[base + a] ? 1.0 : 0.0;
      double dm_good = 0, dm_poor = 0;
      for (int b = 0; b < A; ++b) {
        dm_good += pi[base + b] * good[base + b];
        dm_poor += pi[base + b] * poor[base + b];
      }
      good_log[t] = {
          {r}, {mu[base + a]}, {pi[base + a]}, {good[base + a]}, dm_good};
      poor_log[t] = {
          {r}, {mu[base + a]}, {pi[base + a]}, {poor[base + a]}, dm_poor};
    }
    for (size_t k = 0; k < rows.size(); ++k) {
      eval::PolicyOptions o;
      o.estimator = rows[k].est;
      o.tau = rows[k].tau;
      o.lambda = rows[k].lambda;
      o.bootstrap = bootstrap;
      o.seed = seed;
      o.num_threads = 2;
      auto r = eval::EstimatePolicyValue(
          rows[k].good_model ? good_log : poor_log, o);
      if (!r.ok()) return r.status().ToString();
      record(acc[k], *r, truth);
    }
  }
  md << "### Off-policy estimates on logged decisions\n\n"
     << "Contexts: the world's users (uniform); actions: 20 fixed items; "
        "reward "
        "~ Bernoulli(γ). Logging policy: 0.9 x item popularity (normalised) + "
        "0.1 uniform; target policy: softmax(2 x relmf score) over the 20 "
        "actions. Good reward model: γ + N(0, 0.05²) (clamped to [0, 1]); "
        "poor: "
        "naive MF's sigmoid. "
     << seeds << " logs of " << n << " decisions, " << bootstrap
     << " bootstrap resamples, 95% intervals. True value V(π) = "
     << absl::StrFormat("%.4f", truth) << ".\n\n"
     << "| estimator | mean | relative bias | std over seeds | mean interval "
        "width | bootstrap coverage | normal coverage |\n"
        "|---|---|---|---|---|---|---|\n";
  for (size_t k = 0; k < rows.size(); ++k) {
    const Acc& a = acc[k];
    md << "| " << rows[k].name
       << absl::StrFormat(
              " | %.4f | %+.2f%% | %.4f | %.4f | %.0f%% | %.0f%% |\n",
              Mean(a.v), 100 * (Mean(a.v) - truth) / truth, Sd(a.v), Mean(a.w),
              100.0 * a.cover / seeds, 100.0 * a.ncover / seeds);
  }
  md << "\n";
  {
    const double se_ips = Sd(acc[1].v) / std::sqrt(seeds);
    const double se_dr = Sd(acc[3].v) / std::sqrt(seeds);
    const double z_ips = (Mean(acc[1].v) - truth) / se_ips;
    const double z_dr = (Mean(acc[3].v) - truth) / se_dr;
    md << "Checks: mean minus truth in standard errors of the mean over the "
          "seeds: "
       << absl::StrFormat(
              "IPS %+.2f, DR (good model) %+.2f (unbiased within the "
              "intervals: %s); std over seeds DR / IPS = %.3f (DR lower "
              "variance: %s).\n\n",
              z_ips, z_dr,
              std::abs(z_ips) < 3 && std::abs(z_dr) < 3 ? "yes" : "NO",
              Sd(acc[3].v) / Sd(acc[1].v),
              Sd(acc[3].v) < Sd(acc[1].v) ? "yes" : "NO");
  }

  // Slates: 3 positions, items drawn per position independently (PBM).
  const int L = 3;
  const double exam[L] = {1.0, 0.6, 0.35};
  double slate_truth = 0;
  for (int k = 0; k < L; ++k) slate_truth += exam[k] * truth;
  std::vector<Acc> sacc(3);
  for (int seed = 0; seed < seeds; ++seed) {
    std::mt19937_64 g(9000 + seed);
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    std::vector<eval::LoggedDecision> log(n);
    for (int t = 0; t < n; ++t) {
      int u = static_cast<int>(g() % U);
      size_t base = static_cast<size_t>(u) * A;
      double dm = 0;
      for (int b = 0; b < A; ++b) dm += pi[base + b] * good[base + b];
      auto& d = log[t];
      d.target_dm = 0;
      for (int k = 0; k < L; ++k) {
        int a = pick(&mu[base], A, u01(g));
        d.reward.push_back(u01(g) < exam[k] * gam[base + a] ? 1.0 : 0.0);
        d.logging_prob.push_back(mu[base + a]);
        d.target_prob.push_back(pi[base + a]);
        d.reward_hat.push_back(exam[k] * good[base + a]);
        d.target_dm += exam[k] * dm;
      }
    }
    const eval::PolicyEstimator ests[3] = {eval::PolicyEstimator::kIps,
                                           eval::PolicyEstimator::kSnips,
                                           eval::PolicyEstimator::kDr};
    for (int k = 0; k < 3; ++k) {
      eval::PolicyOptions o;
      o.estimator = ests[k];
      o.bootstrap = bootstrap;
      o.seed = seed;
      o.num_threads = 2;
      auto r = eval::EstimatePolicyValue(log, o);
      if (!r.ok()) return r.status().ToString();
      record(sacc[k], *r, slate_truth);
    }
  }
  md << "Slates of 3 positions under a position-based model (examination 1, "
        "0.6, 0.35; each position's item drawn from the logging policy, "
        "target marginals = the softmax above), position-wise weights; true "
        "value "
     << absl::StrFormat("%.4f", slate_truth) << ":\n\n"
     << "| estimator | mean | relative bias | std over seeds | bootstrap "
        "coverage | normal coverage |\n|---|---|---|---|---|---|\n";
  const char* snames[3] = {"position-wise IPS", "position-wise SNIPS",
                           "position-wise DR (good model)"};
  for (int k = 0; k < 3; ++k) {
    const Acc& a = sacc[k];
    md << "| " << snames[k]
       << absl::StrFormat(
              " | %.4f | %+.2f%% | %.4f | %.0f%% | %.0f%% |\n", Mean(a.v),
              100 * (Mean(a.v) - slate_truth) / slate_truth, Sd(a.v),
              100.0 * a.cover / seeds, 100.0 * a.ncover / seeds);
  }
  md << "\n";
  std::cerr << "policy section "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                             t0)
                   .count()
            << " s\n";
  return md.str();
}

}  // namespace
}  // namespace debias

int main(int argc, char** argv) {
  using namespace debias;
  const int seeds = std::stoi(Flag(argc, argv, "seeds", "100"));
  const int bootstrap = std::stoi(Flag(argc, argv, "bootstrap", "1000"));
  const std::string out = Flag(argc, argv, "out", "");
  const std::string part = Flag(argc, argv, "part", "all");
  std::ostringstream md;
  md << "## Unbiased evaluators: IPS / SNIPS / DR ranking metrics and "
        "off-policy estimates\n\n"
     << "Produced by `bench/fidelity/fidelity_eval.cc` "
        "(`scripts/results_eval.sh`); estimator definitions in "
        "`core/eval/unbiased.h` and `core/eval/policy.h`.\n\n";
  if (part == "all" || part == "ranking")
    md << RankingSection(seeds, bootstrap);
  if (part == "all" || part == "policy") md << PolicySection(seeds, bootstrap);
  if (out.empty()) {
    std::cout << md.str();
  } else {
    std::ofstream f(out);
    f << md.str();
    std::cerr << "wrote " << out << "\n";
  }
  return 0;
}
