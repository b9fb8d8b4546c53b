#include "core/models/dla_trainer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/data/dataset_view.h"
#include "core/eval/ltr_metrics.h"
#include "core/models/ranker_model.h"
#include "core/train/registry.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::models {
namespace {

using ::debias::testing::StatusIs;

constexpr double kExam[5] = {0.68, 0.61, 0.48, 0.34, 0.28};
constexpr int kK = 5, kDim = 4;
constexpr double kW[kDim] = {-1.2, -0.8, -0.5, -0.3};

// A small click log: every list shows 5 fresh documents with features
// U(0,1)^4 and attractiveness a = exp(w . x) in [0.06, 1] (so a linear
// softmax ranker is well specified), ordered by a noisy logging score
// (relevant documents tend to be on top), clicked by the PBM.
// `graded` also returns a test set with graded labels 0..4 by quantiles of a.
struct SmallLog {
  data::DatasetView clicks;
  data::DatasetView test;
};

SmallLog MakeLog(int lists, uint64_t seed, bool shuffle = false) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 0.5);
  std::vector<data::Interaction> ev, test;
  auto doc = [&](std::vector<float>* x) {
    double s = 0.0;
    x->resize(kDim);
    for (int j = 0; j < kDim; ++j) {
      (*x)[j] = static_cast<float>(u(rng));
      s += kW[j] * (*x)[j];
    }
    return s;
  };
  for (int q = 0; q < lists; ++q) {
    std::vector<std::vector<float>> x(kK);
    std::vector<double> s(kK), key(kK);
    for (int i = 0; i < kK; ++i) {
      s[i] = doc(&x[i]);
      key[i] = shuffle ? u(rng) : s[i] + noise(rng);
    }
    std::vector<int> order(kK);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return key[a] > key[b]; });
    for (int r = 0; r < kK; ++r) {
      const int d = order[r];
      data::Interaction e;
      e.user = absl::StrCat("q", q);
      e.item = absl::StrCat("q", q, "-d", d);
      e.list_id = absl::StrCat("l", q);
      e.position = r + 1;
      e.features = x[d];
      e.label = u(rng) < kExam[r] * std::exp(s[d]) ? 1.0f : 0.0f;
      ev.push_back(std::move(e));
    }
  }
  for (int q = 0; q < 200; ++q) {
    for (int d = 0; d < 10; ++d) {
      data::Interaction e;
      std::vector<float> x;
      const double s = doc(&x);
      e.user = absl::StrCat("t", q);
      e.item = absl::StrCat("t", q, "-d", d);
      e.list_id = absl::StrCat("t", q);
      e.features = x;
      e.label = static_cast<float>(std::clamp(std::floor((s + 2.8) / 0.56), 0.0, 4.0));
      test.push_back(std::move(e));
    }
  }
  SmallLog out;
  auto v = data::BuildViewFromInteractions(ev);
  EXPECT_TRUE(v.ok()) << v.status();
  out.clicks = *std::move(v);
  auto t = data::BuildViewFromInteractions(test);
  EXPECT_TRUE(t.ok()) << t.status();
  out.test = *std::move(t);
  return out;
}

const SmallLog& Log() {
  static const SmallLog* log = new SmallLog(MakeLog(6000, 1));
  return *log;
}

using Params = std::vector<std::pair<std::string, std::string>>;

train::TrainSpec Spec(const std::string& loss, const Params& params) {
  train::TrainSpec spec;
  spec.loss = loss;
  spec.feedback = train::FeedbackKind::kClickLog;
  spec.seed = 7;
  spec.params["ranker"] = "linear";
  spec.params["max_positions"] = "5";
  spec.params["batch_size"] = "128";
  spec.params["max_steps"] = "1500";
  spec.params["eval_every"] = "100";
  for (const auto& [k, v] : params) spec.params[k] = v;
  return spec;
}

std::vector<double> Curve(const train::TrainResult& r) {
  return r.diagnostics.at("position_propensities").get<std::vector<double>>();
}

void ExpectCurveNear(const std::vector<double>& p, double tol) {
  ASSERT_EQ(p.size(), static_cast<size_t>(kK));
  EXPECT_EQ(p[0], 1.0);
  for (int i = 0; i < kK; ++i) {
    const double truth = kExam[i] / kExam[0];
    EXPECT_NEAR(p[i], truth, tol * truth) << "position " << i + 1;
  }
}

TEST(DlaTrainerTest, RecoversPbmCurveAndBeatsNaiveRatios) {
  auto r = train::RunTraining(Log().clicks, Spec("dla", {}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  const std::vector<double> p = Curve(*r);
  ExpectCurveNear(p, 0.15);
  const auto naive = r->diagnostics.at("click_rate_ratios").get<std::vector<double>>();
  const double truth = kExam[4] / kExam[0];
  EXPECT_LT(std::abs(p[4] - truth), 0.5 * std::abs(naive[4] - truth));
  EXPECT_EQ(r->model->kind(), "linear-ranker");
  EXPECT_EQ(r->resolved_params.at("propensity_lr"), "0.05");
}

TEST(DlaTrainerTest, RegressionEmRecoversPbmCurve) {
  // gamma = sigmoid(f(x)) cannot be linear in x here (a = exp(w . x)), so
  // the relevance model is a small MLP.
  auto r = train::RunTraining(
      Log().clicks, Spec("regression-em", {{"ranker", "mlp"}, {"hidden", "16"}}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectCurveNear(Curve(*r), 0.15);
}

TEST(DlaTrainerTest, RandomizationRecoversCurveOnShuffledLog) {
  const SmallLog shuffled = MakeLog(20000, 2, /*shuffle=*/true);
  auto r = train::RunTraining(shuffled.clicks,
                              Spec("randomization", {{"max_steps", "50"}}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectCurveNear(Curve(*r), 0.12);
}

TEST(DlaTrainerTest, DebiasedRankersBeatNaiveOnTestLists) {
  std::string oracle;
  for (int i = 0; i < kK; ++i) absl::StrAppend(&oracle, i ? "," : "", kExam[i]);
  auto ipw = train::RunTraining(Log().clicks, Spec("ipw", {{"propensities", oracle}}), {});
  auto naive = train::RunTraining(Log().clicks, Spec("naive-clicks", {}), {});
  ASSERT_TRUE(ipw.ok()) << ipw.status();
  ASSERT_TRUE(naive.ok()) << naive.status();
  EXPECT_EQ(Curve(*naive), std::vector<double>(kK, 1.0));
  auto m_ipw = eval::EvaluateRankerOnLists(*ipw->model, Log().test);
  auto m_naive = eval::EvaluateRankerOnLists(*naive->model, Log().test);
  ASSERT_TRUE(m_ipw.ok() && m_naive.ok());
  // Naive click training learns the logging order's bias on top of
  // relevance; the IPW ranker orders by relevance alone.
  EXPECT_GT(m_ipw->at("ndcg@10"), 0.9);
  EXPECT_GE(m_ipw->at("ndcg@10"), m_naive->at("ndcg@10") - 0.005);
  EXPECT_EQ(m_ipw->at("lists"), 200.0);
}

TEST(DlaTrainerTest, SameSeedSameModel) {
  auto spec = Spec("dla", {{"max_steps", "200"}});
  auto a = train::RunTraining(Log().clicks, spec, {});
  auto b = train::RunTraining(Log().clicks, spec, {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->model->Serialize(), b->model->Serialize());
  EXPECT_EQ(Curve(*a), Curve(*b));
  spec.seed = 8;
  auto c = train::RunTraining(Log().clicks, spec, {});
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->model->Serialize(), c->model->Serialize());
}

TEST(DlaTrainerTest, TraceRecordsTheCurveAtEveryEvaluation) {
  auto r = train::RunTraining(Log().clicks, Spec("dla", {{"max_steps", "300"}}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& trace = r->diagnostics.at("trace");
  ASSERT_EQ(trace.size(), 3u);  // steps 100, 200, 300
  const int best = r->diagnostics.at("best_step").get<int>();
  bool found = false;
  for (const auto& point : trace) {
    const auto p = point.at("position_propensities").get<std::vector<double>>();
    ASSERT_EQ(p.size(), static_cast<size_t>(kK));
    EXPECT_EQ(p[0], 1.0);
    // The returned curve is the one recorded at the best checkpoint.
    if (point.at("step").get<int>() == best) {
      found = true;
      EXPECT_EQ(p, Curve(*r));
    }
  }
  EXPECT_TRUE(found) << "best_step " << best;
}

TEST(DlaTrainerTest, MlpRankerTrainsAndServes) {
  auto r = train::RunTraining(
      Log().clicks,
      Spec("dla", {{"ranker", "mlp"}, {"hidden", "8,4"}, {"max_steps", "100"}}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model->kind(), "mlp-ranker");
  EXPECT_EQ(r->resolved_params.at("hidden"), "8,4");
  auto m = eval::EvaluateRankerOnLists(*r->model, Log().test);
  ASSERT_TRUE(m.ok()) << m.status();
}

TEST(DlaTrainerTest, BadParamsAreRejectedNamingTheKey) {
  const auto& v = Log().clicks;
  EXPECT_THAT(train::RunTraining(v, Spec("dla", {{"bogus", "1"}}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown parameter 'bogus'"));
  EXPECT_THAT(train::RunTraining(v, Spec("dla", {{"lr", "-1"}}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "lr=-1"));
  EXPECT_THAT(train::RunTraining(v, Spec("dla", {{"ranker", "tree"}}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "ranker=tree"));
  EXPECT_THAT(train::RunTraining(v, Spec("dla", {{"hidden", "8,x"}}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "hidden"));
  EXPECT_THAT(train::RunTraining(v, Spec("dla", {{"batch_size", "0"}}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "batch_size=0"));
  EXPECT_THAT(train::RunTraining(v, Spec("ipw", {}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "propensities"));
  EXPECT_THAT(train::RunTraining(v, Spec("ipw", {{"propensities", "1,0.5"}}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_positions=5"));
  EXPECT_THAT(train::RunTraining(v, Spec("ipw", {{"propensities", "1,0,1,1,1"}}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "propensities="));
  EXPECT_THAT(train::RunTraining(v, Spec("naive-clicks", {{"propensities", "1"}}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown parameter 'propensities'"));
  auto spec = Spec("dla", {});
  spec.feedback = train::FeedbackKind::kImplicit;
  EXPECT_THAT(train::RunTraining(v, spec, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "clicklog"));
}

TEST(DlaTrainerTest, NeedsListsPositionsAndFeatures) {
  std::vector<data::Interaction> ev;
  for (int i = 1; i <= 3; ++i) {
    data::Interaction e;
    e.user = "q";
    e.item = absl::StrCat("d", i);
    e.list_id = "l";
    e.position = i;
    e.label = i == 1 ? 1.0f : 0.0f;
    ev.push_back(e);
  }
  auto v = data::BuildViewFromInteractions(ev);
  ASSERT_TRUE(v.ok());
  EXPECT_THAT(train::RunTraining(*v, Spec("dla", {}), {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "feature"));
  for (auto& e : ev) e.position.reset();
  auto v2 = data::BuildViewFromInteractions(ev);
  ASSERT_TRUE(v2.ok());
  EXPECT_THAT(train::RunTraining(*v2, Spec("dla", {}), {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "position"));
}

TEST(DlaTrainerTest, CancelStopsTraining) {
  std::atomic<bool> cancel{true};
  train::TrainContext ctx;
  ctx.cancelled = &cancel;
  EXPECT_THAT(train::RunTraining(Log().clicks, Spec("dla", {}), ctx),
              StatusIs(absl::StatusCode::kCancelled, "cancelled"));
}

}  // namespace
}  // namespace debias::models
