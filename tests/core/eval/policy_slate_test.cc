// Slate estimators (SIPS, IIPS, RIPS, Cascade-DR) and MIPS / SN-MIPS against
// hand-computed values and simulated worlds with closed-form truth.
#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "core/eval/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::eval {
namespace {

using ::debias::testing::StatusIs;

PolicyOptions Opts(PolicyEstimator e) {
  PolicyOptions o;
  o.estimator = e;
  return o;
}
PolicyResult Estimate(const std::vector<LoggedDecision>& d, PolicyEstimator e) {
  const PolicyOptions o = Opts(e);
  auto r = EstimatePolicyValue(d, o);
  EXPECT_OK(r);
  return r.ok() ? *r : PolicyResult{};
}
double Se(const PolicyResult& r) {
  return (r.normal_interval.high - r.normal_interval.low) / (2 * 1.959964);
}

TEST(PolicySlateTest, ParsesNames) {
  for (auto e : {PolicyEstimator::kMips, PolicyEstimator::kSnMips,
                 PolicyEstimator::kIips, PolicyEstimator::kSips,
                 PolicyEstimator::kRips, PolicyEstimator::kCascadeDr}) {
    EXPECT_EQ(*ParsePolicyEstimator(PolicyEstimatorName(e)), e);
  }
  EXPECT_EQ(*ParsePolicyEstimator("sn-mips"), PolicyEstimator::kSnMips);
}

// One slate of two positions: weights 2 and 0.5, prefix weights 2 and 1.
TEST(PolicySlateTest, HandComputedSlate) {
  LoggedDecision d;
  d.reward = {1, 1};
  d.logging_prob = {0.25, 0.8};
  d.target_prob = {0.5, 0.4};
  d.reward_hat = {0.6, 0.3};
  d.target_reward_hat = {0.7, 0.2};
  std::vector<LoggedDecision> v = {d};
  EXPECT_NEAR(Estimate(v, PolicyEstimator::kIips).value, 2 * 1 + 0.5 * 1, 1e-12);
  EXPECT_NEAR(Estimate(v, PolicyEstimator::kSips).value, 1.0 * 2, 1e-12);
  EXPECT_NEAR(Estimate(v, PolicyEstimator::kRips).value, 2 * 1 + 1 * 1, 1e-12);
  // k=1: 2 (1 - 0.6) + 1 * 0.7; k=2: 1 (1 - 0.3) + 2 * 0.2.
  EXPECT_NEAR(Estimate(v, PolicyEstimator::kCascadeDr).value, 0.8 + 0.7 + 0.7 + 0.4,
              1e-12);
  // r_hat = 0 makes Cascade-DR RIPS.
  v[0].reward_hat = {0, 0};
  v[0].target_reward_hat = {0, 0};
  EXPECT_NEAR(Estimate(v, PolicyEstimator::kCascadeDr).value, 3.0, 1e-12);
  v[0].target_reward_hat = {0.1};
  EXPECT_THAT(EstimatePolicyValue(v, Opts(PolicyEstimator::kCascadeDr)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "decisions[0].target_reward_hat has 1 values for 2"));
}

// A cascade world: two positions filled independently from three items by mu
// and by pi; r_1 ~ B(q(a_1)), r_2 ~ B(q(a_2) (1 - 0.5 r_1)): the second
// reward depends on the first position, so IIPS (position-wise) is biased
// and SIPS, RIPS and Cascade-DR are not.
struct CascadeWorld {
  std::array<double, 3> q = {0.7, 0.4, 0.1};
  std::array<std::array<double, 3>, 2> mu = {{{0.2, 0.3, 0.5}, {0.5, 0.3, 0.2}}};
  std::array<std::array<double, 3>, 2> pi = {{{0.6, 0.3, 0.1}, {0.1, 0.6, 0.3}}};
  double Truth() const {
    double v = 0;
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b)
        v += pi[0][a] * pi[1][b] * (q[a] + q[b] * (1 - 0.5 * q[a]));
    return v;
  }
  // E_mu[w_1 r_1 + w_2 r_2]: position 1 as pi, position 2 under mu's first item.
  double IipsLimit() const {
    double v = 0;
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b)
        v += mu[0][a] * pi[1][b] * q[b] * (1 - 0.5 * q[a]);
    for (int a = 0; a < 3; ++a) v += pi[0][a] * q[a];
    return v;
  }
  std::vector<LoggedDecision> Log(int n, uint64_t seed) const {
    std::mt19937_64 g(seed);
    std::uniform_real_distribution<double> u(0, 1);
    auto draw = [&](const std::array<double, 3>& p) {
      double x = u(g);
      for (int a = 0; a < 3; ++a) {
        if ((x -= p[a]) < 0) return a;
      }
      return 2;
    };
    std::vector<LoggedDecision> out(n);
    for (auto& d : out) {
      const int a = draw(mu[0]), b = draw(mu[1]);
      const double r1 = u(g) < q[a], r2 = u(g) < q[b] * (1 - 0.5 * r1);
      d.reward = {r1, r2};
      d.logging_prob = {mu[0][a], mu[1][b]};
      d.target_prob = {pi[0][a], pi[1][b]};
      d.reward_hat = {q[a], q[b]};  // misspecified at position 2
      double t1 = 0, t2 = 0;
      for (int c = 0; c < 3; ++c) {
        t1 += pi[0][c] * q[c];
        t2 += pi[1][c] * q[c];
      }
      d.target_reward_hat = {t1, t2};
      d.target_dm = t1 + t2;
    }
    return out;
  }
};

TEST(PolicySlateTest, CascadeWorldUnbiasedAndIipsBiased) {
  CascadeWorld w;
  auto log = w.Log(40000, 7);
  const double truth = w.Truth();
  for (auto e : {PolicyEstimator::kSips, PolicyEstimator::kRips,
                 PolicyEstimator::kCascadeDr}) {
    PolicyResult r = Estimate(log, e);
    EXPECT_LT(std::abs(r.value - truth), 4 * Se(r))
        << PolicyEstimatorName(e) << " " << r.value << " vs " << truth;
  }
  PolicyResult iips = Estimate(log, PolicyEstimator::kIips);
  EXPECT_LT(std::abs(iips.value - w.IipsLimit()), 4 * Se(iips));
  EXPECT_GT(std::abs(w.IipsLimit() - truth), 0.03);
  EXPECT_GT(std::abs(iips.value - truth), 4 * Se(iips));
  // The variance ordering the papers report: SIPS > RIPS > Cascade-DR.
  EXPECT_GT(Se(Estimate(log, PolicyEstimator::kSips)),
            Se(Estimate(log, PolicyEstimator::kRips)));
  EXPECT_GT(Se(Estimate(log, PolicyEstimator::kRips)),
            Se(Estimate(log, PolicyEstimator::kCascadeDr)));
}

TEST(PolicySlateTest, SingleActionsReduceToIpsAndDr) {
  std::vector<LoggedDecision> v(2);
  v[0].reward = {1};
  v[0].logging_prob = {0.5};
  v[0].target_prob = {1};
  v[0].reward_hat = {0.8};
  v[0].target_dm = 0.7;
  v[1] = v[0];
  v[1].reward = {0};
  v[1].target_prob = {0.25};
  for (auto e : {PolicyEstimator::kIips, PolicyEstimator::kSips,
                 PolicyEstimator::kRips}) {
    EXPECT_NEAR(Estimate(v, e).value, Estimate(v, PolicyEstimator::kIps).value, 1e-12);
  }
  EXPECT_NEAR(Estimate(v, PolicyEstimator::kCascadeDr).value,
              Estimate(v, PolicyEstimator::kDr).value, 1e-12);
}

// MIPS: weights averaged over (context, position, embedding) cells.
TEST(PolicySlateTest, MipsHandComputed) {
  auto one = [](double r, double mu, double pi, uint64_t e) {
    LoggedDecision d;
    d.reward = {r};
    d.logging_prob = {mu};
    d.target_prob = {pi};
    d.embedding = {e};
    return d;
  };
  // Cell e=1: weights 2 and 0 -> 1 each; cell e=2: weight 0.5.
  std::vector<LoggedDecision> v = {one(1, 0.25, 0.5, 1), one(0, 0.5, 0, 1),
                                   one(1, 0.5, 0.25, 2)};
  EXPECT_NEAR(Estimate(v, PolicyEstimator::kMips).value, (1 + 0 + 0.5) / 3, 1e-12);
  EXPECT_NEAR(Estimate(v, PolicyEstimator::kSnMips).value, 1.5 / 2.5, 1e-12);
  EXPECT_EQ(Estimate(v, PolicyEstimator::kMips).diagnostics["cells"], 2);
  v[1].embedding.clear();
  EXPECT_THAT(EstimatePolicyValue(v, Opts(PolicyEstimator::kMips)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "decisions[1].embedding has 0 values"));
}

// Many actions in few categories, reward through the category only:
// MIPS and SN-MIPS are unbiased; SN-MIPS has a fraction of IPS's spread.
TEST(PolicySlateTest, MipsOnLargeActionSpace) {
  constexpr int kX = 4, kA = 200, kE = 5;
  std::mt19937_64 g(3);
  std::normal_distribution<double> z(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::vector<double>> mu(kX), pi(kX), q(kX);
  for (int x = 0; x < kX; ++x) {
    double zm = 0, zp = 0;
    for (int a = 0; a < kA; ++a) {
      mu[x].push_back(std::exp(0.5 * z(g)));
      pi[x].push_back(std::exp(1.5 * z(g)));
      zm += mu[x].back();
      zp += pi[x].back();
    }
    for (int a = 0; a < kA; ++a) {
      mu[x][a] /= zm;
      pi[x][a] /= zp;
    }
    for (int e = 0; e < kE; ++e) q[x].push_back(u(g));
  }
  double truth = 0;
  for (int x = 0; x < kX; ++x)
    for (int a = 0; a < kA; ++a) truth += pi[x][a] * q[x][a % kE] / kX;
  std::vector<LoggedDecision> log(20000);
  for (size_t i = 0; i < log.size(); ++i) {
    const int x = static_cast<int>(i % kX);
    std::discrete_distribution<int> pick(mu[x].begin(), mu[x].end());
    const int a = pick(g);
    LoggedDecision& d = log[i];
    d.reward = {u(g) < q[x][a % kE] ? 1.0 : 0.0};
    d.logging_prob = {mu[x][a]};
    d.target_prob = {pi[x][a]};
    d.context = x;
    d.embedding = {static_cast<uint64_t>(a % kE)};
  }
  PolicyResult ips = Estimate(log, PolicyEstimator::kIps);
  for (auto e : {PolicyEstimator::kMips, PolicyEstimator::kSnMips}) {
    PolicyResult r = Estimate(log, e);
    EXPECT_LT(std::abs(r.value - truth), 4 * Se(r)) << PolicyEstimatorName(e);
  }
  // With weights estimated on the same log, MIPS keeps the weight-mass
  // noise of IPS (its intervals include it); the self-normalised form
  // removes most of it.
  EXPECT_LT(Se(Estimate(log, PolicyEstimator::kSnMips)), 0.5 * Se(ips));
}

}  // namespace
}  // namespace debias::eval
