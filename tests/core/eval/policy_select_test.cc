#include "core/eval/policy_select.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::eval {
namespace {

using ::debias::testing::StatusIs;

TEST(PolicySelectTest, SlopeKeepsTheLastIntersectingInterval) {
  // [0.8, 1.2], [0.9, 1.1], [1.0, 1.1] intersect; [1.15, 1.25] does not.
  std::vector<SlopeCandidate> c = {{1.0, 0.1}, {1.0, 0.05}, {1.05, 0.025},
                                   {1.2, 0.025}};
  EXPECT_EQ(SlopeSelect(c), 2u);
  c.resize(3);
  EXPECT_EQ(SlopeSelect(c), 2u);
  EXPECT_EQ(SlopeSelect({}), 0u);
  // The very first disagreement stops the search.
  EXPECT_EQ(SlopeSelect(std::vector<SlopeCandidate>{{0, 0.01}, {1, 0.01}, {0, 0.01}}), 0u);
}

// Single actions with heavy weights; the reward model is exact, so every
// switch-dr threshold is unbiased and SLOPE may take the smallest variance;
// with a reward model off by 0.3, DM's bias is resolved and SLOPE keeps a
// large threshold.
std::vector<LoggedDecision> Log(double rhat_offset) {
  std::mt19937_64 g(11);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<LoggedDecision> log(5000);
  for (auto& d : log) {
    const double mu = u(g) < 0.1 ? 0.02 : 0.5;
    const double pi = mu < 0.1 ? 0.5 : 0.3;
    const double q = mu < 0.1 ? 0.9 : 0.2;
    d.reward = {u(g) < q ? 1.0 : 0.0};
    d.logging_prob = {mu};
    d.target_prob = {pi};
    d.reward_hat = {q + rhat_offset};
    d.target_dm = 0.5 * 0.9 + 0.3 * 0.2 + 0.2 * 0.2 + rhat_offset;
  }
  return log;
}

TEST(PolicySelectTest, SlopeTuneSwitchDr) {
  PolicyOptions o;
  o.estimator = PolicyEstimator::kSwitchDr;
  auto exact = SlopeTune(Log(0.0), o);
  ASSERT_OK(exact);
  EXPECT_EQ(exact->knob, "tau");
  EXPECT_TRUE(std::isinf(exact->grid.front()));
  EXPECT_EQ(exact->chosen, exact->grid.size() - 1);
  auto off = SlopeTune(Log(0.3), o);
  ASSERT_OK(off);
  EXPECT_LT(off->chosen, off->grid.size() - 1);
  EXPECT_EQ(off->options.tau, off->grid[off->chosen]);
  o.estimator = PolicyEstimator::kSnips;
  EXPECT_THAT(SlopeTune(Log(0), o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "slope: estimator snips has no knob"));
}

TEST(PolicySelectTest, TrustReportClosedForm) {
  const double z = 1.959963984540054;
  auto res = [&](double v, double se) {
    PolicyResult r;
    r.value = v;
    r.normal_interval = {v - z * se, v + z * se};
    return r;
  };
  std::vector<std::string> names = {"dm", "ipw", "dr"};
  std::vector<PolicyEstimator> est = {PolicyEstimator::kDm, PolicyEstimator::kIps,
                                      PolicyEstimator::kDr};
  std::vector<PolicyResult> r = {res(0.8, 0.001), res(0.6, 0.05), res(0.62, 0.02)};
  auto j = TrustReport(names, est, r, 0.95);
  EXPECT_EQ(j["reference"], "ipw");
  EXPECT_NEAR(j["estimators"]["dm"]["squared_bias_estimate"].get<double>(),
              0.04 - 0.0025, 1e-9);
  EXPECT_NEAR(j["estimators"]["dr"]["squared_bias_estimate"].get<double>(), 0.0,
              1e-12);  // 0.02^2 < 0.05^2
  EXPECT_NEAR(j["estimators"]["dr"]["mse_estimate"].get<double>(), 0.0004, 1e-9);
  EXPECT_EQ(j["recommended"], "dr");
  // A reference whose weights are degenerate (ESS < 10) is passed over.
  r[1].diagnostics["weights"]["ess"] = 2.0;
  EXPECT_EQ(TrustReport(names, est, r, 0.95)["reference"], "dr");
  // Among references, the largest effective sample size wins (a
  // heavy-tailed SIPS loses to RIPS).
  std::vector<std::string> slate_names = {"sips", "rips"};
  std::vector<PolicyEstimator> slate_est = {PolicyEstimator::kSips, PolicyEstimator::kRips};
  std::vector<PolicyResult> sr = {res(0.6, 0.2), res(1.4, 0.3)};
  sr[0].diagnostics["weights"]["ess"] = 12.0;
  sr[1].diagnostics["weights"]["ess"] = 60.0;
  EXPECT_EQ(TrustReport(slate_names, slate_est, sr, 0.95)["reference"], "rips");
  auto none = TrustReport(std::vector<std::string>{"dm"},
                          std::vector<PolicyEstimator>{PolicyEstimator::kDm},
                          std::vector<PolicyResult>{res(0.8, 0.01)}, 0.95);
  EXPECT_TRUE(none["reference"].is_null());
  EXPECT_TRUE(none["recommended"].is_null());
}

}  // namespace
}  // namespace debias::eval

namespace debias::eval {
namespace {

TEST(PolicySelectTest, EvaluatePoliciesTunesOnlyKnobbedEstimators) {
  auto log = Log(0.3);
  std::vector<std::string> names = {"ipw", "switch-dr", "snips"};
  std::vector<PolicyEstimator> est = {PolicyEstimator::kIps, PolicyEstimator::kSwitchDr,
                                      PolicyEstimator::kSnips};
  PolicyOptions o;
  auto plain = EvaluatePolicies(log, names, est, o, /*slope=*/false);
  ASSERT_OK(plain);
  EXPECT_TRUE(plain->slope_report.empty());
  EXPECT_EQ(plain->trust["reference"], "ipw");
  auto tuned = EvaluatePolicies(log, names, est, o, /*slope=*/true);
  ASSERT_OK(tuned);
  ASSERT_TRUE(tuned->slope_report.contains("switch-dr"));
  EXPECT_EQ(tuned->slope_report["switch-dr"]["knob"], "tau");
  EXPECT_EQ(tuned->slope_report["ipw"]["knob"], "clip");
  EXPECT_FALSE(tuned->slope_report.contains("snips"));
  EXPECT_DOUBLE_EQ(tuned->results[1].value,
                   tuned->slope_report["switch-dr"]["chosen_value"].get<double>());
  EXPECT_DOUBLE_EQ(tuned->results[2].value, plain->results[2].value);
}

}  // namespace
}  // namespace debias::eval
