#include "core/eval/ltr_metrics.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::eval {
namespace {

using ::debias::testing::StatusIs;

TEST(LtrNdcgTest, ExponentialGainsLog2Discount) {
  // Ranked order by score: labels 1, 3, 0 (ideal 3, 1, 0).
  const std::vector<float> scores = {0.9f, 0.5f, 0.1f};
  const std::vector<float> labels = {1, 3, 0};
  const double dcg = 1.0 / std::log2(2.0) + 7.0 / std::log2(3.0);
  const double idcg = 7.0 / std::log2(2.0) + 1.0 / std::log2(3.0);
  EXPECT_NEAR(LtrNdcgAtK(scores, labels, 3), dcg / idcg, 1e-12);
  EXPECT_NEAR(LtrNdcgAtK(scores, labels, 1), 1.0 / 7.0, 1e-12);
  // A perfect order is 1, a list without relevance 0.
  EXPECT_NEAR(LtrNdcgAtK(std::vector<float>{3, 2, 1}, std::vector<float>{4, 2, 0}, 10), 1.0, 1e-12);
  EXPECT_EQ(LtrNdcgAtK(scores, std::vector<float>{0, 0, 0}, 10), 0.0);
}

TEST(LtrNdcgTest, TiesKeepListOrder) {
  const std::vector<float> scores = {1, 1};
  EXPECT_NEAR(LtrNdcgAtK(scores, std::vector<float>{2, 0}, 1), 1.0, 1e-12);
  EXPECT_NEAR(LtrNdcgAtK(scores, std::vector<float>{0, 2}, 1), 0.0, 1e-12);
}

TEST(LtrErrTest, CascadeOfSatisfactionProbabilities) {
  const std::vector<float> scores = {0.9f, 0.5f, 0.1f};
  const std::vector<float> labels = {4, 2, 1};
  const double R1 = 15.0 / 16, R2 = 3.0 / 16, R3 = 1.0 / 16;
  const double expected = R1 + (1 - R1) * R2 / 2 + (1 - R1) * (1 - R2) * R3 / 3;
  EXPECT_NEAR(LtrErrAtK(scores, labels, 10, 4), expected, 1e-12);
  EXPECT_NEAR(LtrErrAtK(scores, labels, 1, 4), R1, 1e-12);
}

TEST(LtrAccumulatorTest, AveragesListsIncludingEmptyOnes) {
  LtrAccumulator acc({{1}, {10}, 4});
  acc.AddList(std::vector<float>{1, 0}, std::vector<float>{2, 0});
  acc.AddList(std::vector<float>{1, 0}, std::vector<float>{0, 0});
  const auto r = acc.Result();
  EXPECT_NEAR(r.at("ndcg@1"), 0.5, 1e-12);
  EXPECT_EQ(r.at("lists"), 2.0);
  EXPECT_NEAR(r.at("err@10"), 0.5 * 3.0 / 16, 1e-12);
}

TEST(LtrMetricOptionsTest, RejectsBadValues) {
  EXPECT_THAT(ValidateLtrMetricOptions({{0}, {10}, 4}),
              StatusIs(absl::StatusCode::kInvalidArgument, "k=0"));
  EXPECT_THAT(ValidateLtrMetricOptions({{1}, {10}, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_label=0"));
}

}  // namespace
}  // namespace debias::eval
