#include "core/synth/click_log_world.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "core/clickmodels/ubm.h"
#include "core/data/loaders.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/util/status_matchers.h"

namespace debias::synth {
namespace {

using ::debias::testing::StatusIs;

ClickLogWorldOptions Small(uint64_t seed = 1) {
  ClickLogWorldOptions o;
  o.num_queries = 100;
  o.docs_per_query = 30;
  o.list_size = 10;
  o.feature_dim = 16;
  o.impressions_per_query = 5;
  o.num_test_queries = 20;
  o.seed = seed;
  return o;
}

ClickLogWorld Gen(const ClickLogWorldOptions& o) {
  absl::StatusOr<ClickLogWorld> w = ClickLogWorld::Generate(o);
  EXPECT_TRUE(w.ok()) << w.status();
  return std::move(*w);
}

TEST(ClickLogWorldTest, DeterministicForSeed) {
  ClickLogWorld a = Gen(Small(2)), b = Gen(Small(2)), c = Gen(Small(3));
  EXPECT_EQ(a.ClickEvents(), b.ClickEvents());
  EXPECT_EQ(a.TestEvents(), b.TestEvents());
  EXPECT_NE(a.ClickEvents(), c.ClickEvents());
  // A query does not depend on how many other queries the world has.
  ClickLogWorldOptions more = Small(2);
  more.num_queries = 150;
  ClickLogWorld d = Gen(more);
  for (int q : {0, 57, 99}) {
    EXPECT_TRUE(std::ranges::equal(a.Labels(q), d.Labels(q)));
    EXPECT_TRUE(std::ranges::equal(a.Features(q, 7), d.Features(q, 7)));
    EXPECT_TRUE(std::ranges::equal(a.LoggingOrder(q), d.LoggingOrder(q)));
  }
}

TEST(ClickLogWorldTest, ClickLogHasTheRightShape) {
  ClickLogWorldOptions o = Small(4);
  o.randomized_fraction = 0.3;
  ClickLogWorld w = Gen(o);
  std::vector<data::Interaction> ev = w.ClickEvents();
  ASSERT_EQ(ev.size(), 100u * 5u * 10u);
  EXPECT_EQ(w.num_lists(), 500u);
  EXPECT_GT(w.summary().randomized_lists, 100u);
  EXPECT_LT(w.summary().randomized_lists, 200u);
  double clicks = 0;
  for (size_t li = 0; li < w.num_lists(); ++li) {
    const int q = w.ListQuery(li);
    EXPECT_EQ(q, static_cast<int>(li / 5));
    std::vector<uint16_t> shown(w.ListDocs(li).begin(), w.ListDocs(li).end());
    std::vector<uint16_t> top(w.LoggingOrder(q).begin(),
                              w.LoggingOrder(q).begin() + 10);
    if (w.ListRandomized(li)) {
      std::ranges::sort(shown);
      std::ranges::sort(top);
    }
    EXPECT_EQ(shown, top) << "list " << li;
    const std::string list_key = "q" + std::to_string(q) +
                                 (w.ListRandomized(li) ? "-r" : "-l") +
                                 std::to_string(li % 5);
    for (int r = 0; r < 10; ++r) {
      const data::Interaction& e = ev[li * 10 + r];
      EXPECT_EQ(e.user, "q" + std::to_string(q));
      EXPECT_EQ(e.item, e.user + "-d" + std::to_string(w.ListDocs(li)[r]));
      EXPECT_EQ(e.list_id, list_key);
      EXPECT_EQ(e.position, r + 1);
      EXPECT_EQ(e.label, w.ListClicks(li)[r]);
      ASSERT_EQ(e.features.size(), 16u);
      EXPECT_EQ(e.features[3], w.Features(q, w.ListDocs(li)[r])[3]);
      EXPECT_OK(data::ValidateInteraction(e));
      clicks += e.label;
    }
  }
  EXPECT_EQ(clicks, w.summary().clicks);
  absl::StatusOr<data::DatasetView> view = w.ClickView();
  ASSERT_OK(view);
  EXPECT_EQ(view->num_events(), ev.size());
  EXPECT_EQ(view->feature_dim, 16);
  EXPECT_EQ(view->list_keys[view->list[123]], *ev[123].list_id);
  EXPECT_EQ(view->item_keys[view->item[123]], ev[123].item);
  EXPECT_EQ(view->position[123], *ev[123].position);
}

// Under result randomisation every position sees the same mix of documents,
// so click-rate ratios across positions are the examination ratios.
TEST(ClickLogWorldTest, RandomizedPbmClickRatiosMatchTheExamCurve) {
  ClickLogWorldOptions o = Small(5);
  o.num_queries = 400;
  o.impressions_per_query = 200;
  o.randomized_fraction = 1.0;
  o.num_test_queries = 0;
  ClickLogWorld w = Gen(o);
  std::vector<double> c(10, 0.0);
  for (size_t li = 0; li < w.num_lists(); ++li) {
    for (int r = 0; r < 10; ++r) c[r] += w.ListClicks(li)[r];
  }
  std::vector<double> exam = w.ExaminationCurve();
  std::vector<double> oracle = w.OracleInversePropensities();
  EXPECT_NEAR(oracle[9], 0.68 / 0.06, 1e-9);
  for (int r = 1; r < 10; ++r) {
    // Relative standard error of the ratio is about sqrt(1/c_r + 1/c_1).
    const double rel_se = std::sqrt(1 / c[r] + 1 / c[0]);
    EXPECT_NEAR((c[r] / c[0]) / (exam[r] / exam[0]), 1.0, 4 * rel_se)
        << "position " << r + 1;
  }
  for (int r = 0; r < 10; ++r) {
    EXPECT_NEAR(w.MeanExaminationByPosition()[r], exam[r], 1e-12);
  }
}

// With the logging order (no randomisation) the click rate divided by the
// shown documents' mean attractiveness still recovers exam(r) under PBM.
TEST(ClickLogWorldTest, LoggedPbmClicksOverAttractivenessGiveExam) {
  ClickLogWorldOptions o = Small(6);
  o.num_queries = 400;
  o.impressions_per_query = 100;
  o.eta = 2.0;
  o.num_test_queries = 0;
  ClickLogWorld w = Gen(o);
  std::vector<double> c(10, 0.0), a(10, 0.0);
  for (size_t li = 0; li < w.num_lists(); ++li) {
    const auto lab = w.Labels(w.ListQuery(li));
    for (int r = 0; r < 10; ++r) {
      c[r] += w.ListClicks(li)[r];
      a[r] += w.click_model().Attractiveness(lab[w.ListDocs(li)[r]]);
    }
  }
  std::vector<double> exam = w.ExaminationCurve();
  EXPECT_NEAR(exam[0], 0.68 * 0.68, 1e-12);
  for (int r = 0; r < 10; ++r) {
    EXPECT_NEAR(c[r] / a[r], exam[r], 4 * std::sqrt(exam[r] / a[r]) + 1e-3)
        << "position " << r + 1;
  }
}

TEST(ClickLogWorldTest, RelevanceIsNonlinearAndTheLoggerIsInformative) {
  ClickLogWorldOptions o = Small(7);
  o.num_queries = 400;
  o.impressions_per_query = 1;
  ClickLogWorld w = Gen(o);
  const std::vector<double>& frac = w.summary().label_fractions;
  ASSERT_EQ(frac.size(), 5u);
  const double z = 1 + 0.6 + 0.36 + 0.216 + 0.1296;
  for (int k = 0; k <= 4; ++k) {
    EXPECT_NEAR(frac[k], std::pow(0.6, k) / z, 0.03) << "label " << k;
  }
  // Best linear fit of the graded label: far from perfect although the
  // label is a deterministic function of the features.
  const int n = 400 * 30, d = 16;
  Eigen::MatrixXd X(n, d + 1);
  Eigen::VectorXd y(n);
  for (int q = 0; q < 400; ++q) {
    for (int k = 0; k < 30; ++k) {
      for (int j = 0; j < d; ++j) X(q * 30 + k, j) = w.Features(q, k)[j];
      X(q * 30 + k, d) = 1.0;
      y(q * 30 + k) = w.Labels(q)[k];
    }
  }
  Eigen::VectorXd beta = X.colPivHouseholderQr().solve(y);
  const double sse = (X * beta - y).squaredNorm();
  const double sst = (y.array() - y.mean()).square().sum();
  const double r2 = 1 - sse / sst;
  EXPECT_LT(r2, 0.75);
  EXPECT_GT(r2, 0.05);
  EXPECT_GT(w.summary().logging_ndcg, w.summary().random_ndcg + 0.1);
  EXPECT_LT(w.summary().logging_ndcg, 0.95);
}

TEST(ClickLogWorldTest, OtherClickModels) {
  ClickLogWorldOptions o = Small(8);
  o.click_model = clickmodels::ClickModelKind::kCascade;
  ClickLogWorld cas = Gen(o);
  for (size_t li = 0; li < cas.num_lists(); ++li) {
    int n = 0;
    for (uint8_t c : cas.ListClicks(li)) n += c;
    ASSERT_LE(n, 1);
  }
  EXPECT_EQ(cas.MeanExaminationByPosition()[0], 1.0);
  EXPECT_LT(cas.MeanExaminationByPosition()[9], 0.6);
  o.click_model = clickmodels::ClickModelKind::kUbm;
  ClickLogWorld ubm = Gen(o);
  EXPECT_EQ(ubm.TruthJson()["click_model"], "ubm");
  double max_gap = 0.0;
  for (int r = 0; r < 10; ++r) {
    // A mixture of the rank's table row (over where the last click was).
    double lo = 1.0, hi = 0.0;
    for (int d = 0; d <= r; ++d) {
      lo = std::min(lo, clickmodels::kUbmTable[r][d]);
      hi = std::max(hi, clickmodels::kUbmTable[r][d]);
    }
    EXPECT_GE(ubm.MeanExaminationByPosition()[r], lo - 1e-12);
    EXPECT_LE(ubm.MeanExaminationByPosition()[r], hi + 1e-12);
    max_gap = std::max(max_gap, std::abs(ubm.MeanExaminationByPosition()[r] -
                                         ubm.ExaminationCurve()[r]));
  }
  // Earlier clicks move examination away from the no-click curve.
  EXPECT_GT(max_gap, 0.02);
}

TEST(ClickLogWorldTest, TestQueriesAreLabelledCandidates) {
  ClickLogWorld w = Gen(Small(9));
  std::vector<data::Interaction> t = w.TestEvents();
  ASSERT_EQ(t.size(), 20u * 30u);
  EXPECT_EQ(t[0].user, "q100");
  EXPECT_EQ(t[0].list_id, "q100");
  EXPECT_EQ(t[31].item, "q101-d1");
  EXPECT_EQ(t[31].label, w.Labels(101)[1]);
  EXPECT_EQ(t[31].features.size(), 16u);
  EXPECT_THAT(w.CandidateEvents(110, 11),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "queries [110, 121): must lie within [0, 120)"));
  absl::StatusOr<std::vector<data::Interaction>> train =
      w.CandidateEvents(0, 100);
  ASSERT_OK(train);
  EXPECT_EQ(train->size(), 3000u);
  EXPECT_TRUE(w.Labels(120).empty());
  EXPECT_TRUE(w.Features(0, 30).empty());
}

TEST(ClickLogWorldTest, RejectsBadOptions) {
  ClickLogWorldOptions o = Small();
  o.docs_per_query = 5;
  EXPECT_THAT(
      ClickLogWorld::Generate(o),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "docs_per_query=5: docs_per_query must be in [10, 1000]"));
  o = Small();
  o.feature_dim = 701;
  EXPECT_THAT(ClickLogWorld::Generate(o),
              StatusIs(absl::StatusCode::kInvalidArgument, "feature_dim=701"));
  o = Small();
  o.eta = -1;
  EXPECT_THAT(ClickLogWorld::Generate(o),
              StatusIs(absl::StatusCode::kInvalidArgument, "eta=-1"));
  o = Small();
  o.num_queries = 1'000'000;
  o.feature_dim = 700;
  EXPECT_THAT(ClickLogWorld::Generate(o),
              StatusIs(absl::StatusCode::kInvalidArgument, "must be at most"));
}

TEST(ClickLogWorldTest, WritesWorldFiles) {
  const std::string dir = ::testing::TempDir() + "/click_log_world_test";
  std::filesystem::remove_all(dir);
  ClickLogWorldOptions o = Small(10);
  o.num_queries = 30;
  o.num_test_queries = 4;
  ClickLogWorld w = Gen(o);
  ASSERT_OK(w.WriteWorld(dir));
  auto lines = [](const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  };
  std::vector<std::string> clicks = lines(dir + "/clicks.csv");
  ASSERT_EQ(clicks.size(), 1 + 30u * 5u * 10u);
  EXPECT_EQ(clicks[0], "user,item,label,list_id,position,features");
  EXPECT_EQ(clicks[1].rfind("q0,q0-d", 0), 0u);
  std::vector<std::string> test = lines(dir + "/test.csv");
  ASSERT_EQ(test.size(), 1 + 4u * 30u);
  EXPECT_EQ(test[0], "user,item,label,list_id,features");
  EXPECT_EQ(test[1].rfind("q30,q30-d0,", 0), 0u);
  EXPECT_EQ(lines(dir + "/train_truth.csv").size(), 1 + 30u * 30u);
  absl::StatusOr<data::LoadResult> clicks_back =
      data::LoadFile(dir + "/clicks.csv", data::Format::kCsv, {});
  ASSERT_OK(clicks_back);
  EXPECT_EQ(clicks_back->events, w.ClickEvents());
  absl::StatusOr<data::LoadResult> test_back =
      data::LoadFile(dir + "/test.csv", data::Format::kCsv, {});
  ASSERT_OK(test_back);
  EXPECT_EQ(test_back->events, w.TestEvents());
  std::ifstream jin(dir + "/truth.json");
  nlohmann::json j = nlohmann::json::parse(jin);
  EXPECT_EQ(j["click_model"], "pbm");
  EXPECT_EQ(j["eta"], 1.0);
  EXPECT_EQ(j["eps"], 0.1);
  ASSERT_EQ(j["exam_prob"].size(), 10u);
  EXPECT_DOUBLE_EQ(j["exam_prob"][2].get<double>(), 0.48);
  EXPECT_EQ(j["summary"]["events"].get<uint64_t>(), 1500u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace debias::synth
