#include "core/eval/metrics.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::eval {
namespace {

using ::debias::testing::StatusIs;
const double kL3 = 1.0 / std::log2(3.0);

TEST(MetricsTest, NdcgBinaryAndExponential) {
  std::vector<float> s = {0.9f, 0.8f, 0.7f, 0.6f}, y = {0, 1, 1, 0};
  EXPECT_NEAR(DcgAtK(s, y, 2, Gain::kBinary), kL3, 1e-12);
  EXPECT_NEAR(NdcgAtK(s, y, 2, Gain::kBinary), kL3 / (1 + kL3), 1e-12);
  std::vector<float> s2 = {0.1f, 0.5f, 0.3f}, y2 = {3, 0, 1};
  // Ranked: 0, 1, 3 -> gains 0, 1, 7 with discounts 1, 1/log2 3, 1/2.
  EXPECT_NEAR(NdcgAtK(s2, y2, 3, Gain::kExponential), (kL3 + 3.5) / (7 + kL3), 1e-12);
  // Binary gain counts labels >= threshold.
  EXPECT_NEAR(NdcgAtK(s2, y2, 3, Gain::kBinary, 1.0), (kL3 + 0.5) / (1 + kL3), 1e-12);
  EXPECT_EQ(NdcgAtK(s2, std::vector<float>{0, 0, 0}, 3, Gain::kBinary), 0.0);
}

TEST(MetricsTest, HitsAndAveragePrecision) {
  std::vector<float> s = {0.9f, 0.8f, 0.7f, 0.6f}, y = {0, 1, 1, 0};
  EXPECT_EQ(HitsAtK(s, y, 2, 0.5), 1);
  EXPECT_EQ(HitsAtK(s, y, 10, 0.5), 2);
  EXPECT_NEAR(AveragePrecisionAtK(s, y, 2, 0.5), 0.5 / 2, 1e-12);
  EXPECT_NEAR(AveragePrecisionAtK(s, y, 3, 0.5), (0.5 + 2.0 / 3) / 2, 1e-12);
}

TEST(MetricsTest, AucWithTies) {
  std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f}, y = {0, 0, 1, 1};
  EXPECT_NEAR(Auc(s, y), 0.75, 1e-12);
  EXPECT_NEAR(Auc(std::vector<float>{0.5f, 0.5f}, std::vector<float>{1, 0}), 0.5, 1e-12);
  EXPECT_NEAR(Auc(std::vector<float>{0.5f, 0.7f}, std::vector<float>{1, 1}), 0.5, 1e-12);
}

TEST(MetricsTest, LogLossAndMse) {
  std::vector<float> p = {0.8f, 0.3f}, y = {1, 0};
  EXPECT_NEAR(LogLoss(p, y), -(std::log(0.8) + std::log(0.7)) / 2, 1e-6);
  EXPECT_NEAR(Mse(p, y), 0.065, 1e-6);
}

// Users: A (ndcg@2 = kL3/(1+kL3), P = R = 1/2, AP = 1/4), B (no relevant),
// C (one item, relevant: ndcg 1, R 1, P 1/2, AP 1).
RankingAccumulator Fill(MetricOptions o) {
  o.ks = {2};
  RankingAccumulator acc(o);
  acc.AddList(std::vector<float>{0.9f, 0.8f, 0.7f, 0.6f}, std::vector<float>{0, 1, 1, 0});
  acc.AddList(std::vector<float>{0.3f, 0.2f}, std::vector<float>{0, 0});
  acc.AddList(std::vector<float>{1.0f}, std::vector<float>{1});
  return acc;
}

TEST(RankingAccumulatorTest, EmptyUserConventions) {
  const double ndcg_a = kL3 / (1 + kL3);
  MetricOptions o;
  auto ex = Fill(o).Result();
  EXPECT_NEAR(ex["ndcg@2"], (ndcg_a + 1) / 2, 1e-12);
  EXPECT_NEAR(ex["recall@2"], 0.75, 1e-12);
  EXPECT_NEAR(ex["precision@2"], 0.5, 1e-12);
  EXPECT_NEAR(ex["map@2"], (0.25 + 1) / 2, 1e-12);
  EXPECT_NEAR(ex["f1@2"], (0.5 + 2 * 0.5 / 1.5) / 2, 1e-12);
  EXPECT_EQ(ex["users"], 2);
  EXPECT_EQ(ex["users_without_relevant"], 1);

  o.empty_users = EmptyUsers::kInclude;
  auto in = Fill(o).Result();
  EXPECT_NEAR(in["ndcg@2"], (ndcg_a + 1) / 3, 1e-12);
  EXPECT_NEAR(in["recall@2"], 1.5 / 3, 1e-12);
  EXPECT_EQ(in["users"], 3);

  o.empty_users = EmptyUsers::kNdcgOne;
  auto one = Fill(o).Result();
  EXPECT_NEAR(one["ndcg@2"], (ndcg_a + 2) / 3, 1e-12);
  EXPECT_NEAR(one["recall@2"], 1.5 / 3, 1e-12);
  EXPECT_NEAR(one["precision@2"], 1.0 / 3, 1e-12);
}

TEST(RankingAccumulatorTest, F1Conventions) {
  MetricOptions o;
  o.f1 = F1Mode::kFromAverages;
  auto r = Fill(o).Result();
  // P̄ = 1/2, R̄ = 3/4.
  EXPECT_NEAR(r["f1@2"], 2 * 0.5 * 0.75 / 1.25, 1e-12);
}

TEST(RankingAccumulatorTest, MergeEqualsSingle) {
  MetricOptions o;
  o.ks = {1, 3};
  RankingAccumulator a(o), b(o), all(o);
  std::vector<float> s1 = {0.2f, 0.9f, 0.4f}, y1 = {1, 0, 1};
  std::vector<float> s2 = {0.5f, 0.1f}, y2 = {0, 1};
  a.AddList(s1, y1);
  b.AddList(s2, y2);
  all.AddList(s1, y1);
  all.AddList(s2, y2);
  a.Merge(b);
  EXPECT_EQ(a.Result(), all.Result());
}

TEST(MetricsTest, OptionsValidationAndParsing) {
  MetricOptions o;
  o.ks = {0};
  EXPECT_THAT(ValidateMetricOptions(o), StatusIs(absl::StatusCode::kInvalidArgument, "k=0"));
  EXPECT_EQ(*ParseGain("exp"), Gain::kExponential);
  EXPECT_EQ(*ParseEmptyUsers("ndcg-one"), EmptyUsers::kNdcgOne);
  EXPECT_EQ(*ParseF1Mode("from-averages"), F1Mode::kFromAverages);
  EXPECT_THAT(ParseGain("x"), StatusIs(absl::StatusCode::kInvalidArgument, "gain=x"));
}

}  // namespace
}  // namespace debias::eval
