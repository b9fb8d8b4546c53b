#include "core/eval/ranking_eval.h"

#include <cmath>

#include "core/data/dataset_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::eval {
namespace {

using ::debias::testing::StatusIs;
const double kL3 = 1.0 / std::log2(3.0);

// Users x, y; items p, q, r; a fixed score table.
class TableModel final : public model::Model {
 public:
  std::string_view kind() const override { return "table"; }
  uint32_t num_users() const override { return 2; }
  uint32_t num_items() const override { return 3; }
  std::string Serialize() const override { return ""; }

 protected:
  float ScorePair(uint32_t u, uint32_t i) const override {
    static const float t[2][3] = {{0.1f, 0.9f, 0.5f}, {0.8f, 0.2f, 0.3f}};
    return t[u][i];
  }
};

data::Interaction Ev(std::string u, std::string i, float label) {
  data::Interaction e;
  e.user = std::move(u);
  e.item = std::move(i);
  e.label = label;
  return e;
}

const std::vector<std::string> kUsers = {"x", "y"}, kItems = {"p", "q", "r"};

TEST(RankingEvalTest, TestItemsProtocolMapsKeys) {
  // First appearance gives y=0, x=1 and r=0, p=1, q=2: not the model's order.
  auto test = *data::BuildViewFromInteractions(
      {Ev("y", "r", 5), Ev("y", "p", 1), Ev("x", "q", 4), Ev("x", "p", 2)});
  RankingEvalOptions o;
  o.threshold = 3;
  o.metrics.ks = {5};
  auto r = EvaluateRanking(TableModel(), kUsers, kItems, test, o);
  ASSERT_OK(r);
  EXPECT_NEAR((*r)["ndcg@5"], (1 + kL3) / 2, 1e-6);
  EXPECT_NEAR((*r)["auc"], 0.75, 1e-12);
  EXPECT_NEAR((*r)["recall@5"], 1.0, 1e-12);
  EXPECT_NEAR((*r)["precision@5"], 0.2, 1e-12);
  EXPECT_EQ((*r)["pairs"], 4);
  // Threads do not change the result.
  o.num_threads = 2;
  auto r2 = EvaluateRanking(TableModel(), kUsers, kItems, test, o);
  ASSERT_OK(r2);
  EXPECT_EQ(*r, *r2);
}

TEST(RankingEvalTest, AllItemsProtocolExcludes) {
  auto test = *data::BuildViewFromInteractions(
      {Ev("y", "r", 1), Ev("y", "p", 0), Ev("x", "q", 1)});
  auto exclude = *data::BuildViewFromInteractions({Ev("x", "p", 1)});
  RankingEvalOptions o;
  o.protocol = Protocol::kAllItems;
  o.exclude = &exclude;
  o.metrics.ks = {5};
  auto r = EvaluateRanking(TableModel(), kUsers, kItems, test, o);
  ASSERT_OK(r);
  // x: candidates q, r; q first. y: p, r, q; r second.
  EXPECT_NEAR((*r)["ndcg@5"], (1 + kL3) / 2, 1e-6);
  EXPECT_NEAR((*r)["auc"], (1 + 0.5) / 2, 1e-12);
  EXPECT_NEAR((*r)["recall@5"], 1.0, 1e-12);
}

TEST(RankingEvalTest, UnknownKeysAreSkippedAndBadOptionsRejected) {
  auto test = *data::BuildViewFromInteractions(
      {Ev("x", "q", 1), Ev("x", "zz", 1), Ev("nobody", "p", 1)});
  RankingEvalOptions o;
  auto r = EvaluateRanking(TableModel(), kUsers, kItems, test, o);
  ASSERT_OK(r);
  EXPECT_EQ((*r)["skipped_users"], 1);
  EXPECT_EQ((*r)["skipped_pairs"], 1);
  o.metrics.ks = {};
  EXPECT_THAT(EvaluateRanking(TableModel(), kUsers, kItems, test, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "k"));
  o.metrics.ks = {5};
  std::vector<std::string> short_keys = {"x"};
  EXPECT_THAT(EvaluateRanking(TableModel(), short_keys, kItems, test, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "model_user_keys"));
}

}  // namespace
}  // namespace debias::eval
