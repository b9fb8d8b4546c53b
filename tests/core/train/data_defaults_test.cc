// The front door's data rules (core/train/data_defaults.h) and RunTraining,
// which applies them to every trainer of the registry.
#include "core/train/data_defaults.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/data/dataset_view.h"
#include "core/models/mf_model.h"
#include "core/train/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::train {
namespace {

using ::debias::testing::StatusIs;
using ::testing::HasSubstr;

// Explicit ratings 1..5 on a small grid: observed with a probability that
// grows with the rating (MNAR), rating from a low-rank score.
data::DatasetView Ratings(bool binarise, bool with_propensity = false) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> n01(0, 1);
  std::uniform_real_distribution<float> u01(0, 1);
  const int nu = 120, ni = 60, d = 3;
  std::vector<float> a(nu * d), b(ni * d);
  for (auto& x : a) x = n01(rng);
  for (auto& x : b) x = n01(rng);
  std::vector<data::Interaction> ev;
  for (int u = 0; u < nu; ++u) {
    for (int i = 0; i < ni; ++i) {
      float z = 0;
      for (int k = 0; k < d; ++k) z += a[u * d + k] * b[i * d + k];
      const int r = std::clamp(static_cast<int>(std::lround(3 + z)), 1, 5);
      const float p = 0.05f + 0.06f * r;
      if (u01(rng) >= p) continue;
      data::Interaction e;
      e.user = "u" + std::to_string(u);
      e.item = "i" + std::to_string(i);
      e.label = binarise ? (r >= 3 ? 1.0f : 0.0f) : static_cast<float>(r);
      if (with_propensity) e.propensity = p;
      ev.push_back(e);
    }
  }
  return *data::BuildViewFromInteractions(ev);
}

TEST(DataDefaultsTest, BinaryLabelsAreNeverRethresholded) {
  const data::DatasetView v = Ratings(/*binarise=*/true);
  auto r = ResolveLabels(v, FeedbackKind::kExplicit, std::nullopt);
  ASSERT_OK(r);
  EXPECT_EQ(*r->rule.threshold, 0.5);
  EXPECT_THAT(r->source, HasSubstr("already 0/1"));
  // A threshold meant for ratings would make every label 0: refused.
  EXPECT_THAT(ResolveLabels(v, FeedbackKind::kExplicit, 3.0),
              StatusIs(absl::StatusCode::kInvalidArgument, "already 0/1"));
  ASSERT_OK(ResolveLabels(v, FeedbackKind::kExplicit, 1.0));
}

TEST(DataDefaultsTest, RatingsDefaultToTheMidpointOfTheScale) {
  const data::DatasetView v = Ratings(/*binarise=*/false);
  auto r = ResolveLabels(v, FeedbackKind::kExplicit, std::nullopt);
  ASSERT_OK(r);
  EXPECT_EQ(*r->rule.threshold, 3.0);
  EXPECT_THAT(r->source, HasSubstr("midpoint"));
  auto given = ResolveLabels(v, FeedbackKind::kExplicit, 4.0);
  ASSERT_OK(given);
  EXPECT_EQ(*given->rule.threshold, 4.0);
  auto implicit = ResolveLabels(v, FeedbackKind::kImplicit, std::nullopt);
  ASSERT_OK(implicit);
  EXPECT_FALSE(implicit->rule.threshold.has_value());
}

TEST(DataDefaultsTest, PropensityComesFromWhatTheDataHas) {
  // Logged propensities on every event win.
  EXPECT_EQ(ChoosePropensity(Ratings(true, true), FeedbackKind::kExplicit, true).name,
            "logged");
  // A named MAR sample: naive-Bayes.
  EXPECT_EQ(ChoosePropensity(Ratings(true), FeedbackKind::kExplicit, true).name, "naive-bayes");
  // Neither: observation popularity, with a warning that names the fix.
  PropensityChoice c = ChoosePropensity(Ratings(true), FeedbackKind::kExplicit, false);
  EXPECT_EQ(c.name, "popularity");
  EXPECT_EQ(c.params.at("count"), "events");
  EXPECT_THAT(c.warning, HasSubstr("mar_dataset"));
  // Implicit: impressions (label-0 events) before click popularity.
  PropensityChoice imp = ChoosePropensity(Ratings(true), FeedbackKind::kImplicit, false);
  EXPECT_EQ(imp.name, "impressions");
  std::vector<data::Interaction> clicks = {{.user = "a", .item = "x", .label = 1},
                                           {.user = "b", .item = "y", .label = 1}};
  PropensityChoice pop =
      ChoosePropensity(*data::BuildViewFromInteractions(clicks), FeedbackKind::kImplicit, false);
  EXPECT_EQ(pop.name, "popularity");
  EXPECT_THAT(pop.warning, HasSubstr("mix relevance into exposure"));
}

TEST(DataDefaultsTest, DegenerateModelsAreRefused) {
  const data::DatasetView v = Ratings(true);
  models::MfParams p;
  p.user_factors = models::RowMatrix::Zero(v.num_users(), 2);
  p.item_factors = models::RowMatrix::Zero(v.num_items(), 2);
  auto flat = models::MfModel::Create(p);
  ASSERT_OK(flat);
  EXPECT_THAT(CheckNotDegenerate(**flat, v, "lower l2", nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition, "degenerate: near-constant"));
  std::mt19937_64 rng(1);
  std::normal_distribution<float> n01(0, 1);
  for (Eigen::Index k = 0; k < p.user_factors.size(); ++k) p.user_factors.data()[k] = n01(rng);
  for (Eigen::Index k = 0; k < p.item_factors.size(); ++k) p.item_factors.data()[k] = n01(rng);
  auto ok = models::MfModel::Create(p);
  ASSERT_OK(ok);
  nlohmann::json diag;
  ASSERT_OK(CheckNotDegenerate(**ok, v, "", &diag));
  EXPECT_GT(diag["score_check"]["std"].get<double>(), 0.1);
  p.user_factors *= 100.0f;
  auto hot = models::MfModel::Create(p);
  ASSERT_OK(hot);
  EXPECT_THAT(CheckNotDegenerate(**hot, v, "", nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition, "degenerate: saturated logits"));
}

TEST(RunTrainingTest, DefaultsComeFromTheDataAndAreRecorded) {
  TrainSpec s;
  s.loss = "ips";
  s.feedback = FeedbackKind::kExplicit;
  s.params = {{"epochs", "5"}, {"dim", "8"}};
  // Raw ratings: binarised at the midpoint; popularity of observed events.
  auto r = RunTraining(Ratings(false), s, {});
  ASSERT_OK(r);
  const auto& d = r->diagnostics["data_defaults"];
  EXPECT_EQ(d["propensity"], "popularity");
  EXPECT_THAT(d["propensity_reason"].get<std::string>(), HasSubstr("no logged"));
  EXPECT_THAT(d["labels"].get<std::string>(), HasSubstr("midpoint"));
  EXPECT_EQ(r->resolved_params.at("threshold"), "3");
  ASSERT_TRUE(r->diagnostics.contains("warnings"));
  // The same on the binarised copy: the labels are used as they are, for the
  // MF family and kernel balancing alike (the KB default threshold 3 would
  // otherwise turn every 0/1 label into a negative).
  for (const char* loss : {"ips", "akbips"}) {
    s.loss = loss;
    if (s.loss == "akbips") s.params = {{"max_epochs", "5"}};
    auto b = RunTraining(Ratings(true), s, {});
    ASSERT_OK(b) << loss;
    EXPECT_THAT(b->diagnostics["data_defaults"]["labels"].get<std::string>(),
                HasSubstr("already 0/1"));
  }
}

TEST(RunTrainingTest, ADegenerateModelEndsTheJobWithAnError) {
  TrainSpec s;
  s.loss = "ips";
  s.feedback = FeedbackKind::kExplicit;
  s.params = {{"epochs", "5"}, {"dim", "8"}, {"l2", "10"}};
  auto r = RunTraining(Ratings(true), s, {});
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kFailedPrecondition, "degenerate"));
  EXPECT_THAT(r.status().message(), HasSubstr("l2 (now 10)"));
}

}  // namespace
}  // namespace debias::train
