#include "core/propensity/kernel_balance.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::propensity {
namespace {

using ::debias::testing::StatusIs;

KernelMatrixF Rows(std::vector<std::vector<float>> rows) {
  KernelMatrixF m(rows.size(), rows.empty() ? 0 : rows[0].size());
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) m(r, c) = rows[r][c];
  }
  return m;
}

double RefKernel(const KernelMatrixF& a, int i, const KernelMatrixF& b, int j,
                 KernelType t, double bw) {
  double d2 = 0;
  for (int c = 0; c < a.cols(); ++c) {
    const double d = double(a(i, c)) - b(j, c);
    d2 += d * d;
  }
  return std::exp(-bw * (t == KernelType::kGaussian ? d2 : std::sqrt(d2)));
}

// Hand-made 8-d features (as if 4-d user + 4-d item embeddings).
KernelMatrixF Obs() {
  return Rows({{0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f},
               {0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f},
               {0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 1.0f, 1.0f, 1.0f}});
}
KernelMatrixF All() {
  return Rows({{0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f},
               {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f},
               {1.0f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f},
               {0.2f, 0.9f, 0.1f, 0.3f, 0.7f, 0.0f, 0.4f, 0.6f}});
}

TEST(KernelTest, HandValuesBothKernels) {
  KernelMatrixF zero = KernelMatrixF::Zero(1, 8);
  KernelMatrixF tenth = KernelMatrixF::Constant(1, 8, 0.1f);  // ||.||^2 = 0.08
  KernelMatrixF k;
  ASSERT_OK(KernelMatrix(zero, tenth, KernelType::kGaussian, 0.1f, &k));
  EXPECT_NEAR(k(0, 0), 0.9920319148, 1e-6);
  ASSERT_OK(KernelMatrix(zero, tenth, KernelType::kExponential, 0.1f, &k));
  EXPECT_NEAR(k(0, 0), 0.9721119840, 1e-6);
  // Identical points: exactly 1.
  ASSERT_OK(KernelMatrix(tenth, tenth, KernelType::kExponential, 0.1f, &k));
  EXPECT_NEAR(k(0, 0), 1.0, 1e-6);
}

TEST(KernelTest, MatrixMatchesDirectFormula) {
  const KernelMatrixF o = Obs(), a = All();
  for (KernelType t : {KernelType::kGaussian, KernelType::kExponential}) {
    for (float bw : {0.1f, 2.0f}) {
      KernelMatrixF k;
      ASSERT_OK(KernelMatrix(o, a, t, bw, &k));
      ASSERT_EQ(k.rows(), 3);
      ASSERT_EQ(k.cols(), 4);
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 4; ++j) {
          EXPECT_NEAR(k(i, j), RefKernel(o, i, a, j, t, bw), 2e-6) << i << "," << j;
        }
      }
    }
  }
}

TEST(KernelTest, RejectsBadInput) {
  KernelMatrixF k;
  EXPECT_THAT(KernelMatrix(Obs(), KernelMatrixF::Zero(2, 7), KernelType::kGaussian,
                           0.1f, &k),
              StatusIs(absl::StatusCode::kInvalidArgument, "same dimension"));
  EXPECT_THAT(KernelMatrix(Obs(), All(), KernelType::kGaussian, 0.0f, &k),
              StatusIs(absl::StatusCode::kInvalidArgument, "bandwidth=0"));
  KernelMatrixF bad = Obs();
  bad(1, 2) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(KernelMatrix(bad, All(), KernelType::kGaussian, 0.1f, &k),
              StatusIs(absl::StatusCode::kInvalidArgument, "x[1,2]"));
  bad(1, 2) = 1e20f;
  EXPECT_THAT(KernelMatrix(All(), bad, KernelType::kGaussian, 0.1f, &k),
              StatusIs(absl::StatusCode::kInvalidArgument, "y[1,2]"));
  EXPECT_THAT(ParseKernelType("cosine"),
              StatusIs(absl::StatusCode::kInvalidArgument, "kernel='cosine'"));
  EXPECT_THAT(ParseKernelNorm("minmax"),
              StatusIs(absl::StatusCode::kInvalidArgument, "norm='minmax'"));
}

TEST(KernelTest, ExtremeButValidFeaturesStayFinite) {
  KernelMatrixF big = KernelMatrixF::Constant(2, 8, 1e15f);
  big(1, 0) = -1e15f;
  KernelMatrixF k;
  for (KernelType t : {KernelType::kGaussian, KernelType::kExponential}) {
    ASSERT_OK(KernelMatrix(big, Obs(), t, 0.1f, &k));
    EXPECT_TRUE(k.allFinite());
    EXPECT_GE(k.minCoeff(), 0.0f);
    EXPECT_LE(k.maxCoeff(), 1.0f);
  }
}

TEST(NormalizationTest, GlobalMinMaxPerColumn) {
  KernelMatrixF t = Rows({{1, 10, 5}, {3, 20, 5}, {2, 15, 5}});
  ASSERT_OK(NormalizeColumnsMinMax(&t, 0.125f));
  EXPECT_FLOAT_EQ(t(0, 0), 0.0f);
  EXPECT_FLOAT_EQ(t(1, 0), 0.125f);
  EXPECT_FLOAT_EQ(t(2, 0), 0.0625f);
  EXPECT_FLOAT_EQ(t(2, 1), 0.0625f);
  EXPECT_FLOAT_EQ(t(1, 2), 0.0f);  // constant column -> 0
  EXPECT_THAT(NormalizeColumnsMinMax(&t, 0.0f),
              StatusIs(absl::StatusCode::kInvalidArgument, "scale=0"));
}

TEST(NormalizationTest, ReferenceBugIsAShiftNotAScaling) {
  // Entries span [0, 1] except one 2.0: min 0, max 2 -> shift 0/2 = 0, then /8.
  KernelMatrixF o = Obs();
  o(0, 0) = 2.0f;
  KernelMatrixF ref = o;
  ReferenceBugNormalize(&ref, 8.0f);
  EXPECT_FLOAT_EQ(ref(0, 0), 0.25f);
  EXPECT_FLOAT_EQ(ref(1, 0), 0.1f);
  // Min 1, max 3: shift 1/(3-1) = 0.5 (not (x-1)/2).
  KernelMatrixF s = Rows({{1, 2}, {3, 1}});
  ReferenceBugNormalize(&s, 2.0f);
  EXPECT_FLOAT_EQ(s(0, 0), 0.25f);  // (1 - 0.5) / 2
  EXPECT_FLOAT_EQ(s(1, 0), 1.25f);  // (3 - 0.5) / 2
  // Sets get different shifts: the same point maps differently.
  KernelMatrixF a = Rows({{1, 1}, {2, 2}});  // shift 1
  KernelMatrixF b = Rows({{1, 1}, {5, 5}});  // shift 0.25
  ReferenceBugNormalize(&a, 1.0f);
  ReferenceBugNormalize(&b, 1.0f);
  EXPECT_FLOAT_EQ(a(0, 0), 0.0f);
  EXPECT_FLOAT_EQ(b(0, 0), 0.75f);
}

// h_all, h_obs and the hinge on the hand-made features, both normalisations.
TEST(BalanceTest, HandComputedTermsBothNormalisations) {
  for (KernelNorm norm : {KernelNorm::kGlobal, KernelNorm::kReferenceBug}) {
    KernelMatrixF o = Obs(), a = All();
    KernelMatrixF c = a.topRows(2);  // centres: the first two sampled points
    if (norm == KernelNorm::kGlobal) {
      // One map for every set: the column min-max of all 7 points, then /8.
      KernelMatrixF all(7, 8);
      all << o, a;
      ASSERT_OK(NormalizeColumnsMinMax(&all, 0.125f));
      o = all.topRows(3);
      a = all.bottomRows(4);
      c = a.topRows(2);
    } else {
      ReferenceBugNormalize(&o, 8.0f);
      ReferenceBugNormalize(&a, 8.0f);
      ReferenceBugNormalize(&c, 8.0f);
    }
    KernelMatrixF k_obs, k_all;
    ASSERT_OK(KernelMatrix(o, c, KernelType::kGaussian, 0.1f, &k_obs));
    ASSERT_OK(KernelMatrix(a, c, KernelType::kGaussian, 0.1f, &k_all));
    const std::vector<float> w = {1.0f, 2.0f, 0.5f};
    auto t = ComputeBalance(k_obs, k_all, w, 0.01);
    ASSERT_OK(t);
    double gap = 0;
    for (int j = 0; j < 2; ++j) {
      double h_all = 0, h_obs = 0;
      for (int d = 0; d < 4; ++d) h_all += RefKernel(a, d, c, j, KernelType::kGaussian, 0.1);
      for (int q = 0; q < 3; ++q) {
        h_obs += w[q] * RefKernel(o, q, c, j, KernelType::kGaussian, 0.1);
      }
      h_all /= 4;
      h_obs /= 3;
      EXPECT_NEAR(t->h_all[j], h_all, 1e-6);
      EXPECT_NEAR(t->h_obs[j], h_obs, 1e-6);
      gap += h_all - h_obs;
    }
    EXPECT_NEAR(t->gap_sum, gap, 1e-6);
    EXPECT_NEAR(t->hinge, std::max(0.0, gap - 0.01) + std::max(0.0, -gap - 0.01), 1e-6);
    // mean(w) = 7/6 > 1 and kernels ~ 1: observed side heavier, gap < 0.
    EXPECT_LT(t->gap_sum, -0.01);
    EXPECT_GT(t->hinge, 0.0);
  }
}

TEST(BalanceTest, LossAndGradientMatchFiniteDifferences) {
  KernelMatrixF k_obs, k_all;
  ASSERT_OK(KernelMatrix(Obs(), All().topRows(2), KernelType::kExponential, 0.5f, &k_obs));
  ASSERT_OK(KernelMatrix(All(), All().topRows(2), KernelType::kExponential, 0.5f, &k_all));
  std::vector<float> lw = {0.3f, -0.2f, 0.1f};
  Eigen::VectorXf g;
  auto obj = BalanceLossAndGrad(k_obs, k_all, lw, 2.0, 0.01, &g);
  ASSERT_OK(obj);
  auto w_of = [&](int q) { return std::exp(double(lw[q])); };
  double ent = 0;
  for (int q = 0; q < 3; ++q) ent += w_of(q) * lw[q];
  EXPECT_NEAR(obj->entropy, ent / 3, 1e-6);
  for (int q = 0; q < 3; ++q) {
    const float h = 1e-3f;
    std::vector<float> p = lw, m = lw;
    p[q] += h;
    m[q] -= h;
    Eigen::VectorXf dummy;
    const double lp = BalanceLossAndGrad(k_obs, k_all, p, 2.0, 0.01, &dummy)->loss;
    const double lm = BalanceLossAndGrad(k_obs, k_all, m, 2.0, 0.01, &dummy)->loss;
    EXPECT_NEAR(g[q], (lp - lm) / (2 * h), 2e-3) << q;
  }
}

TEST(BalanceTest, EntropyFiniteAtExtremeWeights) {
  KernelMatrixF k_obs = KernelMatrixF::Constant(6, 3, 0.9f);
  KernelMatrixF k_all = KernelMatrixF::Constant(5, 3, 0.8f);
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> lw = {-1e30f, -200.0f, 0.0f, 200.0f, 1e30f, -inf};
  lw.back() = inf;
  Eigen::VectorXf g;
  auto obj = BalanceLossAndGrad(k_obs, k_all, lw, 1.0, 1e-2, &g);
  ASSERT_OK(obj);
  EXPECT_TRUE(std::isfinite(obj->loss));
  EXPECT_TRUE(std::isfinite(obj->entropy));
  EXPECT_TRUE(std::isfinite(obj->hinge));
  EXPECT_TRUE(g.allFinite());
  lw[0] = -inf;
  obj = BalanceLossAndGrad(k_obs, k_all, lw, 1.0, 1e-2, &g);
  ASSERT_OK(obj);
  EXPECT_TRUE(std::isfinite(obj->loss));
  lw[2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(BalanceLossAndGrad(k_obs, k_all, lw, 1.0, 1e-2, &g),
              StatusIs(absl::StatusCode::kInvalidArgument, "log_w[2]"));
  EXPECT_THAT(BalanceLossAndGrad(k_obs, k_all, {lw.data(), 2}, 1.0, 1e-2, &g),
              StatusIs(absl::StatusCode::kInvalidArgument, "w has 2"));
  EXPECT_THAT(BalanceLossAndGrad(k_obs, k_all, {lw.data(), 6}, -1.0, 1e-2, &g),
              StatusIs(absl::StatusCode::kInvalidArgument, "penalty=-1"));
}

// Gradient descent on the balancing objective closes the gap on a toy
// problem where the observed points sit in one corner of the space.
TEST(BalanceTest, BalancingReducesGapOnToyProblem) {
  const int n_obs = 40, n_all = 200;
  KernelMatrixF o(n_obs, 2), a(n_all, 2);
  for (int q = 0; q < n_obs; ++q) o.row(q) << 0.05f * (q % 5), 0.05f * (q / 5 % 4);
  for (int d = 0; d < n_all; ++d) a.row(d) << 0.01f * (d % 20) * 5, 0.01f * (d / 20) * 10;
  KernelMatrixF centres = a.topRows(5);
  KernelMatrixF k_obs, k_all;
  ASSERT_OK(KernelMatrix(o, centres, KernelType::kGaussian, 2.0f, &k_obs));
  ASSERT_OK(KernelMatrix(a, centres, KernelType::kGaussian, 2.0f, &k_all));
  // Start from weights 3 (like an over-large inverse propensity).
  std::vector<float> lw(n_obs, std::log(3.0f));
  std::vector<float> w(n_obs);
  auto gap = [&]() {
    for (int q = 0; q < n_obs; ++q) w[q] = std::exp(lw[q]);
    return std::fabs(ComputeBalance(k_obs, k_all, w, 0.0)->gap_sum);
  };
  const double before = gap();
  Eigen::VectorXf g;
  for (int it = 0; it < 300; ++it) {
    ASSERT_OK(BalanceLossAndGrad(k_obs, k_all, lw, 10.0, 0.0, &g));
    for (int q = 0; q < n_obs; ++q) lw[q] -= 0.5f * g[q];
  }
  const double after = gap();
  EXPECT_GT(before, 1.0);
  EXPECT_LT(after, 0.1 * before);
}

TEST(WeightSummaryTest, QuantilesAndEss) {
  std::vector<float> w(100, 2.0f);
  auto j = SummarizeWeights(w);
  EXPECT_EQ(j["n"], 100);
  EXPECT_NEAR(j["ess"].get<double>(), 100.0, 1e-9);
  EXPECT_NEAR(j["ess_fraction"].get<double>(), 1.0, 1e-9);
  std::vector<float> spike = {1.0f, 0.0f, 0.0f, 0.0f,
                              std::numeric_limits<float>::quiet_NaN()};
  j = SummarizeWeights(spike);
  EXPECT_EQ(j["n"], 4);
  EXPECT_EQ(j["non_finite"], 1);
  EXPECT_NEAR(j["ess"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(j["quantiles"]["p50"].get<double>(), 0.0, 1e-9);
  EXPECT_NEAR(j["max"].get<double>(), 1.0, 1e-9);
  EXPECT_EQ(SummarizeWeights({})["n"], 0);
}

}  // namespace
}  // namespace debias::propensity
