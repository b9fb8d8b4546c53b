#include "core/models/nbpo_trainer.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/models/mf_model.h"
#include "core/models/nbpo_mf_model.h"
#include "core/samplers/nbpo_sampler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::models {
namespace {

using ::debias::testing::StatusIs;

data::DatasetView MakeView(const std::vector<std::vector<uint32_t>>& rows,
                           uint32_t num_items) {
  data::DatasetViewBuilder b;
  std::vector<std::string> uk, ik;
  for (uint32_t u = 0; u < rows.size(); ++u) {
    uk.push_back("u" + std::to_string(u));
    for (uint32_t i : rows[u]) {
      b.Add(u, i, 1.0f, std::nullopt, data::kNoList, std::nullopt, std::nullopt, {});
    }
  }
  for (uint32_t i = 0; i < num_items; ++i) ik.push_back("i" + std::to_string(i));
  auto v = b.Finish(uk, ik, {}, 1);
  EXPECT_TRUE(v.ok()) << v.status();
  return std::move(*v);
}

NbpoParams RandomParams(NbpoLoss loss, int nu, int ni, int d, int fd,
                        uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-0.8f, 0.8f);
  auto fill = [&](RowMatrix* m, int r, int c) {
    m->resize(r, c);
    for (Eigen::Index k = 0; k < m->size(); ++k) m->data()[k] = dist(rng);
  };
  NbpoParams p;
  fill(&p.U, nu, d);
  fill(&p.V, ni, d);
  if (HasFlipModel(loss)) {
    fill(&p.P, nu, fd);
    fill(&p.Q, ni, fd);
  }
  return p;
}

NbpoParams ZerosLike(const NbpoParams& p) {
  NbpoParams g;
  g.U = RowMatrix::Zero(p.U.rows(), p.U.cols());
  g.V = RowMatrix::Zero(p.V.rows(), p.V.cols());
  g.P = RowMatrix::Zero(p.P.rows(), p.P.cols());
  g.Q = RowMatrix::Zero(p.Q.rows(), p.Q.cols());
  return g;
}

// Central finite differences of NbpoObjective against the kernel, entry by
// entry, for the losses that are gradients of an objective.
class GradientTest : public ::testing::TestWithParam<NbpoLoss> {};

TEST_P(GradientTest, MatchesFiniteDifferences) {
  const NbpoLoss loss = GetParam();
  NbpoParams p = RandomParams(loss, 3, 5, 3, 2, 17);
  // Positives (user, item) with two negatives each; a user repeats and an
  // item is both positive and negative, so accumulation is exercised.
  const std::vector<uint32_t> users = {0, 0, 1, 2};
  const std::vector<uint32_t> pos = {1, 2, 0, 4};
  const std::vector<uint32_t> neg = {0, 3, 4, 3, 2, 3, 1, 0};
  NbpoBlock block{users, pos, neg, 2};
  NbpoParams grad = ZerosLike(p);
  const double obj = AccumulateNbpoGradient(loss, p, block, &grad);
  EXPECT_NEAR(obj, NbpoObjective(loss, p, block), 1e-4);
  const double h = 1e-3;
  int checked = 0;
  auto check = [&](RowMatrix& m, const RowMatrix& g, const char* name) {
    for (Eigen::Index k = 0; k < m.size(); ++k) {
      const float x0 = m.data()[k];
      m.data()[k] = x0 + static_cast<float>(h);
      const double fp = NbpoObjective(loss, p, block);
      m.data()[k] = x0 - static_cast<float>(h);
      const double fm = NbpoObjective(loss, p, block);
      m.data()[k] = x0;
      const double fd = (fp - fm) / (2 * h);
      EXPECT_NEAR(g.data()[k], fd, 2e-3 * (1 + std::abs(fd)))
          << name << "[" << k << "] loss " << NbpoLossName(loss);
      ++checked;
    }
  };
  check(p.U, grad.U, "U");
  check(p.V, grad.V, "V");
  if (HasFlipModel(loss)) {
    check(p.P, grad.P, "P");
    check(p.Q, grad.Q, "Q");
  }
  EXPECT_GE(checked, 24);
  // Some gradient entries must be non-trivial, or the check says nothing.
  EXPECT_GT(grad.U.cwiseAbs().maxCoeff(), 0.05f);
}

INSTANTIATE_TEST_SUITE_P(Losses, GradientTest,
                         ::testing::Values(NbpoLoss::kBpr, NbpoLoss::kBpo,
                                           NbpoLoss::kNbpoo),
                         [](const auto& info) {
                           return std::string(NbpoLossName(info.param));
                         });

// NBPO's fixed-coefficient update on one positive and one negative, against
// values computed by hand from the table in the notes (§2.1):
// x_i = 0.2, r_i = 0.549834, g_i = sigma(-2) = 0.119203;
// x_j = -0.1, r_j = 0.475021, g_j = sigma(1) = 0.731059.
// positive: Dx = (1-g)(1-r) = 0.396505, Dg = -g r = -0.065542;
// negative: Dx = g(1-r) - r = -0.091230, Dg = (1-g) r = 0.127753.
TEST(NbpoUpdateTest, MatchesHandCheckedTable) {
  NbpoParams p;
  p.U = RowMatrix::Constant(1, 1, 0.5f);
  p.V.resize(2, 1);
  p.V << 0.4f, -0.2f;
  p.P = RowMatrix::Constant(1, 1, 1.0f);
  p.Q.resize(2, 1);
  p.Q << -2.0f, 1.0f;
  const std::vector<uint32_t> users = {0}, pos = {0}, neg = {1};
  NbpoParams g = ZerosLike(p);
  AccumulateNbpoGradient(NbpoLoss::kNbpo, p, NbpoBlock{users, pos, neg, 1}, &g);
  EXPECT_NEAR(g.U(0, 0), 0.396505 * 0.4 + (-0.091230) * (-0.2), 1e-5);  // 0.176848
  EXPECT_NEAR(g.V(0, 0), 0.396505 * 0.5, 1e-5);                         // 0.198252
  EXPECT_NEAR(g.V(1, 0), -0.091230 * 0.5, 1e-5);                        // -0.045615
  EXPECT_NEAR(g.P(0, 0), -0.065542 * -2.0 + 0.127753 * 1.0, 1e-5);      // 0.258836
  EXPECT_NEAR(g.Q(0, 0), -0.065542, 1e-5);
  EXPECT_NEAR(g.Q(1, 0), 0.127753, 1e-5);

  // With sample_rate 2 the positive term counts twice (once per negative).
  const std::vector<uint32_t> neg2 = {1, 1};
  NbpoParams g2 = ZerosLike(p);
  AccumulateNbpoGradient(NbpoLoss::kNbpo, p, NbpoBlock{users, pos, neg2, 2}, &g2);
  EXPECT_NEAR(g2.V(0, 0), 2 * 0.396505 * 0.5, 1e-5);
  EXPECT_NEAR(g2.Q(1, 0), 2 * 0.127753, 1e-5);

  // The hard-saturated sigmoid of the reference: x > 10 gives r = 1 exactly,
  // so a saturated positive contributes nothing.
  p.U(0, 0) = 100.0f;
  p.V(0, 0) = 1.0f;
  NbpoParams g3 = ZerosLike(p);
  AccumulateNbpoGradient(NbpoLoss::kNbpo, p, NbpoBlock{users, pos, neg, 1}, &g3);
  EXPECT_EQ(g3.V(0, 0), 0.0f);
}

// One epoch of the trainer is one full-matrix step per block:
// X <- X + lr*decay (dX - lambda X). Items are chosen so that every negative
// is forced (each user has exactly one non-positive item).
TEST(NbpoTrainerTest, EpochAppliesTheReferenceUpdate) {
  auto view = MakeView({{0, 1}, {1, 2}}, 3);
  NbpoOptions o = DefaultNbpoOptions(NbpoLoss::kNbpo);
  o.dim = 4;
  o.flip_dim = 3;
  o.sample_rate = 2;
  o.batch_size = 100;
  o.lr = 0.1;
  o.lr_decay = 0.5;
  o.lambda_r = 0.3;
  o.lambda_phi = 0.7;
  o.seed = 5;
  auto t = NbpoTrainer::Create(view, o);
  ASSERT_OK(t);
  const NbpoParams before = (*t)->params();
  // Init ranges: U, V in [0, 1/2); P in [0, 5/sqrt(3)); Q in (-5/sqrt(3), 0].
  EXPECT_GE(before.U.minCoeff(), 0.0f);
  EXPECT_LT(before.V.maxCoeff(), 0.5f);
  EXPECT_LE(before.Q.maxCoeff(), 0.0f);
  EXPECT_GT(before.Q.minCoeff(), -5.0f / std::sqrt(3.0f));
  const std::vector<uint32_t> users = {0, 0, 1, 1}, pos = {0, 1, 1, 2};
  const std::vector<uint32_t> neg = {2, 2, 2, 2, 0, 0, 0, 0};
  NbpoParams g = ZerosLike(before);
  AccumulateNbpoGradient(NbpoLoss::kNbpo, before, NbpoBlock{users, pos, neg, 2}, &g);
  ASSERT_OK((*t)->RunEpoch());
  const float lr = 0.05f;  // 0.1 * decay 0.5 at the start of epoch 1
  const NbpoParams& after = (*t)->params();
  auto expect = [&](const RowMatrix& b, const RowMatrix& d, const RowMatrix& a,
                    float lambda) {
    RowMatrix e = b + lr * (d - lambda * b);
    EXPECT_LT((e - a).cwiseAbs().maxCoeff(), 1e-6f);
  };
  expect(before.U, g.U, after.U, 0.3f);
  expect(before.V, g.V, after.V, 0.3f);
  expect(before.P, g.P, after.P, 0.7f);
  expect(before.Q, g.Q, after.Q, 0.7f);
}

// Two user groups with disjoint tastes: each user holds a random 6 of the 10
// items of their group. A low-rank model should rank the group's other items
// (positives of the user's peers) above every item of the other group.
data::DatasetView TwoGroups() {
  std::mt19937_64 rng(99);
  std::vector<std::vector<uint32_t>> rows;
  for (uint32_t u = 0; u < 40; ++u) {
    const uint32_t base = u < 20 ? 0 : 10;
    std::vector<uint32_t> items(10);
    for (uint32_t k = 0; k < 10; ++k) items[k] = base + k;
    std::shuffle(items.begin(), items.end(), rng);
    items.resize(6);
    rows.push_back(items);
  }
  return MakeView(rows, 20);
}

// Mean over users of the share of (own-group non-positive, other-group item)
// pairs the model orders correctly.
double GroupAuc(const Model& m, const data::DatasetView& v) {
  double total = 0.0;
  std::vector<float> s(20);
  for (uint32_t u = 0; u < 40; ++u) {
    m.ScoreAll(u, s);
    std::vector<bool> pos(20, false);
    const auto [b, e] = v.UserRange(u);
    for (uint64_t k = b; k < e; ++k) pos[v.item[k]] = true;
    const uint32_t own = u < 20 ? 0 : 10, other = 10 - own;
    int good = 0, pairs = 0;
    for (uint32_t i = own; i < own + 10; ++i) {
      if (pos[i]) continue;
      for (uint32_t j = other; j < other + 10; ++j, ++pairs) good += s[i] > s[j];
    }
    total += static_cast<double>(good) / pairs;
  }
  return total / 40;
}

class TrainerFnTest : public ::testing::TestWithParam<NbpoLoss> {};

TEST_P(TrainerFnTest, LearnsGroupsAndReportsEverything) {
  const NbpoLoss loss = GetParam();
  auto view = TwoGroups();
  train::TrainSpec spec;
  spec.loss = std::string(NbpoLossName(loss));
  spec.seed = 3;
  spec.params = {{"dim", "2"}, {"epochs", "200"}, {"batch_size", "16"}, {"lr_decay", "1"},
                 {"lr", "0.1"}, {"lambda_r", "0.01"}};
  if (HasFlipModel(loss)) {
    spec.params["flip_dim"] = "2";
    // A weak flip regulariser lets g run away on a problem this small (a
    // negative's push g(1-r) - r turns positive once g > r/(1-r)).
    spec.params["lambda_phi"] = "5";
  }
  int progress_calls = 0;
  train::TrainContext ctx;
  ctx.on_progress = [&](const train::TrainProgress& p) {
    ++progress_calls;
    EXPECT_EQ(p.total_epochs, 200);
    EXPECT_TRUE(std::isfinite(p.loss));
  };
  auto fn = loss == NbpoLoss::kBpr ? &TrainBpr
            : loss == NbpoLoss::kBpo ? &TrainBpo
            : loss == NbpoLoss::kNbpo ? &TrainNbpo : &TrainNbpoo;
  auto r = fn(view, spec, ctx);
  ASSERT_OK(r);
  EXPECT_EQ(progress_calls, 200);
  ASSERT_NE(r->model, nullptr);
  EXPECT_EQ(r->model->kind(), HasFlipModel(loss) ? "nbpo-mf" : "mf");
  EXPECT_GT(GroupAuc(*r->model, view), 0.9) << NbpoLossName(loss);
  // Every hyperparameter is reported.
  std::vector<std::string> keys;
  for (const auto& [k, v] : r->resolved_params) keys.push_back(k);
  if (HasFlipModel(loss)) {
    EXPECT_THAT(keys, ::testing::ElementsAre("batch_size", "dim", "epochs", "flip_dim",
                                             "lambda_phi", "lambda_r", "lr", "lr_decay",
                                             "sample_rate", "seed"));
    EXPECT_EQ(r->resolved_params.at("flip_dim"), "2");
    const auto& flip = r->diagnostics.at("flip");
    const auto& gt = flip.at("g_train_pairs");
    EXPECT_EQ(gt.at("count").get<int>(), static_cast<int>(view.num_events()));
    const double mean = gt.at("mean").get<double>();
    EXPECT_GE(mean, 0.0);
    EXPECT_LE(mean, 1.0);
    EXPECT_LE(gt.at("quantiles").at("p5").get<double>(),
              gt.at("quantiles").at("p95").get<double>());
    EXPECT_TRUE(flip.contains("p_true_negative_unobserved_sample"));
  } else {
    EXPECT_THAT(keys, ::testing::ElementsAre("batch_size", "dim", "epochs", "lambda_r",
                                             "lr", "lr_decay", "sample_rate", "seed"));
    EXPECT_FALSE(r->diagnostics.contains("flip"));
  }
  EXPECT_EQ(r->resolved_params.at("dim"), "2");
  EXPECT_EQ(r->resolved_params.at("lr_decay"), "1");
  EXPECT_EQ(r->resolved_params.at("seed"), "3");
  EXPECT_EQ(r->resolved_params.at("sample_rate"),
            std::to_string(DefaultNbpoOptions(loss).sample_rate));
  // Snapshot round trip through the registry.
  auto back = DeserializeModel(r->model->Serialize());
  ASSERT_OK(back);
  EXPECT_EQ((*back)->kind(), r->model->kind());
  std::vector<float> s(20), s2(20);
  r->model->ScoreAll(3, s);
  (*back)->ScoreAll(3, s2);
  EXPECT_EQ(s, s2);
}

INSTANTIATE_TEST_SUITE_P(Losses, TrainerFnTest,
                         ::testing::Values(NbpoLoss::kBpr, NbpoLoss::kBpo,
                                           NbpoLoss::kNbpo, NbpoLoss::kNbpoo),
                         [](const auto& info) {
                           return std::string(NbpoLossName(info.param));
                         });

TEST(NbpoTrainerTest, DeterministicForASeed) {
  auto view = TwoGroups();
  train::TrainSpec spec;
  spec.params = {{"dim", "6"}, {"flip_dim", "3"}, {"epochs", "5"}, {"batch_size", "50"}};
  spec.seed = 11;
  auto a = TrainNbpo(view, spec, {});
  auto b = TrainNbpo(view, spec, {});
  spec.seed = 12;
  auto c = TrainNbpo(view, spec, {});
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(c);
  EXPECT_EQ(a->model->Serialize(), b->model->Serialize());
  EXPECT_EQ(a->diagnostics.dump(), b->diagnostics.dump());
  EXPECT_NE(a->model->Serialize(), c->model->Serialize());
}

TEST(NbpoTrainerTest, RejectsBadParamsNamingTheKey) {
  auto view = MakeView({{0, 1}, {2}}, 4);
  auto run = [&](NbpoLoss loss, std::map<std::string, std::string> params) {
    return ParseNbpoOptions(loss, params, 0).status();
  };
  EXPECT_THAT(run(NbpoLoss::kNbpo, {{"lamda_r", "1"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "unknown parameter 'lamda_r' for loss 'nbpo'; known: dim, flip_dim, lr, "
                       "lambda_r, lambda_phi, epochs, batch_size, sample_rate, lr_decay"));
  EXPECT_THAT(run(NbpoLoss::kBpr, {{"flip_dim", "4"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown parameter 'flip_dim'"));
  EXPECT_THAT(run(NbpoLoss::kBpo, {{"lambda_phi", "4"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "'lambda_phi'"));
  EXPECT_THAT(run(NbpoLoss::kNbpo, {{"lr", "0"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "lr=0: lr must be a number in (0, 10]"));
  EXPECT_THAT(run(NbpoLoss::kNbpo, {{"lr", "nan"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "lr=nan"));
  EXPECT_THAT(run(NbpoLoss::kNbpoo, {{"sample_rate", "3x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "sample_rate=3x: sample_rate must be an integer in [1, 1000]"));
  EXPECT_THAT(run(NbpoLoss::kBpr, {{"epochs", "0"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "epochs=0"));
  EXPECT_THAT(run(NbpoLoss::kBpr, {{"dim", "-3"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "dim=-3"));
  EXPECT_THAT(run(NbpoLoss::kNbpo, {{"lambda_phi", "-1"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "lambda_phi=-1"));
  EXPECT_THAT(run(NbpoLoss::kNbpo, {{"lr_decay", "1.5"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "lr_decay=1.5"));
  EXPECT_THAT(run(NbpoLoss::kNbpo, {{"batch_size", ""}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "batch_size=: batch_size must be an integer"));
  train::TrainSpec spec;
  spec.params = {{"sample_rate", "0"}};
  EXPECT_THAT(TrainNbpoo(view, spec, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "sample_rate=0"));
  NbpoOptions o = DefaultNbpoOptions(NbpoLoss::kBpo);
  o.dim = 0;
  EXPECT_THAT(NbpoTrainer::Create(view, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "dim=0"));
}

TEST(NbpoTrainerTest, PreconditionsAndCancellation) {
  // The only user owns every item: nothing to sample.
  auto full = MakeView({{0, 1, 2}}, 3);
  train::TrainSpec spec;
  EXPECT_THAT(TrainNbpo(full, spec, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "no trainable positive"));
  // A full user next to a normal one is skipped and counted.
  auto mixed = MakeView({{0, 1, 2}, {1}}, 3);
  spec.params = {{"epochs", "2"}, {"dim", "4"}, {"flip_dim", "2"}};
  auto r = TrainNbpo(mixed, spec, {});
  ASSERT_OK(r);
  EXPECT_EQ(r->diagnostics.at("skipped_positives").get<int>(), 3);

  std::atomic<bool> cancelled{true};
  train::TrainContext ctx;
  ctx.cancelled = &cancelled;
  train::TrainSpec bpr;
  bpr.params = {{"epochs", "2"}, {"dim", "4"}};
  EXPECT_THAT(TrainBpr(mixed, bpr, ctx),
              StatusIs(absl::StatusCode::kCancelled, "cancelled"));
}

TEST(NbpoMfModelTest, ScoresLikeMfAndFeedsTheSampler) {
  samplers::NbpoFactors f;
  f.user_factors.resize(2, 2);
  f.user_factors << 1, 2, 3, 4;
  f.item_factors.resize(3, 2);
  f.item_factors << 1, 0, 0, 1, 1, 1;
  f.user_flip.resize(2, 1);
  f.user_flip << 1, -1;
  f.item_flip.resize(3, 1);
  f.item_flip << 0, 2, -2;
  auto m = NbpoMfModel::Create(f);
  ASSERT_OK(m);
  std::vector<float> s(3);
  (*m)->ScoreAll(1, s);
  EXPECT_THAT(s, ::testing::ElementsAre(3, 4, 7));
  const std::vector<uint32_t> items = {2, 0};
  std::vector<float> s2(2);
  (*m)->ScoreItems(0, items, s2);
  EXPECT_THAT(s2, ::testing::ElementsAre(3, 1));
  EXPECT_NEAR((*m)->FlipProbability(0, 1), 1 / (1 + std::exp(-2.0)), 1e-6);
  EXPECT_NEAR((*m)->FlipProbability(1, 1), 1 / (1 + std::exp(2.0)), 1e-6);
  EXPECT_EQ((*m)->dim(), 2);
  EXPECT_EQ((*m)->flip_dim(), 1);

  const std::string bytes = (*m)->Serialize();
  EXPECT_THAT(NbpoMfModel::Deserialize(bytes.substr(0, bytes.size() - 3)),
              StatusIs(absl::StatusCode::kDataLoss, "nbpo-mf snapshot"));
  auto back = NbpoMfModel::Deserialize(bytes);
  ASSERT_OK(back);
  EXPECT_EQ((*back)->Serialize(), bytes);

  samplers::NbpoFactors bad = f;
  bad.item_flip.resize(2, 1);
  EXPECT_THAT(NbpoMfModel::Create(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, "shapes disagree"));

  auto view = MakeView({{0}, {1}}, 3);
  auto sampler = samplers::MakeNbpoSampler(view, (*m)->factors());
  ASSERT_OK(sampler);
  samplers::Rng rng(1);
  auto d = (*sampler)->Sample(0, 50, rng);
  ASSERT_OK(d);
  for (uint32_t i : *d) EXPECT_NE(i, 0u);
}

}  // namespace
}  // namespace debias::models
