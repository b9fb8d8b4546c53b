#include "core/eval/kb_eval.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::eval {
namespace {

using ::debias::testing::StatusIs;

// Two users: user 0 has items 0..3 with labels 1,0,1,0 and scores 4,3,2,1;
// user 1 has no positives.
TEST(KbEvalTest, ReferenceAndStandardConventions) {
  std::vector<uint32_t> u = {0, 0, 0, 0, 1, 1};
  std::vector<uint32_t> i = {0, 1, 2, 3, 0, 1};
  std::vector<float> y = {1, 0, 1, 0, 0, 0};
  std::vector<float> s = {4, 3, 2, 1, 0.5f, 3.5f};
  KbEvalOptions ref;
  ref.ks = {2};
  auto r = EvaluateKbScores(u, i, y, s, ref);
  ASSERT_OK(r);
  // AUC: positives scores {4, 2}, negatives {3, 1, 0.5, 3.5}: pairs won 4 + 2 = 6 of 8.
  EXPECT_NEAR(r->auc, 6.0 / 8.0, 1e-12);
  // User 0 @2: ranked 0(1),1(0): DCG 1, IDCG 1 + 1/log2(3).
  const double nd0 = 1.0 / (1.0 + 1.0 / std::log2(3.0));
  EXPECT_NEAR(r->ndcg[2], (nd0 + 1.0) / 2.0, 1e-12);  // user 1 counts as 1
  // P@2: user0 0.5, user1 0 -> 0.25; R@2: user0 0.5, user1 0 -> 0.25.
  EXPECT_NEAR(r->precision[2], 0.25, 1e-12);
  EXPECT_NEAR(r->recall[2], 0.25, 1e-12);
  EXPECT_NEAR(r->f1[2], 0.25, 1e-12);
  KbEvalOptions std_opts = ref;
  std_opts.ndcg_empty_is_one = false;
  std_opts.f1_from_means = false;
  r = EvaluateKbScores(u, i, y, s, std_opts);
  ASSERT_OK(r);
  EXPECT_NEAR(r->ndcg[2], nd0, 1e-12);
  EXPECT_NEAR(r->f1[2], (0.5 + 0.0) / 2.0, 1e-12);
  EXPECT_EQ(r->users, 2u);
}

TEST(KbEvalTest, TiesGetHalfCreditAndBadInputRejected) {
  std::vector<uint32_t> u = {0, 0}, i = {0, 1};
  std::vector<float> y = {1, 0}, s = {1, 1};
  auto r = EvaluateKbScores(u, i, y, s);
  ASSERT_OK(r);
  EXPECT_NEAR(r->auc, 0.5, 1e-12);
  std::vector<float> bad = {2, 0};
  EXPECT_THAT(EvaluateKbScores(u, i, bad, s),
              StatusIs(absl::StatusCode::kInvalidArgument, "labels[0]=2"));
  KbEvalOptions o;
  o.ks = {0};
  EXPECT_THAT(EvaluateKbScores(u, i, y, s, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "k=0"));
}

}  // namespace
}  // namespace debias::eval
