#include "core/propensity/position_dla.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace debias::propensity {
namespace {

constexpr double kExam[10] = {0.68, 0.61, 0.48, 0.34, 0.28,
                              0.20, 0.11, 0.10, 0.08, 0.06};

struct Fixture {
  int n = 0, K = 0;
  std::vector<float> scores, clicks;
  std::vector<uint8_t> mask;
  SlotBatch batch() const { return {n, K, scores, clicks, mask}; }
};

// Three lists of 4 slots with varied clicks, one short list and one list
// without clicks.
Fixture MakeFixture() {
  Fixture f;
  f.n = 4;
  f.K = 4;
  f.scores = {0.3f, -0.2f, 1.1f, 0.4f,  -0.5f, 0.9f, 0.2f, 0.0f,
              0.7f, 0.1f, 0.0f, 0.0f,   0.2f, 0.4f, -0.3f, 0.8f};
  f.clicks = {1, 0, 1, 0,  0, 1, 0, 0,  0, 1, 0, 0,  0, 0, 0, 0};
  f.mask = {1, 1, 1, 1,  1, 1, 1, 1,  1, 1, 0, 0,  1, 1, 1, 1};
  return f;
}

TEST(DlaWeightsTest, OracleLogitsReproduceOracleInversePropensities) {
  std::vector<double> g(10);
  for (int i = 0; i < 10; ++i) g[i] = std::log(kExam[i]);
  const std::vector<double> w = DlaWeights(g);
  const double expected[10] = {1, 1.115, 1.417, 2.0, 2.429,
                               3.4, 6.18, 6.8, 8.5, 11.33};
  for (int i = 0; i < 10; ++i) {
    EXPECT_NEAR(w[i], expected[i], 0.002 * expected[i]) << "position " << i + 1;
  }
}

TEST(DlaWeightsTest, PropensitiesAreNormalisedToPositionOne) {
  const std::vector<double> g = {0.7, -0.3, 1.2, -2.0};
  const std::vector<double> p = DlaPropensities(g);
  EXPECT_DOUBLE_EQ(p[0], 1.0);
  const std::vector<double> w = DlaWeights(g);
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(p[i] * w[i], 1.0, 1e-12);
  // Shifting all logits changes nothing.
  std::vector<double> g2 = g;
  for (double& v : g2) v += 3.0;
  const std::vector<double> p2 = DlaPropensities(g2);
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(p2[i], p[i], 1e-12);
  const std::vector<double> back = DlaPropensities(LogitsFromPropensities(p));
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(back[i], p[i], 1e-12);
}

TEST(DlaRankerLossTest, UniformLogitsGiveClickSoftmaxCrossEntropy) {
  const Fixture f = MakeFixture();
  const std::vector<double> w = DlaWeights(std::vector<double>(4, 0.4));
  const double loss = DlaRankerLoss(f.batch(), w, 0.0, {});
  // Hand computation: mean over clicks of -log softmax(s_q)_i over shown slots.
  double total = 0.0, clicks = 0.0;
  for (int q = 0; q < f.n; ++q) {
    double z = 0.0;
    for (int i = 0; i < f.K; ++i) {
      if (f.mask[q * 4 + i]) z += std::exp(f.scores[q * 4 + i]);
    }
    for (int i = 0; i < f.K; ++i) {
      if (f.mask[q * 4 + i] && f.clicks[q * 4 + i] > 0) {
        total += -(f.scores[q * 4 + i] - std::log(z));
        clicks += 1;
      }
    }
  }
  EXPECT_NEAR(loss, total / clicks, 1e-6);
}

TEST(DlaRankerLossTest, GradientMatchesFiniteDifferences) {
  Fixture f = MakeFixture();
  const std::vector<double> w = {1.0, 1.7, 2.5, 4.0};
  std::vector<float> grad(f.scores.size());
  DlaRankerLoss(f.batch(), w, kDlaDelta, grad);
  const float h = 1e-3f;
  for (size_t s = 0; s < f.scores.size(); ++s) {
    if (!f.mask[s]) {
      EXPECT_EQ(grad[s], 0.0f);
      continue;
    }
    const float orig = f.scores[s];
    f.scores[s] = orig + h;
    const double up = DlaRankerLoss(f.batch(), w, kDlaDelta, {});
    f.scores[s] = orig - h;
    const double down = DlaRankerLoss(f.batch(), w, kDlaDelta, {});
    f.scores[s] = orig;
    EXPECT_NEAR(grad[s], (up - down) / (2 * h), 2e-4) << "slot " << s;
  }
}

TEST(DlaPropensityLossTest, GradientMatchesFiniteDifferences) {
  const Fixture f = MakeFixture();
  std::vector<double> g = {0.2, -0.4, 0.1, -1.0};
  std::vector<double> grad(4);
  DlaPropensityLoss(f.batch(), g, kDlaDelta, 0.0, grad);
  const double h = 1e-5;
  double sum = 0.0;
  for (int i = 0; i < 4; ++i) {
    std::vector<double> up = g, down = g;
    up[i] += h;
    down[i] -= h;
    const double fd = (DlaPropensityLoss(f.batch(), up, kDlaDelta, 0.0, {}) -
                       DlaPropensityLoss(f.batch(), down, kDlaDelta, 0.0, {})) /
                      (2 * h);
    EXPECT_NEAR(grad[i], fd, 1e-6) << "position " << i + 1;
    sum += grad[i];
  }
  // Softmax invariance to a common shift: the gradient sums to zero when
  // every list shows every position (here one list is short, so only close).
  EXPECT_LT(std::abs(sum), 0.5);
}

TEST(DlaPropensityLossTest, MatchesHandComputationForOneList) {
  // One list of two shown slots: a_i = c_i r_i, r = [1, exp(s1 - s2)].
  std::vector<float> scores = {1.0f, 0.0f}, clicks = {1.0f, 1.0f};
  std::vector<uint8_t> mask = {1, 1};
  const SlotBatch b{1, 2, scores, clicks, mask};
  const std::vector<double> g = {0.5, -0.5};
  const double r2 = std::exp(1.0);
  const double lse = std::log(std::exp(0.5) + std::exp(-0.5));
  const double expected = (1.0 * (lse - 0.5) + r2 * (lse + 0.5)) / (1.0 + r2);
  EXPECT_NEAR(DlaPropensityLoss(b, g, 0.0, 0.0, {}), expected, 1e-9);
  // max_ratio caps r.
  const double capped = (1.0 * (lse - 0.5) + 2.0 * (lse + 0.5)) / 3.0;
  EXPECT_NEAR(DlaPropensityLoss(b, g, 0.0, 2.0, {}), capped, 1e-9);
}

TEST(DlaPropensityLossTest, OptimumIsTheExaminationCurveWithAnOracleRanker) {
  // With ranker scores s = log(attractiveness), E[c_i r_i] is proportional
  // to exam_i, so minimising L_exam over g on many simulated lists
  // recovers exam_i / exam_1.
  std::mt19937_64 rng(7);
  const int n = 20000, K = 10;
  std::vector<float> scores(n * K), clicks(n * K);
  std::vector<uint8_t> mask(n * K, 1);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int q = 0; q < n; ++q) {
    for (int i = 0; i < K; ++i) {
      const double a = 0.1 + 0.9 * u(rng);
      scores[q * K + i] = static_cast<float>(std::log(a));
      clicks[q * K + i] = u(rng) < kExam[i] * a ? 1.0f : 0.0f;
    }
  }
  const SlotBatch b{n, K, scores, clicks, mask};
  // The minimiser in closed form: softmax(g)_i proportional to sum_q c r.
  std::vector<double> mass(K, 0.0);
  for (int q = 0; q < n; ++q) {
    for (int i = 0; i < K; ++i) {
      mass[i] += clicks[q * K + i] * std::exp(scores[q * K] - scores[q * K + i]);
    }
  }
  std::vector<double> g(K), grad(K);
  for (int i = 0; i < K; ++i) g[i] = std::log(mass[i]);
  DlaPropensityLoss(b, g, 0.0, 0.0, grad);
  for (int i = 0; i < K; ++i) EXPECT_NEAR(grad[i], 0.0, 1e-9) << "position " << i + 1;
  const std::vector<double> p = DlaPropensities(g);
  for (int i = 0; i < K; ++i) {
    const double truth = kExam[i] / kExam[0];
    EXPECT_NEAR(p[i], truth, 0.12 * truth) << "position " << i + 1;
  }
}

TEST(DlaClickLogLikelihoodTest, CountsClicksAndMatchesHandValue) {
  std::vector<float> scores = {0.0f, 1.0f, 0.0f, 0.0f}, clicks = {0, 1, 0, 0};
  std::vector<uint8_t> mask = {1, 1, 1, 1};
  const SlotBatch b{2, 2, scores, clicks, mask};
  const std::vector<double> g = {0.0, -1.0};
  double n = 0;
  const double ll = DlaClickLogLikelihood(b, g, &n);
  EXPECT_EQ(n, 1.0);
  // list 1: logits [0, 0] -> click at slot 2 has probability 1/2.
  EXPECT_NEAR(ll, std::log(0.5), 1e-9);
}

}  // namespace
}  // namespace debias::propensity
