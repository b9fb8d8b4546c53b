#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/data/dataset_view.h"
#include "core/models/minibatch.h"
#include "core/models/optim.h"
#include "core/propensity/pair_index.h"
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

// UpdateNow applies exactly the update the coming Step would, for SGD and
// for Adam at every step count, and leaves other rows to Step; shards do
// not change the result.
TEST(RowOptimizerTest, UpdateNowEqualsStep) {
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdam}) {
    OptimizerOptions o;
    o.kind = kind;
    o.lr = 0.05f;
    o.l2 = 0.01f;
    const int rows = 5, dim = 3;
    std::vector<float> a(rows * dim), b(rows * dim);
    for (int k = 0; k < rows * dim; ++k) a[k] = b[k] = 0.1f * k - 0.4f;
    RowOptimizer oa(a.data(), rows, dim, o), ob(b.data(), rows, dim, o, /*num_shards=*/2);
    for (int step = 0; step < 6; ++step) {
      for (int r = 0; r < rows; ++r) {
        float g[dim];
        for (int k = 0; k < dim; ++k) g[k] = std::sin(1.0f + step * 7 + r * 3 + k);
        std::copy(g, g + dim, oa.Grad(r));
        if (r % 2 == 0) {
          ob.UpdateNow(r, g, r % 2);
        } else {
          std::copy(g, g + dim, ob.Grad(r, r % 2));
        }
      }
      oa.Step();
      ob.StepAll();
      EXPECT_EQ(a, b) << "step " << step;
    }
  }
}

TEST(RowOptimizerTest, HugeFloatsAreZeroedSmallAndLarge) {
  for (size_t n : {size_t{10}, size_t{3} << 20}) {  // aligned_alloc; mmap (12 MiB)
    HugeFloats h(n);
    ASSERT_EQ(h.size(), n);
    EXPECT_EQ(*std::max_element(h.data(), h.data() + n), 0.0f);
    EXPECT_EQ(*std::min_element(h.data(), h.data() + n), 0.0f);
    h.data()[n - 1] = 1.0f;
    HugeFloats moved = std::move(h);
    EXPECT_EQ(moved.data()[n - 1], 1.0f);
    EXPECT_TRUE(h.empty());
  }
}

TEST(MinibatchTest, SampleManyDrawsWhatSampleDraws) {
  // A dense grid (most pairs indexed) so that rejections and the max_tries
  // cut-off both happen.
  std::vector<data::Interaction> ev;
  for (int u = 0; u < 20; ++u) {
    for (int i = 0; i < 30; ++i) {
      if ((u * 7 + i * 3) % 10 < (u == 0 ? 10 : 8)) {
        data::Interaction e;
        e.user = "u" + std::to_string(u);
        e.item = "i" + std::to_string(i);
        e.label = 1;
        ev.push_back(e);
      }
    }
  }
  auto view = data::BuildViewFromInteractions(ev);
  ASSERT_TRUE(view.ok());
  auto index = propensity::PairIndex::Build(*view);
  for (int tries : {100, 3}) {
    PairSampler ps(view->num_users(), view->num_items(), &index, tries);
    std::mt19937_64 a(9), b(9);
    std::vector<std::pair<uint32_t, uint32_t>> one, many;
    for (int k = 0; k < 1000; ++k) one.push_back(ps.Sample(a));
    ps.SampleMany(b, 1000, [&](uint32_t u, uint32_t i) { many.push_back({u, i}); });
    EXPECT_EQ(one, many) << "max_tries " << tries;
    EXPECT_EQ(a(), b());  // the same engine draws
  }
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
