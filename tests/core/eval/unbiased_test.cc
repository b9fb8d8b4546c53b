#include "core/eval/unbiased.h"

#include <atomic>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::eval {
namespace {

using ::debias::testing::StatusIs;
const double kL3 = 1.0 / std::log2(3.0);

// User A of the hand-computed cases: ranked 5, 3, 9; clicked 3 (p = 0.5) and
// 7 (p = 0.25, not ranked).
UserRanking UserA() {
  UserRanking u;
  u.ranked = {5, 3, 9};
  u.clicked = {3, 7};
  u.clicked_propensity = {0.5, 0.25};
  return u;
}
// User B: ranked 7; clicked 7 with p = 1.
UserRanking UserB() {
  UserRanking u;
  u.ranked = {7};
  u.clicked = {7};
  u.clicked_propensity = {1.0};
  return u;
}

absl::StatusOr<UnbiasedRankingResult> Estimate(
    const std::vector<UserRanking>& u, RelevanceEstimator e,
    std::vector<int> ks = {1, 2, 3}, double clip = 0.0) {
  UnbiasedRankingOptions o;
  o.estimator = e;
  o.ks = std::move(ks);
  o.clip = clip;
  return EstimateRankingMetrics(u, o);
}

TEST(UnbiasedTest, ParsesEstimatorNames) {
  EXPECT_EQ(*ParseRelevanceEstimator("naive"), RelevanceEstimator::kNaive);
  EXPECT_EQ(*ParseRelevanceEstimator("ips"), RelevanceEstimator::kIps);
  EXPECT_EQ(*ParseRelevanceEstimator("snips"), RelevanceEstimator::kSnips);
  EXPECT_EQ(*ParseRelevanceEstimator("dr"), RelevanceEstimator::kDr);
  EXPECT_THAT(ParseRelevanceEstimator("IPS"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "estimator must be one of naive, ips, snips, dr"));
  EXPECT_EQ(RelevanceEstimatorName(RelevanceEstimator::kSnips), "snips");
}

TEST(UnbiasedTest, NaiveHandComputed) {
  auto r = Estimate({UserA()}, RelevanceEstimator::kNaive);
  ASSERT_OK(r);
  const auto& m = r->metrics;
  EXPECT_NEAR(m.at("dcg@1"), 0.0, 1e-12);
  EXPECT_NEAR(m.at("dcg@2"), kL3, 1e-12);
  EXPECT_NEAR(m.at("precision@2"), 0.5, 1e-12);
  EXPECT_NEAR(m.at("precision@3"), 1.0 / 3, 1e-12);
  EXPECT_NEAR(m.at("recall@2"), 0.5, 1e-12);  // 1 of 2 clicks
  // AP@2: hit at rank 2 with precision 1/2, over min(2 clicks, 2).
  EXPECT_NEAR(m.at("map@2"), 0.25, 1e-12);
  EXPECT_EQ(r->diagnostics["clicks"], 2);
  EXPECT_EQ(m.count("pointwise_loss"), 0u);
  EXPECT_TRUE(r->intervals.empty());  // bootstrap = 0
}

TEST(UnbiasedTest, IpsHandComputed) {
  auto r = Estimate({UserA()}, RelevanceEstimator::kIps);
  ASSERT_OK(r);
  const auto& m = r->metrics;
  EXPECT_NEAR(m.at("dcg@2"), 2 * kL3, 1e-12);  // rel_hat = 1 / 0.5
  EXPECT_NEAR(m.at("precision@2"), 1.0, 1e-12);
  // T_hat = 2 + 4, S = 4 + 16, S_2 = 4: (2/6)(1 - 20/36 + 4/(2*6)).
  EXPECT_NEAR(m.at("recall@2"), 2.0 / 6.0 * (1 - 20.0 / 36 + 4.0 / 12), 1e-12);
  EXPECT_NEAR(m.at("map@2"), (2.0 * 1.0 / 2) / 2, 1e-12);
  EXPECT_NEAR(m.at("map@3"), (2.0 * 1.0 / 2) / 3, 1e-12);
  // One user: the normal interval has zero width.
  EXPECT_DOUBLE_EQ(r->normal_intervals.at("dcg@2").low, m.at("dcg@2"));
}

TEST(UnbiasedTest, IpsClipsPropensities) {
  auto r = Estimate({UserA()}, RelevanceEstimator::kIps, {2}, 0.5);
  ASSERT_OK(r);
  // 0.25 -> 0.5: weights 2, 2: (2/4)(1 - 8/16 + 4/(2*4)).
  EXPECT_NEAR(r->metrics.at("recall@2"), 0.5, 1e-12);
  EXPECT_EQ(r->diagnostics["weights"]["clipped"], 1);
  EXPECT_NEAR(r->diagnostics["weights"]["max"].get<double>(), 2.0, 1e-12);
}

TEST(UnbiasedTest, SnipsNormalisesWeightsOverAllClicks) {
  auto ips = Estimate({UserA(), UserB()}, RelevanceEstimator::kIps);
  auto snips = Estimate({UserA(), UserB()}, RelevanceEstimator::kSnips);
  ASSERT_OK(ips);
  ASSERT_OK(snips);
  // 3 clicks with weights 2, 4, 1: mean weight 7/3.
  const double scale = 3.0 / 7.0;
  EXPECT_NEAR(ips->metrics.at("dcg@1"), 0.5, 1e-12);
  EXPECT_NEAR(snips->metrics.at("dcg@1"), 0.5 * scale, 1e-12);
  EXPECT_NEAR(snips->metrics.at("dcg@2"), (2 * kL3 + 1) / 2 * scale, 1e-12);
  EXPECT_NEAR(snips->metrics.at("precision@2"), (1.0 + 0.5) / 2 * scale, 1e-12);
  // Per-user ratios: the global scale cancels, SNIPS = IPS.
  EXPECT_NEAR(snips->metrics.at("recall@2"), ips->metrics.at("recall@2"),
              1e-12);
  EXPECT_NEAR(snips->metrics.at("recall@2"),
              (2.0 / 6.0 * (1 - 20.0 / 36 + 4.0 / 12) + 1.0) / 2, 1e-12);
}

TEST(UnbiasedTest, DrHandComputed) {
  UserRanking a = UserA();
  a.ranked_propensity = {0.2, 0.5, 0.8};
  a.ranked_imputed = {0.4, 0.6, 0.1};
  auto r = Estimate({a}, RelevanceEstimator::kDr, {1, 3}, 0.5);
  ASSERT_OK(r);
  // rank 1: 0.4 + (0 - 0.2 * 0.4) / 0.5 = 0.24 (clipped, imputation corrects)
  // rank 2: 0.6 + (1 - 0.5 * 0.6) / 0.5 = 2 (= 1 / p)
  // rank 3: 0.1 + (0 - 0.8 * 0.1) / 0.8 = 0
  EXPECT_NEAR(r->metrics.at("dcg@1"), 0.24, 1e-12);
  EXPECT_NEAR(r->metrics.at("dcg@3"), 0.24 + 2 * kL3, 1e-12);
  EXPECT_NEAR(r->metrics.at("precision@3"), 2.24 / 3, 1e-12);
  EXPECT_EQ(r->metrics.count("recall@3"), 0u);
  EXPECT_EQ(r->metrics.count("map@3"), 0u);
  // Without clipping DR equals IPS.
  auto dr0 = Estimate({a}, RelevanceEstimator::kDr, {1, 3}, 0.0);
  auto ips0 = Estimate({a}, RelevanceEstimator::kIps, {1, 3}, 0.0);
  ASSERT_OK(dr0);
  ASSERT_OK(ips0);
  EXPECT_NEAR(dr0->metrics.at("dcg@3"), ips0->metrics.at("dcg@3"), 1e-12);
}

TEST(UnbiasedTest, PointwiseLossHandComputed) {
  UserRanking a = UserA();
  a.clicked_score = {0.8, 0.5};
  a.negative_log_loss_sum = 3.0;
  a.num_candidates = 10;
  auto ips = Estimate({a}, RelevanceEstimator::kIps);
  ASSERT_OK(ips);
  // 3 + sum_clicked w (-log s + log(1 - s)) = 3 + 2 log(0.25) + 4 * 0.
  EXPECT_NEAR(ips->metrics.at("pointwise_loss"), (3 + 2 * std::log(0.25)) / 10,
              1e-12);
  auto naive = Estimate({a}, RelevanceEstimator::kNaive);
  ASSERT_OK(naive);
  EXPECT_NEAR(naive->metrics.at("pointwise_loss"), (3 + std::log(0.25)) / 10,
              1e-12);
}

TEST(UnbiasedTest, NormalIntervalIsTheCltIntervalForIps) {
  std::vector<UserRanking> users = {UserA(), UserB(), UserB()};
  users[2].clicked_propensity = {0.5};
  UnbiasedRankingOptions o;
  o.estimator = RelevanceEstimator::kIps;
  o.ks = {1};
  auto r = EstimateRankingMetrics(users, o);
  ASSERT_OK(r);
  // dcg@1 per user: 0, 1, 2.
  double mean = 1.0, sd = 1.0, z = NormalQuantile(0.975);
  EXPECT_NEAR(r->metrics.at("dcg@1"), mean, 1e-12);
  EXPECT_NEAR(r->normal_intervals.at("dcg@1").low, mean - z * sd / std::sqrt(3),
              1e-6);
  EXPECT_NEAR(r->normal_intervals.at("dcg@1").high,
              mean + z * sd / std::sqrt(3), 1e-6);
}

TEST(UnbiasedTest, NormalQuantileMatchesKnownValues) {
  EXPECT_NEAR(NormalQuantile(0.975), 1.959963984540054, 1e-9);
  EXPECT_NEAR(NormalQuantile(0.5), 0.0, 1e-12);
  EXPECT_NEAR(NormalQuantile(0.01), -2.326347874040841, 1e-9);
}

TEST(UnbiasedTest, WeightSummaryAndWarnings) {
  std::vector<double> w(200, 1.0);
  w[0] = 1000.0;
  w[1] = 1000.0;
  nlohmann::json s = SummarizeWeights(w);
  EXPECT_NEAR(s["max"].get<double>(), 1000.0, 1e-12);
  EXPECT_NEAR(s["top1pct_share"].get<double>(), 2000.0 / 2198.0, 1e-12);
  double ess = 2198.0 * 2198.0 / (2e6 + 198);
  EXPECT_NEAR(s["ess"].get<double>(), ess, 1e-9);
  EXPECT_NEAR(s["p50"].get<double>(), 1.0, 1e-12);
  nlohmann::json warnings = nlohmann::json::array();
  AppendWeightWarnings(s, warnings);
  ASSERT_EQ(warnings.size(), 1u);  // ess ~2.4 = 1.2% of 200: only top-1%
  EXPECT_THAT(warnings[0].get<std::string>(), ::testing::HasSubstr("top 1%"));

  std::vector<double> flat(500, 2.0);
  nlohmann::json f = SummarizeWeights(flat);
  EXPECT_NEAR(f["ess_fraction"].get<double>(), 1.0, 1e-12);
  nlohmann::json none = nlohmann::json::array();
  AppendWeightWarnings(f, none);
  EXPECT_TRUE(none.empty());
}

// A small world with known relevance and exposure: U users, I items, item
// popularity drives exposure (MNAR); the model ranks by a noisy relevance.
struct World {
  int U, I;
  std::vector<double> rel, prop;  // U x I
  std::vector<std::vector<int32_t>> ranked;
};

World MakeWorld(int U, int I, int K, uint64_t seed) {
  World w{U, I, {}, {}, {}};
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<double> item_q(I), item_pop(I);
  for (int i = 0; i < I; ++i) {
    item_q[i] = unif(g);
    item_pop[i] = std::pow(1.0 / (1 + i), 0.8);  // item 0 most popular
  }
  w.rel.resize(static_cast<size_t>(U) * I);
  w.prop.resize(static_cast<size_t>(U) * I);
  w.ranked.resize(U);
  std::vector<double> score(I);
  std::vector<int32_t> order(I);
  for (int u = 0; u < U; ++u) {
    for (int i = 0; i < I; ++i) {
      double r = std::clamp(0.5 * item_q[i] + 0.3 * unif(g), 0.0, 1.0);
      w.rel[u * I + i] = r;
      w.prop[u * I + i] = std::clamp(item_pop[i] * (0.5 + unif(g)), 0.02, 1.0);
      // A model that likes popular items and partly knows relevance.
      score[i] = r + 0.4 * item_pop[i] + 0.3 * unif(g);
    }
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + K, order.end(),
                      [&](int a, int b) { return score[a] > score[b]; });
    w.ranked[u].assign(order.begin(), order.begin() + K);
  }
  return w;
}

double TrueDcg(const World& w, int K) {
  double s = 0;
  for (int u = 0; u < w.U; ++u) {
    for (int r = 0; r < K; ++r) {
      s += w.rel[u * w.I + w.ranked[u][r]] / std::log2(r + 2.0);
    }
  }
  return s / w.U;
}

std::vector<UserRanking> SimulateClicks(const World& w, std::mt19937_64& g,
                                        bool with_dr,
                                        const std::vector<double>* imputed) {
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<UserRanking> users(w.U);
  for (int u = 0; u < w.U; ++u) {
    UserRanking& r = users[u];
    r.ranked = w.ranked[u];
    for (int i = 0; i < w.I; ++i) {
      double p = w.prop[u * w.I + i];
      if (unif(g) < p && unif(g) < w.rel[u * w.I + i]) {
        r.clicked.push_back(i);
        r.clicked_propensity.push_back(p);
      }
    }
    if (with_dr) {
      for (int32_t i : r.ranked) {
        r.ranked_propensity.push_back(w.prop[u * w.I + i]);
        r.ranked_imputed.push_back((*imputed)[u * w.I + i]);
      }
    }
  }
  return users;
}

struct MeanSe {
  double mean, se;
};
MeanSe Summarize(const std::vector<double>& x) {
  double m = std::accumulate(x.begin(), x.end(), 0.0) / x.size();
  double v = 0;
  for (double y : x) v += (y - m) * (y - m);
  v /= (x.size() - 1);
  return {m, std::sqrt(v / x.size())};
}

TEST(UnbiasedTest, IpsAndDrAreUnbiasedNaiveIsNot) {
  const int K = 5, reps = 40;
  World w = MakeWorld(2000, 40, K, 7);
  const double truth = TrueDcg(w, K);
  std::vector<double> naive, ips, dr, snips, prec;
  double true_prec = 0;
  for (int u = 0; u < w.U; ++u) {
    for (int r = 0; r < K; ++r) true_prec += w.rel[u * w.I + w.ranked[u][r]];
  }
  true_prec /= (w.U * static_cast<double>(K));
  // kappa = E[#clicks] / sum rel: the scale SNIPS estimates on.
  double clicks = 0, total_rel = 0;
  for (size_t j = 0; j < w.rel.size(); ++j) {
    clicks += w.rel[j] * w.prop[j];
    total_rel += w.rel[j];
  }
  const double kappa = clicks / total_rel;
  std::mt19937_64 g(11);
  UnbiasedRankingOptions o;
  o.ks = {K};
  for (int rep = 0; rep < reps; ++rep) {
    auto users = SimulateClicks(w, g, true, &w.rel);  // perfect imputation
    o.clip = 0.0;
    o.estimator = RelevanceEstimator::kNaive;
    naive.push_back(EstimateRankingMetrics(users, o)->metrics.at("dcg@5"));
    o.estimator = RelevanceEstimator::kIps;
    auto r = EstimateRankingMetrics(users, o);
    ips.push_back(r->metrics.at("dcg@5"));
    prec.push_back(r->metrics.at("precision@5"));
    o.estimator = RelevanceEstimator::kSnips;
    snips.push_back(EstimateRankingMetrics(users, o)->metrics.at("dcg@5"));
    o.estimator = RelevanceEstimator::kDr;
    o.clip = 0.3;  // heavy clipping; the imputation removes its bias
    dr.push_back(EstimateRankingMetrics(users, o)->metrics.at("dcg@5"));
  }
  MeanSe n = Summarize(naive), i = Summarize(ips), d = Summarize(dr),
         s = Summarize(snips), p = Summarize(prec);
  EXPECT_NEAR(i.mean, truth, 4 * i.se + 1e-9) << "truth " << truth;
  EXPECT_NEAR(p.mean, true_prec, 4 * p.se + 1e-9);
  EXPECT_NEAR(d.mean, truth, 4 * d.se + 1e-9);
  EXPECT_LT(d.se, i.se);  // clipping with a correct imputation: less variance
  EXPECT_GT(std::abs(n.mean - truth), 20 * n.se + 0.1 * truth);
  // SNIPS is a ratio estimator of kappa x truth: consistent, not exact.
  EXPECT_NEAR(s.mean, kappa * truth, 4 * s.se + 0.01 * kappa * truth);
}

TEST(UnbiasedTest, IpsPointwiseLossIsUnbiased) {
  const int K = 3, reps = 40;
  World w = MakeWorld(500, 30, K, 3);
  // A fixed model probability per pair.
  std::vector<double> s(w.rel.size());
  for (size_t j = 0; j < s.size(); ++j) s[j] = 0.2 + 0.6 * w.rel[j];
  double truth = 0;
  std::vector<double> s0(w.U, 0.0);
  for (int u = 0; u < w.U; ++u) {
    for (int i = 0; i < w.I; ++i) {
      double r = w.rel[u * w.I + i], q = s[u * w.I + i];
      truth += -r * std::log(q) - (1 - r) * std::log1p(-q);
      s0[u] += -std::log1p(-q);
    }
  }
  truth /= (w.U * static_cast<double>(w.I));
  std::mt19937_64 g(5);
  std::vector<double> est;
  UnbiasedRankingOptions o;
  o.ks = {K};
  for (int rep = 0; rep < reps; ++rep) {
    auto users = SimulateClicks(w, g, false, nullptr);
    for (int u = 0; u < w.U; ++u) {
      users[u].num_candidates = w.I;
      users[u].negative_log_loss_sum = s0[u];
      for (int32_t i : users[u].clicked) {
        users[u].clicked_score.push_back(s[u * w.I + i]);
      }
    }
    est.push_back(
        EstimateRankingMetrics(users, o)->metrics.at("pointwise_loss"));
  }
  MeanSe m = Summarize(est);
  EXPECT_NEAR(m.mean, truth, 4 * m.se + 1e-9);
}

TEST(UnbiasedTest, BootstrapIntervalCoversTruth) {
  const int K = 5, reps = 200;
  std::mt19937_64 g(21);
  int covered = 0, normal_covered = 0;
  UnbiasedRankingOptions o;
  o.estimator = RelevanceEstimator::kIps;
  o.ks = {K};
  o.bootstrap = 200;
  for (int rep = 0; rep < reps; ++rep) {
    World w = MakeWorld(200, 20, K, 1000 + rep);
    double truth = TrueDcg(w, K);
    auto users = SimulateClicks(w, g, false, nullptr);
    o.seed = rep;
    auto r = EstimateRankingMetrics(users, o);
    ASSERT_OK(r);
    Interval b = r->intervals.at("dcg@5"), n = r->normal_intervals.at("dcg@5");
    covered += (b.low <= truth && truth <= b.high);
    normal_covered += (n.low <= truth && truth <= n.high);
  }
  EXPECT_GE(covered, 0.85 * reps);
  EXPECT_GE(normal_covered, 0.85 * reps);
}

TEST(UnbiasedTest, DeterministicForSeedAndThreads) {
  World w = MakeWorld(300, 20, 5, 9);
  std::mt19937_64 g(1);
  auto users = SimulateClicks(w, g, false, nullptr);
  UnbiasedRankingOptions o;
  o.estimator = RelevanceEstimator::kSnips;
  o.ks = {3, 5};
  o.bootstrap = 300;
  o.seed = 42;
  auto a = EstimateRankingMetrics(users, o);
  o.num_threads = 3;
  auto b = EstimateRankingMetrics(users, o);
  o.seed = 43;
  auto c = EstimateRankingMetrics(users, o);
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(c);
  for (const auto& [k, v] : a->intervals) {
    EXPECT_EQ(v.low, b->intervals.at(k).low) << k;
    EXPECT_EQ(v.high, b->intervals.at(k).high) << k;
    EXPECT_LE(v.low, a->metrics.at(k));
    EXPECT_GE(v.high, a->metrics.at(k));
  }
  EXPECT_NE(a->intervals.at("dcg@5").low, c->intervals.at("dcg@5").low);
  EXPECT_EQ(a->diagnostics.dump(), b->diagnostics.dump());
}

TEST(UnbiasedTest, WarnsWhenAFewWeightsDominate) {
  std::vector<UserRanking> users(200);
  for (int u = 0; u < 200; ++u) {
    users[u].ranked = {0, 1};
    users[u].clicked = {0};
    users[u].clicked_propensity = {u == 0 ? 1e-6 : 1.0};
  }
  UnbiasedRankingOptions o;
  o.ks = {1};
  auto r = EstimateRankingMetrics(users, o);
  ASSERT_OK(r);
  ASSERT_FALSE(r->diagnostics["warnings"].empty());
  EXPECT_THAT(r->diagnostics["warnings"][0].get<std::string>(),
              ::testing::HasSubstr("effective sample size"));
  // Clipping at 0.01 removes the dominant weight.
  o.clip = 0.01;
  auto c = EstimateRankingMetrics(users, o);
  ASSERT_OK(c);
  EXPECT_NEAR(c->diagnostics["weights"]["clipped_fraction"].get<double>(),
              0.005, 1e-12);
  EXPECT_TRUE(c->diagnostics["warnings"].empty()) << c->diagnostics.dump();
}

TEST(UnbiasedTest, RejectsBadInput) {
  using absl::StatusCode::kInvalidArgument;
  UnbiasedRankingOptions o;
  auto bad = [&](auto mutate) {
    std::vector<UserRanking> users = {UserB(), UserA()};
    mutate(users[1]);
    return EstimateRankingMetrics(users, o);
  };
  EXPECT_THAT(bad([](UserRanking& u) { u.clicked_propensity[1] = NAN; }),
              StatusIs(kInvalidArgument,
                       "users[1].clicked_propensity[1]=nan: must be finite"));
  EXPECT_THAT(bad([](UserRanking& u) { u.clicked_propensity[0] = 0; }),
              StatusIs(kInvalidArgument, "users[1].clicked_propensity[0]=0"));
  EXPECT_THAT(bad([](UserRanking& u) { u.clicked_propensity[0] = 1.5; }),
              StatusIs(kInvalidArgument, "in (0, 1]"));
  EXPECT_THAT(bad([](UserRanking& u) { u.clicked_propensity[0] = 1e-13; }),
              StatusIs(kInvalidArgument, "at least 1e-12"));
  EXPECT_THAT(bad([](UserRanking& u) { u.clicked_propensity[0] = INFINITY; }),
              StatusIs(kInvalidArgument, "users[1].clicked_propensity[0]=inf"));
  EXPECT_THAT(bad([](UserRanking& u) {
                u.clicked = {7, 3};
              }),
              StatusIs(kInvalidArgument, "strictly ascending"));
  EXPECT_THAT(bad([](UserRanking& u) { u.clicked_propensity.pop_back(); }),
              StatusIs(kInvalidArgument, "lengths must match"));
  EXPECT_THAT(bad([](UserRanking& u) {
                u.ranked = {1, 2, 1};
              }),
              StatusIs(kInvalidArgument, "users[1].ranked: item 1 appears"));
  EXPECT_THAT(bad([](UserRanking& u) { u.ranked = {-1}; }),
              StatusIs(kInvalidArgument, "users[1].ranked[0]=-1"));
  EXPECT_THAT(bad([](UserRanking& u) {
                u.num_candidates = 5;
                u.clicked_score = {0.1, 0.2};
              }),
              StatusIs(kInvalidArgument, "every user or none"));

  std::vector<UserRanking> one = {UserA()};
  o.ks = {0};
  EXPECT_THAT(EstimateRankingMetrics(one, o),
              StatusIs(kInvalidArgument, "k=0: k must be in [1, 1000]"));
  o.ks = {1001};
  EXPECT_THAT(EstimateRankingMetrics(one, o),
              StatusIs(kInvalidArgument, "k=1001"));
  o.ks = {};
  EXPECT_THAT(EstimateRankingMetrics(one, o), StatusIs(kInvalidArgument, "ks"));
  o.ks = {5, 5};
  EXPECT_THAT(EstimateRankingMetrics(one, o),
              StatusIs(kInvalidArgument, "distinct"));
  o.ks = {5};
  o.clip = 1.5;
  EXPECT_THAT(EstimateRankingMetrics(one, o),
              StatusIs(kInvalidArgument, "clip=1.5"));
  o.clip = -0.1;
  EXPECT_THAT(EstimateRankingMetrics(one, o),
              StatusIs(kInvalidArgument, "clip"));
  o.clip = 0;
  o.bootstrap = 100001;
  EXPECT_THAT(EstimateRankingMetrics(one, o),
              StatusIs(kInvalidArgument, "bootstrap must be in [0, 100000]"));
  o.bootstrap = 0;
  o.confidence = 1.0;
  EXPECT_THAT(EstimateRankingMetrics(one, o),
              StatusIs(kInvalidArgument, "confidence"));
  o.confidence = 0.95;
  o.num_threads = 0;
  EXPECT_THAT(EstimateRankingMetrics(one, o),
              StatusIs(kInvalidArgument, "num_threads"));
  o.num_threads = 1;
  EXPECT_THAT(EstimateRankingMetrics({}, o),
              StatusIs(kInvalidArgument, "at least one user"));
  o.estimator = RelevanceEstimator::kDr;
  EXPECT_THAT(EstimateRankingMetrics(one, o),
              StatusIs(kInvalidArgument, "needs ranked_propensity"));
  UserRanking a = UserA();
  a.ranked_propensity = {0.5, 0.5, 0.5};
  a.ranked_imputed = {0.5, 1.5, 0.5};
  one = {a};
  EXPECT_THAT(EstimateRankingMetrics(one, o),
              StatusIs(kInvalidArgument, "users[0].ranked_imputed[1]=1.5"));
}

}  // namespace
}  // namespace debias::eval

namespace debias::eval {
namespace {

TEST(UnbiasedCancelTest, BootstrapStopsWhenCancelledAndRunsWhenNot) {
  std::vector<UserRanking> users(200);
  for (int u = 0; u < 200; ++u) {
    users[u].ranked = {0, 1};
    users[u].clicked = {u % 2};
    users[u].clicked_propensity = {0.5};
  }
  UnbiasedRankingOptions o;
  o.ks = {1};
  o.bootstrap = 5000;
  std::atomic<int> polls{0};
  o.cancelled = [&] { return ++polls > 3; };
  auto r = EstimateRankingMetrics(users, o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  // Polled every 8 resamples: it stopped long before the 5000th.
  EXPECT_LT(polls.load(), 20);
  o.cancelled = [] { return false; };
  auto ok = EstimateRankingMetrics(users, o);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->intervals.count("dcg@1"), 1u);
}

}  // namespace
}  // namespace debias::eval
