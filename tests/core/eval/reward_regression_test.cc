#include "core/eval/reward_regression.h"

#include <cmath>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::eval {
namespace {

using ::debias::testing::StatusIs;

RewardRegressionOptions Opts(int folds, double m = 5, uint64_t seed = 0) {
  RewardRegressionOptions o;
  o.folds = folds;
  o.prior_strength = m;
  o.seed = seed;
  return o;
}

TEST(RewardRegressionTest, InSampleShrinkageClosedForm) {
  // Item 7: rewards 1, 1 (context 0) and 0 (context 1); item 8: 0.
  std::vector<RewardObservation> obs = {
      {0, 0, 7, 1}, {1, 0, 7, 1}, {2, 1, 7, 0}, {3, 1, 8, 0}};
  auto m = CrossFitRewardModel::Fit(obs, 4, Opts(1, 2));
  ASSERT_OK(m);
  const double g = 0.5;
  const double item7 = (2 + 2 * g) / (3 + 2);       // 0.6
  const double cell07 = (2 + 2 * item7) / (2 + 2);  // 0.8
  EXPECT_NEAR(m->Predict(0, 0, 7), cell07, 1e-12);
  EXPECT_NEAR(m->Predict(0, 5, 7), item7, 1e-12);  // unseen context
  EXPECT_NEAR(m->Predict(0, 5, 99), g, 1e-12);     // unseen item
}

TEST(RewardRegressionTest, CrossFitNeverSeesItsOwnFold) {
  std::vector<RewardObservation> obs;
  for (uint64_t i = 0; i < 50; ++i) obs.push_back({i, i % 3, i % 4, (i % 5) / 4.0});
  auto a = CrossFitRewardModel::Fit(obs, 50, Opts(5, 5, 1));
  ASSERT_OK(a);
  // Changing decision 17's reward changes no prediction made for its fold.
  obs[17].reward = 100;
  auto b = CrossFitRewardModel::Fit(obs, 50, Opts(5, 5, 1));
  ASSERT_OK(b);
  const int f = a->FoldOf(17);
  int other = (f + 1) % 5;
  for (uint64_t x = 0; x < 3; ++x) {
    for (uint64_t item = 0; item < 4; ++item) {
      EXPECT_DOUBLE_EQ(a->Predict(f, x, item), b->Predict(f, x, item));
    }
  }
  EXPECT_NE(a->Predict(other, 17 % 3, 17 % 4), b->Predict(other, 17 % 3, 17 % 4));
  // Folds are balanced: 10 decisions each.
  std::vector<int> size(5, 0);
  for (uint64_t i = 0; i < 50; ++i) ++size[a->FoldOf(i)];
  for (int s : size) EXPECT_EQ(s, 10);
}

TEST(RewardRegressionTest, Refusals) {
  std::vector<RewardObservation> obs = {{0, 0, 0, 1}};
  EXPECT_THAT(CrossFitRewardModel::Fit(obs, 1, Opts(0)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "crossfit_folds=0: folds must be in [1, 20]"));
  EXPECT_THAT(CrossFitRewardModel::Fit(obs, 1, Opts(2)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "1 decisions cannot be cross-fitted in 2 folds"));
  obs[0].decision = 3;
  EXPECT_THAT(CrossFitRewardModel::Fit(obs, 1, Opts(1)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "observations[0].decision=3: must be < 1"));
}

}  // namespace
}  // namespace debias::eval

namespace debias::eval {
namespace {

// DR with a cross-fitted reward model stays unbiased on a simulated bandit,
// and the filled fields follow the model's predictions.
TEST(RewardRegressionTest, FillCrossFitRewardsFeedsDr) {
  constexpr int kX = 10, kA = 5;
  std::mt19937_64 g(5);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::vector<double>> q(kX, std::vector<double>(kA));
  for (auto& row : q)
    for (double& v : row) v = u(g);
  // Logging uniform; target: action x % kA with prob 0.8, else uniform.
  TargetDistributions t;
  double truth = 0;
  for (int x = 0; x < kX; ++x) {
    std::vector<std::pair<uint64_t, double>> row;
    for (int a = 0; a < kA; ++a) {
      const double p = (a == x % kA ? 0.8 : 0.0) + 0.2 / kA;
      row.push_back({static_cast<uint64_t>(a), p});
      truth += p * q[x][a] / kX;
    }
    t.table.push_back(row);
  }
  std::vector<LoggedDecision> log(20000);
  for (size_t i = 0; i < log.size(); ++i) {
    const int x = static_cast<int>(i % kX);
    const int a = static_cast<int>(u(g) * kA);
    LoggedDecision& d = log[i];
    d.context = x;
    d.action = {static_cast<uint64_t>(a)};
    d.reward = {u(g) < q[x][a] ? 1.0 : 0.0};
    d.logging_prob = {1.0 / kA};
    d.target_prob = {t.table[x][a].second};
    t.of.push_back({static_cast<uint32_t>(x)});
  }
  RewardRegressionOptions o;
  auto diag = FillCrossFitRewards(log, t, o);
  ASSERT_OK(diag);
  EXPECT_EQ((*diag)["folds"], 5);
  PolicyOptions po;
  po.estimator = PolicyEstimator::kDr;
  auto dr = EstimatePolicyValue(log, po);
  ASSERT_OK(dr);
  const double se = (dr->normal_interval.high - dr->normal_interval.low) / 3.92;
  EXPECT_LT(std::abs(dr->value - truth), 4 * se);
  po.estimator = PolicyEstimator::kDm;  // the regressor is close to the truth here
  auto dm = EstimatePolicyValue(log, po);
  ASSERT_OK(dm);
  EXPECT_NEAR(dm->value, truth, 0.02);
  t.of.pop_back();
  EXPECT_THAT(FillCrossFitRewards(log, t, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "targets: 19999 rows"));
}

}  // namespace
}  // namespace debias::eval
