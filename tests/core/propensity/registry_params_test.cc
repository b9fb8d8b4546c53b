// The propensity registry's parameters: read through util::ParamReader, so
// each row's keys have a default, range and doc, and unknown keys are
// refused with the known ones listed.
#include <string>
#include <vector>

#include "core/data/dataset_view.h"
#include "core/propensity/estimators.h"
#include "core/propensity/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::propensity {
namespace {

using ::debias::testing::StatusIs;
using ::testing::ElementsAreArray;

data::DatasetView View() {
  std::vector<data::Interaction> ev;
  for (const auto& [u, i, y] : std::vector<std::tuple<std::string, std::string, float>>{
           {"u1", "a", 1}, {"u2", "a", 1}, {"u3", "a", 1}, {"u1", "b", 1}, {"u2", "c", 0}}) {
    data::Interaction e;
    e.user = u;
    e.item = i;
    e.label = y;
    e.propensity = 0.5f;
    ev.push_back(e);
  }
  return *data::BuildViewFromInteractions(ev);
}

std::vector<std::string> Names(std::string_view estimator) {
  std::vector<std::string> out;
  for (const auto& p : EstimatorParams(estimator)) out.push_back(p.name);
  return out;
}

TEST(RegistryParamsTest, EveryRowListsItsKeysWithDefaultRangeAndDoc) {
  EXPECT_THAT(Names("popularity"), ElementsAreArray({"clip", "eta", "floor", "count"}));
  EXPECT_THAT(Names("naive-bayes"), ElementsAreArray({"clip", "p_y1", "mar_fraction"}));
  EXPECT_THAT(Names("logistic"), ElementsAreArray({"clip", "l2", "lr", "epochs", "neg_ratio",
                                                   "batch_size", "features"}));
  EXPECT_THAT(Names("logged"), ElementsAreArray({"clip", "fallback"}));
  EXPECT_THAT(Names("impressions"), ElementsAreArray({"clip"}));
  EXPECT_TRUE(EstimatorParams("nope").empty());
  for (const EstimatorInfo& row : Estimators()) {
    for (const auto& p : EstimatorParams(row.name)) {
      EXPECT_FALSE(p.type.empty()) << row.name << "." << p.name;
      EXPECT_FALSE(p.default_value.empty()) << row.name << "." << p.name;
      EXPECT_FALSE(p.range.empty()) << row.name << "." << p.name;
      EXPECT_FALSE(p.doc.empty()) << row.name << "." << p.name;
    }
  }
}

TEST(RegistryParamsTest, DefaultsAreTheOptionsStructs) {
  auto find = [](std::string_view est, const std::string& key) {
    for (const auto& p : EstimatorParams(est)) {
      if (p.name == key) return p;
    }
    return util::ParamSpec{};
  };
  EXPECT_EQ(find("popularity", "eta").default_value, util::ParamNumber(PopularityOptions{}.eta));
  EXPECT_EQ(find("popularity", "count").default_value, "positives");
  EXPECT_EQ(find("popularity", "count").range, "positives | events");
  EXPECT_EQ(find("logistic", "epochs").default_value,
            std::to_string(LogisticOptions{}.epochs));
  EXPECT_EQ(find("logistic", "lr").range, "[1e-09, 10]");
  EXPECT_EQ(find("naive-bayes", "mar_fraction").default_value,
            util::ParamNumber(NaiveBayesOptions{}.mar_fraction));
  EXPECT_EQ(find("logged", "fallback").default_value, "none (refuse)");
}

TEST(RegistryParamsTest, UnknownKeysAreRefusedWithTheKnownOnes) {
  auto v = View();
  EXPECT_THAT(FitEstimator("logistic", v, {{"learning_rate", "0.1"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "unknown parameter 'learning_rate' for propensity estimator 'logistic'; "
                       "known: clip, l2, lr, epochs, neg_ratio, batch_size, features"));
  EXPECT_THAT(FitEstimator("impressions", v, {{"eta", "1"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "known: clip"));
}

TEST(RegistryParamsTest, BadValuesNameTheKeyAndTheRange) {
  auto v = View();
  EXPECT_THAT(FitEstimator("popularity", v, {{"eta", "20"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "eta=20: eta must be a number in [1e-09, 10]"));
  EXPECT_THAT(FitEstimator("popularity", v, {{"count", "clicks"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "count=clicks: count must be one of positives, events"));
  EXPECT_THAT(FitEstimator("logistic", v, {{"epochs", "1.5"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "epochs=1.5: epochs must be an integer in [1, 10000]"));
  EXPECT_THAT(FitEstimator("logistic", v, {{"features", "side"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "features=side: no user or item side features were given"));
  EXPECT_THAT(FitEstimator("logged", v, {{"clip", "0"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "clip=0: clip must be a number in"));
}

TEST(RegistryParamsTest, TheAcceptedSpellingsStillWork) {
  auto v = View();
  EXPECT_OK(FitEstimator("popularity", v, {{"eta", "1"}, {"floor", "0.01"}, {"count", "events"}},
                         {}));
  EXPECT_OK(FitEstimator("popularity", v, {{"count", "positives"}, {"clip", "0.1"}}, {}));
  EXPECT_OK(FitEstimator("naive-bayes", v, {{"p_y1", "0.3"}}, {}));
  EXPECT_OK(FitEstimator("logistic", v,
                         {{"l2", "0"}, {"lr", "0.1"}, {"epochs", "2"}, {"neg_ratio", "1"},
                          {"batch_size", "8"}, {"features", "ids"}},
                         {}));
  EXPECT_OK(FitEstimator("logged", v, {{"fallback", "0.5"}}, {}));
  auto clipped = FitEstimator("popularity", v, {{"clip", "0.9"}}, {});
  ASSERT_OK(clipped);
  EXPECT_EQ((*clipped)->name(), "clipped(popularity)");
}

}  // namespace
}  // namespace debias::propensity
