#include "core/data/dataset_view.h"

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::data {
namespace {

using ::debias::testing::StatusIs;
using ::testing::ElementsAre;

Interaction Ev(std::string user, std::string item, float label = 1.0f) {
  Interaction e;
  e.user = std::move(user);
  e.item = std::move(item);
  e.label = label;
  return e;
}

TEST(BuildViewTest, UserMajorCsrWithIdsByFirstAppearance) {
  // Users appear as b, a, c; b has 2 events, a 3, c 1.
  std::vector<Interaction> events = {
      Ev("b", "x", 1), Ev("a", "y", 0), Ev("b", "z", 1),
      Ev("a", "x", 1), Ev("c", "y", 0), Ev("a", "w", 1)};
  absl::StatusOr<DatasetView> v = BuildViewFromInteractions(events);
  ASSERT_OK(v);
  EXPECT_THAT(v->user_keys, ElementsAre("b", "a", "c"));
  EXPECT_THAT(v->item_keys, ElementsAre("x", "y", "z", "w"));
  EXPECT_EQ(v->num_events(), 6u);
  EXPECT_THAT(v->user_offsets, ElementsAre(0, 2, 5, 6));
  EXPECT_THAT(v->user, ElementsAre(0, 0, 1, 1, 1, 2));
  // Stable within a user: original order kept.
  EXPECT_THAT(v->item, ElementsAre(0, 2, 1, 0, 3, 1));
  EXPECT_THAT(v->label, ElementsAre(1, 1, 0, 1, 1, 0));
  EXPECT_EQ(v->UserRange(1), std::make_pair(uint64_t{2}, uint64_t{5}));
  // No optional column is carried by any event, so none exists.
  EXPECT_TRUE(v->timestamp.empty());
  EXPECT_TRUE(v->list.empty());
  EXPECT_FALSE(v->has_positions());
  EXPECT_FALSE(v->has_propensities());
  EXPECT_EQ(v->feature_dim, 0);
  EXPECT_TRUE(v->features.empty());
  EXPECT_GT(v->MemoryBytes(), 0u);
}

TEST(BuildViewTest, OptionalColumnsAreBackfilled) {
  std::vector<Interaction> events = {Ev("u", "a"), Ev("u", "b"), Ev("u", "c"),
                                     Ev("v", "a")};
  events[1].timestamp = 42;
  events[1].list_id = "L";
  events[2].position = 3;
  events[2].propensity = 0.25f;
  events[2].features = {1.0f, 2.0f};
  events[3].list_id = "M";
  events[2].event_id = "e2";
  absl::StatusOr<DatasetView> v = BuildViewFromInteractions(events);
  ASSERT_OK(v);
  EXPECT_THAT(v->event_id, ElementsAre("", "", "e2", ""));
  EXPECT_THAT(v->timestamp, ElementsAre(INT64_MIN, 42, INT64_MIN, INT64_MIN));
  EXPECT_THAT(v->list, ElementsAre(kNoList, 0, kNoList, 1));
  EXPECT_THAT(v->list_keys, ElementsAre("L", "M"));
  EXPECT_THAT(v->position, ElementsAre(0, 0, 3, 0));
  EXPECT_THAT(v->propensity, ElementsAre(0.0f, 0.0f, 0.25f, 0.0f));
  EXPECT_EQ(v->feature_dim, 2);
  EXPECT_THAT(v->features, ElementsAre(0, 0, 0, 0, 1, 2, 0, 0));
  EXPECT_THAT(v->FeaturesOf(2), ElementsAre(1.0f, 2.0f));
  EXPECT_THAT(v->FeaturesOf(3), ElementsAre(0.0f, 0.0f));
}

TEST(BuildViewTest, NoEventIdsNoColumn) {
  absl::StatusOr<DatasetView> v = BuildViewFromInteractions({Ev("u", "a"), Ev("v", "b")});
  ASSERT_OK(v);
  EXPECT_TRUE(v->event_id.empty());
}

TEST(BuildViewTest, FeatureLengthMismatchFails) {
  std::vector<Interaction> events = {Ev("u", "a"), Ev("u", "b")};
  events[0].features = {1.0f};
  events[1].features = {1.0f, 2.0f};
  EXPECT_THAT(BuildViewFromInteractions(events),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "different lengths (first had 1)"));
}

TEST(BuildViewTest, EmptyInput) {
  absl::StatusOr<DatasetView> v = BuildViewFromInteractions({});
  ASSERT_OK(v);
  EXPECT_EQ(v->num_events(), 0u);
  EXPECT_THAT(v->user_offsets, ElementsAre(0));
  DatasetStats s = ComputeStats(*v);
  EXPECT_EQ(s.events, 0u);
  EXPECT_EQ(s.density, 0.0);
}

TEST(DatasetViewBuilderTest, UsersWithoutEventsGetEmptyRanges) {
  DatasetViewBuilder b;
  b.Add(0, 0, 1.0f, std::nullopt, kNoList, std::nullopt, std::nullopt, {});
  b.Add(2, 1, 1.0f, std::nullopt, kNoList, std::nullopt, std::nullopt, {});
  absl::StatusOr<DatasetView> v = b.Finish({"a", "b", "c", "d"}, {"x", "y"}, {}, 7);
  ASSERT_OK(v);
  EXPECT_THAT(v->user_offsets, ElementsAre(0, 1, 1, 2, 2));
  EXPECT_EQ(v->data_version, 7u);
  // The builder is reusable after Finish.
  b.Add(0, 0, 1.0f, 5, kNoList, std::nullopt, std::nullopt, {});
  absl::StatusOr<DatasetView> w = b.Finish({"a"}, {"x"}, {}, 8);
  ASSERT_OK(w);
  EXPECT_THAT(w->timestamp, ElementsAre(5));
  EXPECT_THAT(w->user_offsets, ElementsAre(0, 1));
}

TEST(DatasetViewBuilderTest, RejectsBadOrderAndIdsOutsideTables) {
  DatasetViewBuilder b;
  b.Add(1, 0, 1.0f, std::nullopt, kNoList, std::nullopt, std::nullopt, {});
  b.Add(0, 0, 1.0f, std::nullopt, kNoList, std::nullopt, std::nullopt, {});
  EXPECT_THAT(b.Finish({"a", "b"}, {"x"}, {}, 0),
              StatusIs(absl::StatusCode::kInternal, "user-major"));
  DatasetViewBuilder c;
  c.Add(0, 3, 1.0f, std::nullopt, kNoList, std::nullopt, std::nullopt, {});
  EXPECT_THAT(c.Finish({"a"}, {"x"}, {}, 0),
              StatusIs(absl::StatusCode::kDataLoss, "event 0"));
  DatasetViewBuilder d;
  d.Add(0, 0, 1.0f, std::nullopt, 2, std::nullopt, std::nullopt, {});
  EXPECT_THAT(d.Finish({"a"}, {"x"}, {"L"}, 0),
              StatusIs(absl::StatusCode::kDataLoss, "event 0"));
}

TEST(ComputeStatsTest, Counts) {
  std::vector<Interaction> events = {Ev("u", "a", 1), Ev("u", "b", 0),
                                     Ev("v", "a", 3), Ev("w", "c", 0),
                                     Ev("w", "a", -2)};
  events[0].position = 4;
  events[2].position = 9;
  events[0].propensity = 0.5f;
  events[3].propensity = 0.1f;
  events[1].list_id = "L1";
  events[4].list_id = "L2";
  absl::StatusOr<DatasetView> v = BuildViewFromInteractions(events);
  ASSERT_OK(v);
  DatasetStats s = ComputeStats(*v);
  EXPECT_EQ(s.events, 5u);
  EXPECT_EQ(s.users, 3u);
  EXPECT_EQ(s.items, 3u);
  EXPECT_EQ(s.positives, 2u);
  EXPECT_EQ(s.zero_labels, 2u);
  EXPECT_EQ(s.min_label, -2.0f);
  EXPECT_EQ(s.max_label, 3.0f);
  EXPECT_EQ(s.lists, 2u);
  EXPECT_EQ(s.max_position, 9);
  EXPECT_EQ(s.with_propensity, 2u);
  EXPECT_EQ(s.feature_dim, 0);
  EXPECT_DOUBLE_EQ(s.density, 5.0 / 9.0);
  EXPECT_TRUE(s.IsExplicit());
}

TEST(ComputeStatsTest, ImplicitWhenOnlyClicksAndUnusedKeysNotCounted) {
  DatasetViewBuilder b;
  b.Add(0, 0, 1.0f, std::nullopt, kNoList, std::nullopt, std::nullopt, {});
  b.Add(0, 2, 1.0f, std::nullopt, kNoList, std::nullopt, std::nullopt, {});
  absl::StatusOr<DatasetView> v = b.Finish({"a", "b"}, {"x", "y", "z"}, {}, 0);
  ASSERT_OK(v);
  DatasetStats s = ComputeStats(*v);
  EXPECT_EQ(s.users, 1u);
  EXPECT_EQ(s.items, 2u);
  EXPECT_EQ(s.min_label, 1.0f);
  EXPECT_EQ(s.max_label, 1.0f);
  EXPECT_DOUBLE_EQ(s.density, 1.0);
  EXPECT_FALSE(s.IsExplicit());
}

TEST(ComputeStatsTest, RatingsAboveOneAreExplicitFeedback) {
  // Coat-style ratings 1..5 carry no zeros but are observed labels.
  DatasetViewBuilder b;
  b.Add(0, 0, 1.0f, std::nullopt, kNoList, std::nullopt, std::nullopt, {});
  b.Add(0, 1, 4.0f, std::nullopt, kNoList, std::nullopt, std::nullopt, {});
  absl::StatusOr<DatasetView> v = b.Finish({"a"}, {"x", "y"}, {}, 0);
  ASSERT_OK(v);
  DatasetStats s = ComputeStats(*v);
  EXPECT_EQ(s.zero_labels, 0u);
  EXPECT_TRUE(s.IsExplicit());
}

}  // namespace
}  // namespace debias::data
