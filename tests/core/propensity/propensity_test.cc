#include <cmath>

#include "core/data/dataset_view.h"
#include "core/propensity/estimator.h"
#include "core/propensity/estimators.h"
#include "core/propensity/pair_index.h"
#include "core/propensity/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/fixtures.h"
#include "tests/util/status_matchers.h"

namespace debias::propensity {
namespace {

using ::debias::testing::StatusIs;

using ::debias::testing::Ev;

// Items: a has 4 clicks, b 1, c 0 positives (only a zero-label event).
data::DatasetView ClickView() {
  std::vector<data::Interaction> ev = {
      Ev("u1", "a", 1), Ev("u2", "a", 1), Ev("u3", "a", 1), Ev("u4", "a", 1),
      Ev("u1", "b", 1), Ev("u2", "c", 0)};
  return *data::BuildViewFromInteractions(ev);
}

uint32_t ItemId(const data::DatasetView& v, const std::string& key) {
  for (uint32_t i = 0; i < v.num_items(); ++i)
    if (v.item_keys[i] == key) return i;
  return 999;
}

TEST(PopularityTest, FormulaAndFloor) {
  auto v = ClickView();
  PopularityOptions o;
  o.eta = 0.5;
  auto est = FitPopularity(v, LabelRule{}, o);
  ASSERT_OK(est);
  EXPECT_FLOAT_EQ((*est)->Pair(0, ItemId(v, "a")), 1.0f);
  EXPECT_FLOAT_EQ((*est)->Pair(0, ItemId(v, "b")), std::sqrt(0.25f));
  // c has no positive: floor = (0.5 / 4)^0.5, never 0.
  EXPECT_FLOAT_EQ((*est)->Pair(0, ItemId(v, "c")), std::sqrt(0.125f));
  // Out-of-range item gets the floor, not a crash.
  EXPECT_FLOAT_EQ((*est)->Pair(0, 12345), std::sqrt(0.125f));
  o.eta = 1.0;
  o.floor = 0.01;
  est = FitPopularity(v, LabelRule{}, o);
  ASSERT_OK(est);
  EXPECT_FLOAT_EQ((*est)->Pair(0, ItemId(v, "b")), 0.25f);
  EXPECT_FLOAT_EQ((*est)->Pair(0, ItemId(v, "c")), 0.01f);
  // Counting every event (P(rated)): c counts 1 -> (1/4)^1.
  o.count_all_events = true;
  est = FitPopularity(v, LabelRule{}, o);
  EXPECT_FLOAT_EQ((*est)->Pair(0, ItemId(v, "c")), 0.25f);
}

TEST(PopularityTest, RejectsBadOptionsAndNoPositives) {
  auto v = ClickView();
  PopularityOptions o;
  o.eta = 0;
  EXPECT_THAT(FitPopularity(v, LabelRule{}, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "eta"));
  auto zero = *data::BuildViewFromInteractions({Ev("u", "i", 0)});
  EXPECT_THAT(FitPopularity(zero, LabelRule{}, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "no counted"));
}

TEST(ClipTest, ClipsAndCounts) {
  auto v = ClickView();
  PopularityOptions o;
  o.eta = 1.0;
  auto est = FitPopularity(v, LabelRule{}, o);
  ASSERT_OK(est);
  auto clipped = Clip(std::move(*est), 0.5);
  ASSERT_OK(clipped);
  EXPECT_FLOAT_EQ((*clipped)->Pair(0, ItemId(v, "a")), 1.0f);
  EXPECT_FLOAT_EQ((*clipped)->Pair(0, ItemId(v, "b")), 0.5f);
  nlohmann::json d = Diagnostics(**clipped, v, LabelRule{});
  // Events on b (0.25) and c (floor 0.125) are raised: 2 of 6.
  EXPECT_EQ(d["clipped"].get<int>(), 2);
  EXPECT_NEAR(d["clipped_fraction"].get<double>(), 2.0 / 6, 1e-12);
  EXPECT_FLOAT_EQ(d["propensity"]["min"].get<double>(), 0.5);
  EXPECT_FLOAT_EQ(d["inverse_weight"]["max"].get<double>(), 2.0);
  // ESS of weights {1,1,1,1,2,2}: 64 / 12.
  EXPECT_NEAR(d["ess"].get<double>(), 64.0 / 12.0, 1e-9);
  // Largest 1% of 6 weights is the single largest: 2 of a total of 8.
  EXPECT_NEAR(d["top1pct_weight_share"].get<double>(), 2.0 / 8, 1e-12);
  EXPECT_THAT(Clip(nullptr, 0), StatusIs(absl::StatusCode::kInvalidArgument, "clip"));
}

// Coat-like explicit view: 3 users x 4 items, 6 ratings, 2 of them >= 3.
data::DatasetView ExplicitView() {
  std::vector<data::Interaction> ev = {
      Ev("u1", "a", 5), Ev("u1", "b", 1), Ev("u2", "c", 2),
      Ev("u2", "d", 3), Ev("u3", "a", 1), Ev("u3", "b", 2)};
  return *data::BuildViewFromInteractions(ev);
}

TEST(NaiveBayesTest, Formula) {
  auto v = ExplicitView();
  LabelRule rule{3.0};
  NaiveBayesOptions o;
  o.p_y1 = 0.25;
  auto est = FitNaiveBayes(v, rule, o);
  ASSERT_OK(est);
  // P(o)=6/12, P(y=1|o)=1/3: p1 = (1/3)(1/2)/(1/4), p0 = (2/3)(1/2)/(3/4).
  EXPECT_NEAR((*est)->Pair(0, 0, 1), 2.0 / 3, 1e-6);
  EXPECT_NEAR((*est)->Pair(0, 0, 0), 4.0 / 9, 1e-6);
  EXPECT_NEAR((*est)->Pair(0, 0, kUnknownLabel), 0.5, 1e-6);
  EXPECT_NEAR((*est)->Event(v, 0, rule.Binary(v.label[0])),
              v.label[0] >= 3 ? 2.0 / 3 : 4.0 / 9, 1e-6);
}

TEST(NaiveBayesTest, FromMarSample) {
  auto v = ExplicitView();
  // MAR sample: 1 positive of 4; the full slice gives P(y=1) = 1/4.
  auto mar = *data::BuildViewFromInteractions(
      {Ev("u1", "c", 4), Ev("u2", "a", 1), Ev("u3", "c", 2), Ev("u3", "d", 1)});
  NaiveBayesOptions o;
  o.mar = &mar;
  o.mar_rule = LabelRule{3.0};
  o.mar_fraction = 1.0;
  auto est = FitNaiveBayes(v, LabelRule{3.0}, o);
  ASSERT_OK(est);
  EXPECT_NEAR((*est)->Pair(0, 0, 1), 2.0 / 3, 1e-6);
  EXPECT_NEAR((*est)->Describe()["p_y1"].get<double>(), 0.25, 1e-12);
  EXPECT_THAT(FitNaiveBayes(v, LabelRule{3.0}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "p_y1"));
}

TEST(LoggedTest, EventAndPairValues) {
  auto v = *data::BuildViewFromInteractions(
      {Ev("u1", "a", 1, 0.5f), Ev("u1", "b", 1, 0.2f), Ev("u2", "a", 1, 0.8f)});
  auto est = FitLogged(v, {});
  ASSERT_OK(est);
  for (size_t e = 0; e < v.num_events(); ++e) {
    EXPECT_FLOAT_EQ((*est)->Event(v, e, 1), v.propensity[e]);
  }
  // Unlogged pair: the smallest logged value.
  EXPECT_FLOAT_EQ((*est)->Pair(1, ItemId(v, "b")), 0.2f);
  auto none = *data::BuildViewFromInteractions({Ev("u", "i", 1)});
  EXPECT_THAT(FitLogged(none, {}), StatusIs(absl::StatusCode::kFailedPrecondition, "logged"));
}

TEST(LogisticTest, PopularItemsGetHigherPropensity) {
  // 40 users, 10 items; item k observed by 4*(10-k) users (rough).
  std::vector<data::Interaction> ev;
  for (int u = 0; u < 40; ++u)
    for (int i = 0; i < 10; ++i)
      if (u < 4 * (10 - i) - 2) ev.push_back(Ev("u" + std::to_string(u), "i" + std::to_string(i), 1));
  auto v = *data::BuildViewFromInteractions(ev);
  LogisticOptions o;
  o.epochs = 40;
  auto est = FitLogistic(v, o);
  ASSERT_OK(est);
  float p0 = (*est)->Pair(39, ItemId(v, "i0")), p9 = (*est)->Pair(39, ItemId(v, "i9"));
  EXPECT_GT(p0, p9);
  // The mean propensity over the grid approximates the observed share.
  double mean = 0;
  for (uint32_t u = 0; u < v.num_users(); ++u)
    for (uint32_t i = 0; i < v.num_items(); ++i) mean += (*est)->Pair(u, i);
  mean /= v.num_users() * v.num_items();
  double share = static_cast<double>(v.num_events()) / (v.num_users() * v.num_items());
  EXPECT_NEAR(mean, share, 0.1);
}

TEST(RegistryTest, FitsByNameAndRejectsBadParams) {
  auto v = ClickView();
  FitContext ctx;
  auto est = FitEstimator("popularity", v, {{"eta", "1"}, {"clip", "0.5"}}, ctx);
  ASSERT_OK(est);
  EXPECT_EQ((*est)->name(), "clipped(popularity)");
  EXPECT_FLOAT_EQ((*est)->Pair(0, ItemId(v, "b")), 0.5f);
  EXPECT_THAT(FitEstimator("popularity", v, {{"bogus", "1"}}, ctx),
              StatusIs(absl::StatusCode::kInvalidArgument, "bogus"));
  EXPECT_THAT(FitEstimator("popularity", v, {{"eta", "x"}}, ctx),
              StatusIs(absl::StatusCode::kInvalidArgument, "eta=x"));
  EXPECT_THAT(FitEstimator("nope", v, {}, ctx),
              StatusIs(absl::StatusCode::kNotFound, "popularity"));
}

TEST(PairIndexTest, Membership) {
  auto v = ClickView();
  PairIndex idx = PairIndex::Build(v);
  EXPECT_EQ(idx.size(), 6u);
  for (size_t e = 0; e < v.num_events(); ++e) EXPECT_TRUE(idx.Contains(v.user[e], v.item[e]));
  EXPECT_FALSE(idx.Contains(2, ItemId(v, "b")));
  EXPECT_FALSE(idx.Contains(999, 0));
}

}  // namespace
}  // namespace debias::propensity
