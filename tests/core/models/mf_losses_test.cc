#include "core/models/mf_losses.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace debias::models {
namespace {

// A tiny batch with every role, labels and weights.
std::vector<LossSample> Batch(bool dr) {
  std::vector<LossSample> b = {
      {0, 0, 1.0f, 1.7f, 0.6f, Role::kObserved},
      {1, 2, 0.0f, 0.8f, 1.9f, Role::kObserved},
      {2, 1, 1.0f, 3.0f, 1.2f, Role::kObserved},
  };
  if (dr) {
    b.push_back({0, 1, 0, 1, 1, Role::kAllPairs});
    b.push_back({2, 2, 0, 1, 1, Role::kAllPairs});
  } else {
    b.push_back({1, 1, 0, 1, 1, Role::kUnlabeled});
  }
  return b;
}

void CheckPrediction(const LossConfig& cfg, bool dr) {
  auto b = Batch(dr);
  std::vector<float> s = {0.3f, -1.2f, 0.9f, 0.1f, -0.4f}, t = {-0.5f, 0.7f, 0.2f, 1.1f, -0.9f};
  s.resize(b.size());
  t.resize(b.size());
  std::vector<float> g(b.size()), scratch(b.size());
  PredictionLoss(cfg, b, s, t, g);
  const float h = 1e-3f;
  for (size_t k = 0; k < b.size(); ++k) {
    auto sp = s, sm = s;
    sp[k] += h;
    sm[k] -= h;
    double fd = (PredictionLoss(cfg, b, sp, t, scratch) -
                 PredictionLoss(cfg, b, sm, t, scratch)) / (2 * h);
    EXPECT_NEAR(g[k], fd, 2e-4) << "sample " << k;
  }
}

TEST(MfLossesTest, WeightedGradientMatchesFiniteDifferences) {
  CheckPrediction({Objective::kWeighted, LossForm::kLog}, false);
}
TEST(MfLossesTest, SnipsGradientMatchesFiniteDifferences) {
  CheckPrediction({Objective::kSelfNormalized, LossForm::kLog}, false);
}
TEST(MfLossesTest, RelabeledLogGradientMatchesFiniteDifferences) {
  CheckPrediction({Objective::kRelabeled, LossForm::kLog}, false);
}
TEST(MfLossesTest, RelabeledSquaredGradientMatchesFiniteDifferences) {
  CheckPrediction({Objective::kRelabeled, LossForm::kSquared}, false);
}
TEST(MfLossesTest, DoublyRobustGradientMatchesFiniteDifferences) {
  CheckPrediction({Objective::kDoublyRobust, LossForm::kLog}, true);
}

TEST(MfLossesTest, ImputationGradientMatchesFiniteDifferences) {
  auto b = Batch(true);
  std::vector<float> s = {0.3f, -1.2f, 0.9f, 0.1f, -0.4f}, t = {-0.5f, 0.7f, 0.2f, 1.1f, -0.9f};
  std::vector<float> g(b.size()), scratch(b.size());
  for (ImputationFit fit : {ImputationFit::kResidual, ImputationFit::kError}) {
    ImputationLoss(b, s, t, g, fit);
    const float h = 1e-3f;
    for (size_t k = 0; k < b.size(); ++k) {
      auto tp = t, tm = t;
      tp[k] += h;
      tm[k] -= h;
      double fd = (ImputationLoss(b, s, tp, scratch, fit) -
                   ImputationLoss(b, s, tm, scratch, fit)) / (2 * h);
      EXPECT_NEAR(g[k], fd, 2e-4) << "sample " << k << " fit " << static_cast<int>(fit);
    }
  }
}

TEST(MfLossesTest, ImputationErrorFitIsTheResidualTimesTheLogitSquared) {
  // For BCE, e - ehat = (m - y) s, so the papers' (e - ehat)^2 is the
  // residual fit weighted by s^2: nothing to learn where s = 0.
  std::vector<LossSample> b = {{0, 0, 1.0f, 1.0f, 1.0f, Role::kObserved}};
  std::vector<float> t = {0.4f}, g(1);
  const double m = 1.0 / (1.0 + std::exp(-0.4));
  for (float s : {0.0f, 0.7f, -2.0f}) {
    std::vector<float> sv = {s};
    const double res = ImputationLoss(b, sv, t, g, ImputationFit::kResidual);
    EXPECT_NEAR(res, (m - 1) * (m - 1), 1e-6);
    EXPECT_NEAR(ImputationLoss(b, sv, t, g, ImputationFit::kError), res * s * s, 1e-5);
  }
  std::vector<float> zero = {0.0f};
  ImputationLoss(b, zero, t, g, ImputationFit::kError);
  EXPECT_EQ(g[0], 0.0f);
  ImputationLoss(b, zero, t, g, ImputationFit::kResidual);
  EXPECT_LT(g[0], 0.0f);  // pulls m up toward y = 1
}

TEST(MfLossesTest, RelabeledValuesMatchThePaper) {
  // One click with theta = 0.25 (c = 4) at s = 0: p = 0.5,
  // log form: -[4 log .5 + (1-4) log .5] = log 2 (the estimator is unbounded
  // below in general; here the terms cancel to one log 2).
  std::vector<LossSample> b = {{0, 0, 1.0f, 4.0f, 1, Role::kObserved}};
  std::vector<float> s = {0.0f}, g(1);
  EXPECT_NEAR(PredictionLoss({Objective::kRelabeled, LossForm::kLog}, b, s, {}, g),
              std::log(2.0), 1e-6);
  EXPECT_NEAR(g[0], 0.5 - 4.0, 1e-6);
  // Squared: 4 (.5)^2 + (1-4)(.5)^2 = 0.25.
  EXPECT_NEAR(PredictionLoss({Objective::kRelabeled, LossForm::kSquared}, b, s, {}, g),
              0.25, 1e-6);
}

TEST(MfLossesTest, SnipsIsInvariantToWeightScale) {
  auto b = Batch(false);
  b.pop_back();
  std::vector<float> s = {0.3f, -1.2f, 0.9f}, g(3);
  double a = PredictionLoss({Objective::kSelfNormalized}, b, s, {}, g);
  for (auto& x : b) x.weight *= 7;
  EXPECT_NEAR(PredictionLoss({Objective::kSelfNormalized}, b, s, {}, g), a, 1e-6);
}

}  // namespace
}  // namespace debias::models
