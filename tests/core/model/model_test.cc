#include "core/model/model.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::model {
namespace {

using ::debias::testing::StatusIs;
using ::testing::ElementsAre;

// An id model that scores (u, i) as 10 u + i through ScorePair only.
class PairModel final : public Model {
 public:
  std::string_view kind() const override { return "pair"; }
  uint32_t num_users() const override { return 2; }
  uint32_t num_items() const override { return 3; }
  std::string Serialize() const override { return "pair"; }

 protected:
  float ScorePair(uint32_t u, uint32_t i) const override { return 10.0f * u + i; }
};

TEST(ModelTest, ScoreItemsAndScoreAllDefaultToScorePair) {
  PairModel m;
  std::vector<uint32_t> items = {2, 0};
  std::vector<float> out(2);
  m.ScoreItems(1, items, out);
  EXPECT_THAT(out, ElementsAre(12.0f, 10.0f));
  std::vector<float> all(3);
  m.ScoreAll(1, all);
  EXPECT_THAT(all, ElementsAre(10.0f, 11.0f, 12.0f));
}

TEST(ModelTest, IdModelRefusesFeatureVectors) {
  PairModel m;
  EXPECT_EQ(m.feature_dim(), 0);
  std::vector<float> features(4), out(1);
  EXPECT_THAT(m.ScoreFeatures(features, out),
              StatusIs(absl::StatusCode::kFailedPrecondition, "'pair'"));
}

}  // namespace
}  // namespace debias::model
