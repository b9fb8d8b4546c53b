#include "core/synth/kb_world.h"

#include <set>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::synth {
namespace {

using ::debias::testing::StatusIs;

TEST(KbWorldTest, SizesAndRatingsAsDocumented) {
  KbWorldOptions o;  // 200 x 150, ~5000 events, 16 test items per user
  auto w = MakeKbWorld(o);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->train.user_keys.size(), o.users);
  EXPECT_EQ(w->train.item_keys.size(), o.items);
  EXPECT_GT(w->train.num_events(), 3000u);
  EXPECT_LT(w->train.num_events(), 8000u);
  for (float r : w->train.label) EXPECT_TRUE(r == 1.0f || r == 5.0f) << r;
  ASSERT_EQ(w->test_label.size(), size_t(o.users) * o.test_per_user);
  // Each user's test items are distinct.
  std::set<std::pair<uint32_t, uint32_t>> pairs;
  for (size_t k = 0; k < w->test_user.size(); ++k) {
    pairs.insert({w->test_user[k], w->test_item[k]});
  }
  EXPECT_EQ(pairs.size(), w->test_user.size());
  EXPECT_GT(w->mcar_pos_rate, 0.0);
  EXPECT_LT(w->mcar_pos_rate, 1.0);
}

TEST(KbWorldTest, DeterministicInTheSeed) {
  KbWorldOptions o;
  auto a = MakeKbWorld(o), b = MakeKbWorld(o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->train.user, b->train.user);
  EXPECT_EQ(a->train.item, b->train.item);
  EXPECT_EQ(a->train.label, b->train.label);
  EXPECT_EQ(a->test_item, b->test_item);
  EXPECT_EQ(a->test_label, b->test_label);
  o.seed = 2;
  auto c = MakeKbWorld(o);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->train.item, c->train.item);
}

TEST(KbWorldTest, RefusesImpossibleSizes) {
  KbWorldOptions o;
  o.users = 0;
  EXPECT_THAT(MakeKbWorld(o), StatusIs(absl::StatusCode::kInvalidArgument, "users=0"));
  o = {};
  o.events = uint64_t(o.users) * o.items;  // more than half the grid
  EXPECT_THAT(MakeKbWorld(o), StatusIs(absl::StatusCode::kInvalidArgument, "events="));
  o = {};
  o.test_per_user = o.items + 1;
  EXPECT_THAT(MakeKbWorld(o), StatusIs(absl::StatusCode::kInvalidArgument, "test_per_user="));
}

}  // namespace
}  // namespace debias::synth
