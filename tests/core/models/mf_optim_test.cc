#include <cmath>
#include <vector>

#include "core/models/minibatch.h"
#include "core/models/optim.h"
#include "gtest/gtest.h"

namespace debias::models {
namespace {

TEST(RowOptimizerTest, SgdStepWithL2) {
  std::vector<float> w = {1, 2, 3, 4};  // 2 rows x 2
  OptimizerOptions o;
  o.kind = OptimizerKind::kSgd;
  o.lr = 0.1f;
  o.l2 = 0.5f;
  RowOptimizer opt(w.data(), 2, 2, o);
  float* g = opt.Grad(1);
  g[0] = 1;
  g[1] = -1;
  opt.Step();
  EXPECT_FLOAT_EQ(w[0], 1);  // untouched row (lazy)
  EXPECT_FLOAT_EQ(w[2], 3 - 0.1f * (1 + 0.5f * 3));
  EXPECT_FLOAT_EQ(w[3], 4 - 0.1f * (-1 + 0.5f * 4));
  EXPECT_EQ(opt.touched(), 0u);
}

TEST(RowOptimizerTest, AdamFirstStepIsLrTimesSign) {
  std::vector<float> w = {0, 0};
  OptimizerOptions o;
  o.lr = 0.01f;
  RowOptimizer opt(w.data(), 1, 2, o);
  float* g = opt.Grad(0);
  g[0] = 3;
  g[1] = -0.2f;
  opt.Step();
  EXPECT_NEAR(w[0], -0.01f, 1e-6);
  EXPECT_NEAR(w[1], 0.01f, 1e-6);
}

TEST(RowOptimizerTest, DenseModeDecaysUntouchedRows) {
  std::vector<float> w = {1, 1};
  OptimizerOptions o;
  o.kind = OptimizerKind::kSgd;
  o.lr = 0.1f;
  o.l2 = 1.0f;
  o.dense = true;
  RowOptimizer opt(w.data(), 2, 1, o);
  opt.Grad(0)[0] = 0;
  opt.Step();
  EXPECT_FLOAT_EQ(w[1], 0.9f);
}

TEST(RowOptimizerTest, AdamMinimisesQuadratic) {
  std::vector<float> w = {5, -3};
  OptimizerOptions o;
  o.lr = 0.1f;
  RowOptimizer opt(w.data(), 2, 1, o);
  for (int it = 0; it < 500; ++it) {
    opt.Grad(0)[0] += 2 * (w[0] - 1);
    opt.Grad(1)[0] += 2 * (w[1] - 1);
    opt.Step();
  }
  EXPECT_NEAR(w[0], 1, 1e-2);
  EXPECT_NEAR(w[1], 1, 1e-2);
}

TEST(MinibatchTest, ShufflerVisitsEveryIndexOncePerEpoch) {
  EpochShuffler sh({0, 1, 2, 3, 4, 5, 6});
  std::mt19937_64 rng(1);
  sh.NewEpoch(rng);
  std::vector<int> seen(7, 0);
  for (auto b = sh.Next(3); !b.empty(); b = sh.Next(3))
    for (uint32_t x : b) ++seen[x];
  for (int c : seen) EXPECT_EQ(c, 1);
}

TEST(MinibatchTest, UniformBelowStaysInRange) {
  std::mt19937_64 rng(3);
  std::vector<int> hist(5, 0);
  for (int k = 0; k < 5000; ++k) {
    uint32_t x = UniformBelow(rng, 5);
    ASSERT_LT(x, 5u);
    ++hist[x];
  }
  for (int h : hist) EXPECT_NEAR(h, 1000, 150);
}

}  // namespace
}  // namespace debias::models
