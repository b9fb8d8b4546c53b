#include "core/eval/policy.h"

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

LoggedDecision One(double r, double mu, double pi, double rhat, double dm) {
  LoggedDecision d;
  d.reward = {r};
  d.logging_prob = {mu};
  d.target_prob = {pi};
  d.reward_hat = {rhat};
  d.target_dm = dm;
  return d;
}

// Weights 2, 2, 0.
std::vector<LoggedDecision> HandCase() {
  return {One(1, 0.5, 1.0, 0.8, 0.7), One(0, 0.25, 0.5, 0.1, 0.3),
          One(1, 1.0, 0.0, 0.5, 0.4)};
}

double Value(const std::vector<LoggedDecision>& d, PolicyOptions o) {
  auto r = EstimatePolicyValue(d, o);
  EXPECT_OK(r);
  return r.ok() ? r->value : NAN;
}

TEST(PolicyTest, ParsesEstimatorNames) {
  EXPECT_EQ(*ParsePolicyEstimator("dm"), PolicyEstimator::kDm);
  EXPECT_EQ(*ParsePolicyEstimator("switch-dr"), PolicyEstimator::kSwitchDr);
  EXPECT_EQ(*ParsePolicyEstimator("dr-os"), PolicyEstimator::kDrOs);
  EXPECT_EQ(PolicyEstimatorName(PolicyEstimator::kSnips), "snips");
  EXPECT_EQ(*ParsePolicyEstimator("ipw"), PolicyEstimator::kIps);
  EXPECT_EQ(*ParsePolicyEstimator("snipw"), PolicyEstimator::kSnips);
  for (auto e : {PolicyEstimator::kSndr, PolicyEstimator::kSubGaussianIps,
                 PolicyEstimator::kSubGaussianDr,
                 PolicyEstimator::kBalancedIps}) {
    EXPECT_EQ(*ParsePolicyEstimator(PolicyEstimatorName(e)), e);
  }
  EXPECT_THAT(ParsePolicyEstimator("doubly-robust"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "estimator must be one of dm, ips, snips, dr, "
                       "switch-dr, dr-os, sndr, subgaussian-ipw, "
                       "subgaussian-dr, balanced-ipw"));
}

TEST(PolicyTest, HandComputedSingleActions) {
  auto d = HandCase();
  PolicyOptions o;
  o.estimator = PolicyEstimator::kDm;
  EXPECT_NEAR(Value(d, o), 1.4 / 3, 1e-12);
  o.estimator = PolicyEstimator::kIps;
  EXPECT_NEAR(Value(d, o), 2.0 / 3, 1e-12);
  o.estimator = PolicyEstimator::kSnips;
  EXPECT_NEAR(Value(d, o), 2.0 / 4.0, 1e-12);
  o.estimator = PolicyEstimator::kDr;  // 1.4 + 2 * 0.2 + 2 * (-0.1)
  EXPECT_NEAR(Value(d, o), 1.6 / 3, 1e-12);
  o.estimator = PolicyEstimator::kSwitchDr;
  o.tau = 1.5;  // both non-zero weights exceed tau: DM
  EXPECT_NEAR(Value(d, o), 1.4 / 3, 1e-12);
  o.tau = 2.0;  // w <= tau: DR
  EXPECT_NEAR(Value(d, o), 1.6 / 3, 1e-12);
  o.estimator = PolicyEstimator::kDrOs;
  o.lambda = 4.0;  // w' = 4 * 2 / (4 + 4) = 1
  EXPECT_NEAR(Value(d, o), 1.5 / 3, 1e-12);
  o.lambda = INFINITY;
  EXPECT_NEAR(Value(d, o), 1.6 / 3, 1e-12);
  o.estimator = PolicyEstimator::kIps;
  o.clip = 1.0;  // weights capped at 1
  EXPECT_NEAR(Value(d, o), 1.0 / 3, 1e-12);
}

// Residuals r - r_hat: 0.2, -0.1, 0.5; weights 2, 2, 0; mean dm = 1.4 / 3.
TEST(PolicyTest, HandComputedSndrAndSubGaussian) {
  auto d = HandCase();
  PolicyOptions o;
  o.estimator = PolicyEstimator::kSndr;  // dm + mean(w res) / mean(w)
  EXPECT_NEAR(Value(d, o), 1.4 / 3 + (0.2 / 3) / (4.0 / 3), 1e-12);
  o.estimator = PolicyEstimator::kSubGaussianIps;
  o.subgaussian_lambda = 0.5;  // w' = 2 / (0.5 + 0.5 * 2) = 4 / 3
  EXPECT_NEAR(Value(d, o), (4.0 / 3) / 3, 1e-12);
  o.estimator = PolicyEstimator::kSubGaussianDr;
  EXPECT_NEAR(Value(d, o), (1.4 + 4.0 / 3 * 0.2 - 4.0 / 3 * 0.1) / 3, 1e-12);
  o.subgaussian_lambda = 1.0;  // w' = 1 where w > 0, 0 where w = 0
  EXPECT_NEAR(Value(d, o), (1.4 + 0.2 - 0.1) / 3, 1e-12);
  o.subgaussian_lambda = 0.0;  // plain DR / IPS
  EXPECT_NEAR(Value(d, o), 1.6 / 3, 1e-12);
  o.estimator = PolicyEstimator::kSubGaussianIps;
  EXPECT_NEAR(Value(d, o), 2.0 / 3, 1e-12);
  auto r = EstimatePolicyValue(d, o);
  ASSERT_OK(r);
  EXPECT_EQ(r->diagnostics["subgaussian_lambda"], 0.0);
}

// One context, 4 decisions logging items 7, 7, 8, 9; pi(7) = pi(8) = 0.5,
// pi(9) = 0. The saturated classifier's odds: cell 7: 4 * 0.5 / 2 = 1,
// cell 8: 4 * 0.5 / 1 = 2, cell 9: 0. Logging probabilities are not used.
TEST(PolicyTest, HandComputedBalancedIpw) {
  std::vector<LoggedDecision> d;
  const uint64_t items[4] = {7, 7, 8, 9};
  const double pis[4] = {0.5, 0.5, 0.5, 0.0}, rewards[4] = {1, 0, 1, 1};
  for (int i = 0; i < 4; ++i) {
    LoggedDecision x = One(rewards[i], 0.9, pis[i], 0, 0);
    x.context = 3;
    x.action = {items[i]};
    d.push_back(x);
  }
  // A second context whose single decision has weight 1 * 1 / 1.
  LoggedDecision y = One(0.5, 0.2, 1.0, 0, 0);
  y.context = 4;
  y.action = {7};
  d.push_back(y);
  PolicyOptions o;
  o.estimator = PolicyEstimator::kBalancedIps;
  EXPECT_NEAR(Value(d, o), (1 + 0 + 2 + 0 + 0.5) / 5, 1e-12);
  auto r = EstimatePolicyValue(d, o);
  ASSERT_OK(r);
  EXPECT_EQ(r->diagnostics["cells"], 4);
  o.clip = 1.5;  // balanced-ipw clips, as OBP's BIPW
  EXPECT_NEAR(Value(d, o), (1 + 0 + 1.5 + 0 + 0.5) / 5, 1e-12);
  d[0].action.clear();
  EXPECT_THAT(EstimatePolicyValue(d, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "decisions[0].action has 0 values"));
}

// As OBP: only ips, dr and balanced-ipw clip; the diagnostics say so.
TEST(PolicyTest, ClipTouchesOnlyIpsDrAndBalanced) {
  auto d = HandCase();
  PolicyOptions o;
  o.clip = 1.0;  // the weights 2, 2 become 1, 1 where clipping applies
  o.estimator = PolicyEstimator::kDr;
  EXPECT_NEAR(Value(d, o), (1.4 + 0.2 - 0.1) / 3, 1e-12);
  auto r = EstimatePolicyValue(d, o);
  ASSERT_OK(r);
  EXPECT_EQ(r->diagnostics["clip_applied"], true);
  EXPECT_EQ(r->diagnostics["weights"]["clipped"], 2);
  o.estimator = PolicyEstimator::kSnips;  // unchanged by clip
  EXPECT_NEAR(Value(d, o), 2.0 / 4.0, 1e-12);
  r = EstimatePolicyValue(d, o);
  ASSERT_OK(r);
  EXPECT_EQ(r->diagnostics["clip_applied"], false);
  EXPECT_EQ(r->diagnostics["weights"]["clipped"], 0);
  EXPECT_THAT(r->diagnostics["warnings"].dump(),
              ::testing::HasSubstr("clip=1 not applied: snips does not clip"));
  // A clip below switch-DR's tau no longer stops switching: the raw weights
  // 2 exceed tau = 1.5, so switch-DR is DM.
  o.estimator = PolicyEstimator::kSwitchDr;
  o.tau = 1.5;
  EXPECT_NEAR(Value(d, o), 1.4 / 3, 1e-12);
  o.estimator = PolicyEstimator::kDrOs;  // shrinks the raw weight 2
  o.lambda = 4.0;
  EXPECT_NEAR(Value(d, o), 1.5 / 3, 1e-12);
}

// OBP's meanings: tau = 0 and lambda = 0 give DM; infinity gives DR.
TEST(PolicyTest, ZeroTauAndLambdaMeanDm) {
  auto d = HandCase();
  PolicyOptions o;
  o.estimator = PolicyEstimator::kSwitchDr;
  o.tau = 0;
  EXPECT_NEAR(Value(d, o), 1.4 / 3, 1e-12);
  o.tau = INFINITY;
  EXPECT_NEAR(Value(d, o), 1.6 / 3, 1e-12);
  o.estimator = PolicyEstimator::kDrOs;
  o.lambda = 0;
  EXPECT_NEAR(Value(d, o), 1.4 / 3, 1e-12);
  auto r = EstimatePolicyValue(d, o);
  ASSERT_OK(r);  // DM by choice: no "every weight is 0" warning
  EXPECT_THAT(r->diagnostics["warnings"].dump(),
              ::testing::Not(::testing::HasSubstr("every weight is 0")));
  o.lambda = INFINITY;
  EXPECT_NEAR(Value(d, o), 1.6 / 3, 1e-12);
  PolicyOptions def;  // the defaults: switch-DR without switching
  def.estimator = PolicyEstimator::kSwitchDr;
  EXPECT_NEAR(Value(d, def), 1.6 / 3, 1e-12);
}

TEST(PolicyTest, SeveralEstimatorsInOneCall) {
  auto d = HandCase();
  PolicyOptions o;
  o.bootstrap = 100;
  o.seed = 4;
  const std::vector<PolicyEstimator> es = {
      PolicyEstimator::kIps, PolicyEstimator::kSnips, PolicyEstimator::kDr};
  auto rs = EstimatePolicyValues(d, es, o);
  ASSERT_OK(rs);
  ASSERT_EQ(rs->size(), 3u);
  for (size_t i = 0; i < es.size(); ++i) {
    o.estimator = es[i];
    auto one = EstimatePolicyValue(d, o);
    ASSERT_OK(one);
    EXPECT_EQ((*rs)[i].value, one->value);
    EXPECT_EQ((*rs)[i].interval->low, one->interval->low);
    EXPECT_EQ((*rs)[i].diagnostics["estimator"], PolicyEstimatorName(es[i]));
  }
  EXPECT_THAT(EstimatePolicyValues(d, {}, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "estimators"));
}

TEST(PolicyTest, HandComputedSlates) {
  LoggedDecision a;  // two positions
  a.reward = {1, 0};
  a.logging_prob = {0.5, 0.5};
  a.target_prob = {1.0, 0.25};
  LoggedDecision b;  // one position
  b.reward = {1};
  b.logging_prob = {0.25};
  b.target_prob = {0.5};
  std::vector<LoggedDecision> d = {a, b};
  PolicyOptions o;
  o.estimator = PolicyEstimator::kIps;
  // sum_k w_k r_k: a: 2 * 1 + 0.5 * 0; b: 2 * 1.
  EXPECT_NEAR(Value(d, o), 2.0, 1e-12);
  o.estimator = PolicyEstimator::kSnips;
  // position 1: (2 + 2) / (2 + 2) = 1; position 2: (1/2) * 0 / 0.5 = 0.
  EXPECT_NEAR(Value(d, o), 1.0, 1e-12);
  auto r = EstimatePolicyValue(d, o);
  ASSERT_OK(r);
  EXPECT_EQ(r->diagnostics["positions"], 3);
  EXPECT_NEAR(r->diagnostics["weights"]["max"].get<double>(), 2.0, 1e-12);
}

// A contextual bandit with known mean rewards.
struct Bandit {
  int C = 20, A = 5;
  std::vector<double> q, mu, pi, qhat;  // C x A
  double truth = 0;
};

Bandit MakeBandit(uint64_t seed, double model_noise) {
  Bandit b;
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, model_noise);
  auto softmax = [&](std::vector<double>& row) {
    double m = *std::max_element(row.begin(), row.end()), s = 0;
    for (double& x : row) s += (x = std::exp(x - m));
    for (double& x : row) x /= s;
  };
  for (int c = 0; c < b.C; ++c) {
    std::vector<double> q(b.A), lm(b.A), lp(b.A);
    for (int a = 0; a < b.A; ++a) {
      q[a] = unif(g);
      lm[a] = 1.5 * unif(g);  // logging: mostly random
      lp[a] = 4.0 * q[a];     // target: prefers good actions
    }
    softmax(lm);
    softmax(lp);
    for (int a = 0; a < b.A; ++a) {
      b.q.push_back(q[a]);
      b.mu.push_back(lm[a]);
      b.pi.push_back(lp[a]);
      b.qhat.push_back(std::clamp(q[a] + noise(g), 0.0, 1.0));
      b.truth += lp[a] * q[a] / b.C;
    }
  }
  return b;
}

std::vector<LoggedDecision> Log(const Bandit& b, int n, std::mt19937_64& g) {
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::uniform_int_distribution<int> ctx(0, b.C - 1);
  std::vector<LoggedDecision> out(n);
  for (int t = 0; t < n; ++t) {
    int c = ctx(g);
    double x = unif(g), acc = 0;
    int a = b.A - 1;
    for (int j = 0; j < b.A; ++j) {
      acc += b.mu[c * b.A + j];
      if (x < acc) {
        a = j;
        break;
      }
    }
    double dm = 0;
    for (int j = 0; j < b.A; ++j) dm += b.pi[c * b.A + j] * b.qhat[c * b.A + j];
    out[t] = One(unif(g) < b.q[c * b.A + a] ? 1.0 : 0.0, b.mu[c * b.A + a],
                 b.pi[c * b.A + a], b.qhat[c * b.A + a], dm);
    out[t].context = c;
    out[t].action = {static_cast<uint64_t>(a)};
  }
  return out;
}

struct MeanSd {
  double mean, sd;
};
MeanSd Summ(const std::vector<double>& x) {
  double m = std::accumulate(x.begin(), x.end(), 0.0) / x.size(), v = 0;
  for (double y : x) v += (y - m) * (y - m);
  return {m, std::sqrt(v / (x.size() - 1))};
}

TEST(PolicyTest, IpsAndDrUnbiasedDrHasLowerVariance) {
  Bandit b = MakeBandit(3, 0.05);
  std::mt19937_64 g(17);
  const int reps = 100;
  std::vector<double> ips, dr, snips, sw, os;
  PolicyOptions o;
  for (int rep = 0; rep < reps; ++rep) {
    auto d = Log(b, 1000, g);
    o.estimator = PolicyEstimator::kIps;
    ips.push_back(Value(d, o));
    o.estimator = PolicyEstimator::kDr;
    dr.push_back(Value(d, o));
    o.estimator = PolicyEstimator::kSnips;
    snips.push_back(Value(d, o));
    o.estimator = PolicyEstimator::kSwitchDr;
    o.tau = 1e9;
    sw.push_back(Value(d, o));
    o.estimator = PolicyEstimator::kDrOs;
    o.lambda = 10.0;
    os.push_back(Value(d, o));
  }
  MeanSd i = Summ(ips), r = Summ(dr), s = Summ(snips), w = Summ(sw),
         z = Summ(os);
  const double se = std::sqrt(static_cast<double>(reps));
  EXPECT_NEAR(i.mean, b.truth, 4 * i.sd / se);
  EXPECT_NEAR(r.mean, b.truth, 4 * r.sd / se);
  EXPECT_NEAR(s.mean, b.truth, 4 * s.sd / se + 0.005);
  EXPECT_NEAR(w.mean, r.mean, 1e-12);  // tau = inf: switch-DR = DR
  EXPECT_LT(r.sd, 0.8 * i.sd);
  EXPECT_LE(z.sd, r.sd * 1.05);  // shrinkage never adds much variance
}

// The new estimators on the simulated bandit: SNDR is unbiased within
// noise; the sub-Gaussian estimators have the expectation their closed form
// E_mu[w_g r] (resp. E[dm + w_g (r - r_hat)]) gives, i.e. a known shrinkage
// bias, and less spread than IPS; balanced IPW (weights estimated from 50
// decisions per context, logging probabilities unused) is within a few
// percent of the truth with less spread than IPS.
TEST(PolicyTest, NewEstimatorsOnASimulatedBandit) {
  Bandit b = MakeBandit(3, 0.05);
  std::mt19937_64 g(29);
  const int reps = 100;
  std::vector<double> ips, sndr, sgi, sgd, bal;
  PolicyOptions o;
  o.subgaussian_lambda = 0.05;
  for (int rep = 0; rep < reps; ++rep) {
    auto d = Log(b, 1000, g);
    o.estimator = PolicyEstimator::kIps;
    ips.push_back(Value(d, o));
    o.estimator = PolicyEstimator::kSndr;
    sndr.push_back(Value(d, o));
    o.estimator = PolicyEstimator::kSubGaussianIps;
    sgi.push_back(Value(d, o));
    o.estimator = PolicyEstimator::kSubGaussianDr;
    sgd.push_back(Value(d, o));
    o.estimator = PolicyEstimator::kBalancedIps;
    bal.push_back(Value(d, o));
  }
  const double se = std::sqrt(static_cast<double>(reps));
  MeanSd i = Summ(ips), s = Summ(sndr), gi = Summ(sgi), gd = Summ(sgd),
         bi = Summ(bal);
  // Closed-form expectations of the sub-Gaussian estimators.
  double e_sgi = 0, e_sgd = 0;
  const double lam = o.subgaussian_lambda;
  for (int c = 0; c < b.C; ++c) {
    double dm = 0;
    for (int a = 0; a < b.A; ++a) dm += b.pi[c * b.A + a] * b.qhat[c * b.A + a];
    e_sgd += dm / b.C;
    for (int a = 0; a < b.A; ++a) {
      const int j = c * b.A + a;
      const double w = b.pi[j] / b.mu[j], wg = w / ((1 - lam) + lam * w);
      e_sgi += b.mu[j] * wg * b.q[j] / b.C;
      e_sgd += b.mu[j] * wg * (b.q[j] - b.qhat[j]) / b.C;
    }
  }
  EXPECT_NEAR(s.mean, b.truth, 4 * s.sd / se + 0.002);
  EXPECT_NEAR(gi.mean, e_sgi, 4 * gi.sd / se);
  EXPECT_NEAR(gd.mean, e_sgd, 4 * gd.sd / se);
  EXPECT_LT(e_sgi, b.truth - 0.01);  // the shrinkage bias is real here
  EXPECT_LT(gi.sd, i.sd);
  EXPECT_LT(s.sd, 0.8 * i.sd);
  EXPECT_NEAR(bi.mean, b.truth, 0.03 * b.truth);
  EXPECT_LT(bi.sd, i.sd);  // estimated weights beat the true ones
}

TEST(PolicyTest, SlatePositionWiseIpsIsUnbiasedUnderPbm) {
  // 3 positions, 6 items; logging and target pick an item per position
  // independently; reward = examination(k) x attractiveness(item).
  const int L = 3, I = 6, reps = 60, n = 1000;
  const double exam[L] = {1.0, 0.6, 0.3};
  double attr[I] = {0.9, 0.7, 0.5, 0.3, 0.2, 0.1};
  double mu[L][I], pi[L][I];
  double truth = 0;
  for (int k = 0; k < L; ++k) {
    double sm = 0, sp = 0;
    for (int i = 0; i < I; ++i) {
      sm += (mu[k][i] = 1.0 + i);           // logging prefers bad items
      sp += (pi[k][i] = std::exp(-i + k));  // target prefers good ones
    }
    for (int i = 0; i < I; ++i) {
      mu[k][i] /= sm;
      pi[k][i] /= sp;
      truth += exam[k] * pi[k][i] * attr[i];
    }
  }
  std::mt19937_64 g(8);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<double> est;
  PolicyOptions o;
  o.estimator = PolicyEstimator::kIps;
  for (int rep = 0; rep < reps; ++rep) {
    std::vector<LoggedDecision> d(n);
    for (int t = 0; t < n; ++t) {
      for (int k = 0; k < L; ++k) {
        std::discrete_distribution<int> pick(mu[k], mu[k] + I);
        int i = pick(g);
        d[t].reward.push_back(unif(g) < exam[k] * attr[i] ? 1.0 : 0.0);
        d[t].logging_prob.push_back(mu[k][i]);
        d[t].target_prob.push_back(pi[k][i]);
      }
    }
    est.push_back(Value(d, o));
  }
  MeanSd m = Summ(est);
  EXPECT_NEAR(m.mean, truth, 4 * m.sd / std::sqrt(reps));
}

TEST(PolicyTest, IntervalsCoverTruth) {
  Bandit b = MakeBandit(4, 0.05);
  std::mt19937_64 g(23);
  const int reps = 200;
  int ips_cov = 0, dr_cov = 0, ips_normal = 0, snips_normal = 0;
  PolicyOptions o;
  o.bootstrap = 200;
  for (int rep = 0; rep < reps; ++rep) {
    auto d = Log(b, 300, g);
    o.seed = rep;
    o.estimator = PolicyEstimator::kIps;
    auto r = EstimatePolicyValue(d, o);
    ASSERT_OK(r);
    ips_cov += r->interval->low <= b.truth && b.truth <= r->interval->high;
    ips_normal +=
        r->normal_interval.low <= b.truth && b.truth <= r->normal_interval.high;
    o.estimator = PolicyEstimator::kDr;
    r = EstimatePolicyValue(d, o);
    ASSERT_OK(r);
    dr_cov += r->interval->low <= b.truth && b.truth <= r->interval->high;
    o.estimator = PolicyEstimator::kSnips;
    r = EstimatePolicyValue(d, o);
    ASSERT_OK(r);
    snips_normal +=
        r->normal_interval.low <= b.truth && b.truth <= r->normal_interval.high;
  }
  EXPECT_GE(ips_cov, 0.85 * reps);
  EXPECT_GE(dr_cov, 0.85 * reps);
  EXPECT_GE(ips_normal, 0.85 * reps);
  EXPECT_GE(snips_normal, 0.85 * reps);
}

TEST(PolicyTest, DeterministicForSeedAndThreads) {
  Bandit b = MakeBandit(5, 0.1);
  std::mt19937_64 g(2);
  auto d = Log(b, 500, g);
  PolicyOptions o;
  o.estimator = PolicyEstimator::kSnips;
  o.bootstrap = 500;
  o.seed = 9;
  auto x = EstimatePolicyValue(d, o);
  o.num_threads = 4;
  auto y = EstimatePolicyValue(d, o);
  ASSERT_OK(x);
  ASSERT_OK(y);
  EXPECT_EQ(x->interval->low, y->interval->low);
  EXPECT_EQ(x->interval->high, y->interval->high);
  EXPECT_LE(x->interval->low, x->value);
  EXPECT_GE(x->interval->high, x->value);
}

TEST(PolicyTest, RejectsBadInput) {
  using absl::StatusCode::kInvalidArgument;
  PolicyOptions o;
  auto bad = [&](auto mutate) {
    auto d = HandCase();
    mutate(d[2]);
    return EstimatePolicyValue(d, o);
  };
  EXPECT_THAT(bad([](LoggedDecision& d) { d.logging_prob[0] = 0; }),
              StatusIs(kInvalidArgument,
                       "decisions[2].logging_prob[0]=0: must be finite and "
                       "in (0, 1]"));
  EXPECT_THAT(bad([](LoggedDecision& d) { d.target_prob[0] = NAN; }),
              StatusIs(kInvalidArgument, "decisions[2].target_prob[0]=nan"));
  EXPECT_THAT(bad([](LoggedDecision& d) { d.reward[0] = INFINITY; }),
              StatusIs(kInvalidArgument, "decisions[2].reward[0]=inf"));
  EXPECT_THAT(bad([](LoggedDecision& d) { d.reward[0] = 1e300; }),
              StatusIs(kInvalidArgument, "|reward| <= 1e12"));
  EXPECT_THAT(bad([](LoggedDecision& d) { d.logging_prob[0] = 1e-300; }),
              StatusIs(kInvalidArgument, "at least 1e-12"));
  EXPECT_THAT(bad([](LoggedDecision& d) { d.target_prob.push_back(0.5); }),
              StatusIs(kInvalidArgument, "same length"));
  EXPECT_THAT(bad([](LoggedDecision& d) { d.reward.clear(); }),
              StatusIs(kInvalidArgument, "at least one position"));
  o.estimator = PolicyEstimator::kDr;
  EXPECT_THAT(bad([](LoggedDecision& d) { d.reward_hat.clear(); }),
              StatusIs(kInvalidArgument, "decisions[2].reward_hat has 0"));
  EXPECT_THAT(bad([](LoggedDecision& d) { d.target_dm = NAN; }),
              StatusIs(kInvalidArgument, "decisions[2].target_dm=nan"));
  o.estimator = PolicyEstimator::kIps;
  EXPECT_OK(bad([](LoggedDecision& d) { d.reward_hat.clear(); }));
  o.tau = -1;
  EXPECT_THAT(EstimatePolicyValue(HandCase(), o),
              StatusIs(kInvalidArgument, "tau=-1: tau must be >= 0"));
  o.tau = NAN;
  EXPECT_THAT(EstimatePolicyValue(HandCase(), o),
              StatusIs(kInvalidArgument, "tau=nan"));
  o.tau = 1;
  o.subgaussian_lambda = 1.5;
  EXPECT_THAT(EstimatePolicyValue(HandCase(), o),
              StatusIs(kInvalidArgument, "subgaussian_lambda=1.5"));
  o.subgaussian_lambda = 0;
  o.lambda = -1;
  EXPECT_THAT(EstimatePolicyValue(HandCase(), o),
              StatusIs(kInvalidArgument, "lambda"));
  o.lambda = 1;
  o.clip = -1;
  EXPECT_THAT(EstimatePolicyValue(HandCase(), o),
              StatusIs(kInvalidArgument, "clip=-1"));
  o.clip = 0;
  o.bootstrap = -1;
  EXPECT_THAT(EstimatePolicyValue(HandCase(), o),
              StatusIs(kInvalidArgument, "bootstrap"));
  o.bootstrap = 0;
  EXPECT_THAT(EstimatePolicyValue({}, o),
              StatusIs(kInvalidArgument, "at least one logged decision"));
}

}  // namespace
}  // namespace debias::eval
