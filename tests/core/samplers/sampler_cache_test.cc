#include "core/samplers/sampler_cache.h"

#include <algorithm>

#include "core/data/dataset_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/fixtures.h"
#include "tests/util/status_matchers.h"

namespace debias::samplers {
namespace {

using ::debias::testing::Ev;
using ::debias::testing::StatusIs;

// u1 clicked a and b; u2 clicked c. Items a..e.
SampleRequest Request(uint64_t data_version = 1) {
  auto view = *data::BuildViewFromInteractions(
      {Ev("u1", "a", 1), Ev("u1", "b", 1), Ev("u2", "c", 1), Ev("u2", "d", 0),
       Ev("u3", "e", 1)});
  view.data_version = data_version;
  SampleRequest req;
  req.view = std::make_shared<const data::DatasetView>(std::move(view));
  req.dataset = "clicks";
  return req;
}

TEST(SamplerCacheTest, DrawsAreNegativesByKeyAndSeeded) {
  SamplerCache cache;
  SampleRequest req = Request();
  auto drawn = cache.Sample(req, "u1", 50, 7);
  ASSERT_OK(drawn);
  ASSERT_EQ(drawn->size(), 50u);
  for (const std::string& item : *drawn) {
    EXPECT_THAT(item, ::testing::AnyOf("c", "d", "e"));  // never u1's clicks
  }
  // Same seed, same draw (from the cached sampler); another seed differs.
  EXPECT_EQ(*cache.Sample(req, "u1", 50, 7), *drawn);
  EXPECT_NE(*cache.Sample(req, "u1", 50, 8), *drawn);
  // Popularity with power 0 is uniform over the same items.
  req.sampler = "popularity";
  req.power = 0;
  auto pop = cache.Sample(req, "u1", 20, 7);
  ASSERT_OK(pop);
  for (const std::string& item : *pop) EXPECT_THAT(item, ::testing::AnyOf("c", "d", "e"));
}

TEST(SamplerCacheTest, ErrorsNameWhatIsWrong) {
  SamplerCache cache(/*capacity=*/1);
  SampleRequest req = Request();
  EXPECT_THAT(cache.Sample(req, "nobody", 3, 1),
              StatusIs(absl::StatusCode::kNotFound, "user 'nobody' is not in dataset 'clicks'"));
  req.sampler = "bogus";
  EXPECT_THAT(cache.Sample(req, "u1", 3, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "known samplers"));
  req.sampler = "nbpo";
  EXPECT_THAT(cache.Sample(req, "u1", 3, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "needs model_id"));
  // An NBPO model trained on other key tables: the dataset changed.
  NbpoFactors factors;
  std::vector<std::string> users = {"u1"}, items = {"a"};
  req.nbpo = &factors;
  req.model_id = 9;
  req.model_user_keys = &users;
  req.model_item_keys = &items;
  EXPECT_THAT(cache.Sample(req, "u1", 3, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, "changed since model 9"));
  // A full cache (capacity 1) is emptied, not grown; draws stay right.
  SampleRequest a = Request(1), b = Request(2);
  for (int round = 0; round < 3; ++round) {
    auto x = cache.Sample(a, "u2", 5, 3);
    auto y = cache.Sample(b, "u2", 5, 3);
    ASSERT_OK(x);
    ASSERT_OK(y);
    EXPECT_EQ(*x, *y);
  }
}

}  // namespace
}  // namespace debias::samplers
