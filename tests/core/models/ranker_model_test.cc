#include "core/models/ranker_model.h"

#include <cmath>
#include <random>
#include <vector>

#include "core/models/model.h"
#include "core/models/ranker_net.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::models {
namespace {

using ::debias::testing::StatusIs;

std::vector<float> RandomRows(int n, int d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> N(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n) * d);
  for (float& v : x) v = N(rng);
  return x;
}

RankerNet MakeNet(int d, std::vector<int> hidden, uint64_t seed) {
  auto net = RankerNet::Create(d, std::move(hidden));
  EXPECT_TRUE(net.ok()) << net.status();
  net->InitRandom(seed);
  Eigen::VectorXf shift = Eigen::VectorXf::LinSpaced(d, -0.5f, 0.5f);
  Eigen::VectorXf scale = Eigen::VectorXf::LinSpaced(d, 0.5f, 2.0f);
  EXPECT_OK(net->SetStandardization(shift, scale));
  // Non-zero biases so that the gradient check covers them.
  for (size_t k = 0; k < net->num_params(); ++k) {
    if (net->params()[k] == 0.0f) net->params()[k] = 0.05f * ((k % 7) - 3.0f);
  }
  return *std::move(net);
}

TEST(RankerNetTest, RejectsBadShapes) {
  EXPECT_THAT(RankerNet::Create(0, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "feature_dim=0"));
  EXPECT_THAT(RankerNet::Create(4, {8, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, "hidden"));
  auto net = RankerNet::Create(3, {});
  ASSERT_TRUE(net.ok());
  EXPECT_EQ(net->num_params(), 4u);
  EXPECT_THAT(net->SetParams(Eigen::VectorXf::Zero(3)),
              StatusIs(absl::StatusCode::kInvalidArgument, "params"));
}

TEST(RankerNetTest, LinearScoreIsStandardisedDotProduct) {
  auto net = RankerNet::Create(2, {});
  ASSERT_TRUE(net.ok());
  Eigen::VectorXf p(3);
  p << 2.0f, -1.0f, 0.5f;  // w1, w2, b
  ASSERT_OK(net->SetParams(p));
  Eigen::VectorXf shift(2), scale(2);
  shift << 1.0f, 0.0f;
  scale << 0.5f, 2.0f;
  ASSERT_OK(net->SetStandardization(shift, scale));
  const float x[2] = {3.0f, 1.0f};
  float s;
  RankerWorkspace ws;
  net->Forward(x, 1, &ws, &s);
  EXPECT_FLOAT_EQ(s, 2.0f * (3 - 1) * 0.5f - 1.0f * 1 * 2.0f + 0.5f);
}

// Loss = sum_r c_r * score_r: the gradient w.r.t. every parameter is
// checked against central differences.
void CheckGradient(std::vector<int> hidden) {
  const int n = 6, d = 5;
  RankerNet net = MakeNet(d, hidden, 3);
  const std::vector<float> x = RandomRows(n, d, 4);
  const std::vector<float> c = {0.3f, -1.0f, 0.7f, 0.2f, -0.4f, 1.1f};
  RankerWorkspace ws;
  std::vector<float> s(n);
  net.Forward(x.data(), n, &ws, s.data());
  Eigen::VectorXf grad = Eigen::VectorXf::Zero(net.num_params());
  net.Backward(&ws, c.data(), &grad);
  auto loss = [&]() {
    RankerWorkspace w2;
    std::vector<float> o(n);
    net.Forward(x.data(), n, &w2, o.data());
    double l = 0;
    for (int r = 0; r < n; ++r) l += double{c[r]} * o[r];
    return l;
  };
  const float h = 1e-2f;
  for (size_t k = 0; k < net.num_params(); ++k) {
    const float orig = net.params()[k];
    net.params()[k] = orig + h;
    const double up = loss();
    net.params()[k] = orig - h;
    const double down = loss();
    net.params()[k] = orig;
    EXPECT_NEAR(grad[k], (up - down) / (2 * h), 2e-3 + 2e-3 * std::abs(grad[k]))
        << "param " << k;
  }
}

TEST(RankerNetTest, LinearGradientMatchesFiniteDifferences) { CheckGradient({}); }
TEST(RankerNetTest, MlpGradientMatchesFiniteDifferences) { CheckGradient({7, 4}); }

TEST(RankerModelTest, KindsFollowHiddenLayers) {
  EXPECT_EQ(RankerModel::Create(MakeNet(3, {}, 1))->kind(), "linear-ranker");
  EXPECT_EQ(RankerModel::Create(MakeNet(3, {4}, 1))->kind(), "mlp-ranker");
  EXPECT_EQ(RankerModel::Create(MakeNet(3, {4}, 1))->feature_dim(), 3);
}

TEST(RankerModelTest, SerializeDeserializeIsIdentical) {
  for (std::vector<int> hidden : {std::vector<int>{}, std::vector<int>{64, 32}}) {
    auto model = RankerModel::Create(MakeNet(9, hidden, 5));
    const std::string bytes = model->Serialize();
    auto back = DeserializeModel(bytes);  // through the model registry
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ((*back)->kind(), model->kind());
    EXPECT_EQ((*back)->Serialize(), bytes);
    const std::vector<float> x = RandomRows(2000, 9, 6);  // > one chunk
    std::vector<float> a(2000), b(2000);
    ASSERT_OK(model->ScoreFeatures(x, a));
    ASSERT_OK((*back)->ScoreFeatures(x, b));
    EXPECT_EQ(a, b);
  }
}

TEST(RankerModelTest, CorruptSnapshotsAreDataLoss) {
  const std::string bytes = RankerModel::Create(MakeNet(4, {3}, 2))->Serialize();
  for (size_t cut : {size_t{3}, size_t{20}, bytes.size() - 1}) {
    EXPECT_THAT(RankerModel::Deserialize(bytes.substr(0, cut)),
                StatusIs(absl::StatusCode::kDataLoss, "ranker snapshot"));
  }
  EXPECT_THAT(RankerModel::Deserialize(bytes + "x"),
              StatusIs(absl::StatusCode::kDataLoss, "ranker snapshot"));
  // A NaN parameter is corruption, not a model.
  std::string nan = bytes;
  const float bad = std::nanf("");
  std::memcpy(nan.data() + nan.size() - 4, &bad, 4);
  EXPECT_THAT(RankerModel::Deserialize(nan),
              StatusIs(absl::StatusCode::kDataLoss, "non-finite"));
}

TEST(RankerModelTest, ScoreFeaturesValidatesInput) {
  auto model = RankerModel::Create(MakeNet(4, {3}, 2));
  std::vector<float> x(7, 0.0f), out(2);
  EXPECT_THAT(model->ScoreFeatures(x, out),
              StatusIs(absl::StatusCode::kInvalidArgument, "feature_dim"));
  x.resize(8, 0.0f);
  x[5] = std::numeric_limits<float>::infinity();
  EXPECT_THAT(model->ScoreFeatures(x, out),
              StatusIs(absl::StatusCode::kInvalidArgument, "features[1][1]"));
}

TEST(OptimizerTest, AdamAndAdagradMinimiseAQuadratic) {
  for (OptimizerKind kind : {OptimizerKind::kAdam, OptimizerKind::kAdagrad}) {
    Eigen::VectorXf p = Eigen::VectorXf::Constant(3, 2.0f);
    Optimizer opt(kind, 3, kind == OptimizerKind::kAdam ? 0.05 : 0.5);
    for (int it = 0; it < 2000; ++it) {
      Eigen::VectorXf g = 2.0f * (p - Eigen::VectorXf::Constant(3, -1.0f));
      opt.Step(&p, g);
    }
    EXPECT_NEAR(p[0], -1.0f, 0.05f);
  }
  Eigen::VectorXf g(2);
  g << 3.0f, 4.0f;
  EXPECT_DOUBLE_EQ(ClipGlobalNorm(&g, 1.0), 5.0);
  EXPECT_NEAR(g.norm(), 1.0f, 1e-6f);
}

}  // namespace
}  // namespace debias::models
