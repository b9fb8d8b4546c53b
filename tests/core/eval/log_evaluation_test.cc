// Evaluation from a biased log without gRPC: the orchestration (which
// users, which items, which propensities) checked against the estimators
// called directly on hand-built inputs.
#include "core/eval/log_evaluation.h"

#include <cmath>

#include "core/data/dataset_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/fixtures.h"
#include "tests/util/status_matchers.h"

namespace debias::eval {
namespace {

using ::debias::testing::StatusIs;

using ::debias::testing::Ev;
using ::debias::testing::TableModel;

struct Served {
  TableModel model;
  std::vector<std::string> users = {"x", "y"}, items = {"p", "q", "r"};
  KeyIndex user_index = {{"x", 0}, {"y", 1}}, item_index = {{"p", 0}, {"q", 1}, {"r", 2}};
  KeyedModel Keyed(uint64_t id = 7) const {
    return KeyedModel{&model, &users, &items, &user_index, &item_index, id};
  }
};



TEST(LogEvaluationTest, RankingModeFeedsTheEstimatorTheModelsRankingAndTheLoggedPropensities) {
  // x clicked q (p 0.5) and, twice, p; y clicked r (p 0.25); y's 0-label
  // event on q is not a click.
  auto log = *data::BuildViewFromInteractions({Ev("x", "q", 1, 0.5f), Ev("x", "p", 1, 0.2f),
                                               Ev("x", "p", 1, 0.9f), Ev("y", "r", 1, 0.25f),
                                               Ev("y", "q", 0, 0.5f)});
  Served served;
  PropensitySource logged = PropensitySource::Logged();
  LogRankingRequest req;
  req.log = &log;
  req.dataset = "clicks";
  req.model = served.Keyed();
  req.training.dataset = "elsewhere";
  req.propensity = &logged;
  req.options.estimator = RelevanceEstimator::kIps;
  req.options.ks = {1, 3};
  auto got = EvaluateRankingFromLog(req);
  ASSERT_OK(got);

  // The same estimate from hand-built inputs (eval item ids = the model's).
  std::vector<UserRanking> users(2);
  users[0].ranked = {1, 2, 0};
  users[0].clicked = {0, 1};                  // p (first propensity kept), q
  users[0].clicked_propensity = {0.2, 0.5};
  users[1].ranked = {0, 2, 1};
  users[1].clicked = {2};
  users[1].clicked_propensity = {0.25};
  const auto& s = TableModel::kScores;
  for (int u = 0; u < 2; ++u) {
    users[u].num_candidates = 3;
    for (int i = 0; i < 3; ++i) {
      users[u].negative_log_loss_sum += -std::log1p(-Sigmoid(s[u][i]));
    }
    for (int32_t i : users[u].clicked) users[u].clicked_score.push_back(Sigmoid(s[u][i]));
  }
  auto want = EstimateRankingMetrics(users, req.options);
  ASSERT_OK(want);
  ASSERT_EQ(got->metrics.size(), want->metrics.size());
  for (const auto& [k, v] : want->metrics) EXPECT_NEAR(got->metrics.at(k), v, 1e-6 * (1 + std::abs(v))) << k;  // float propensities
  EXPECT_EQ(got->diagnostics["mode"], "log");
  EXPECT_EQ(got->diagnostics["propensity_from"], "logged");
  EXPECT_EQ(got->diagnostics["model_id"], 7);
  EXPECT_TRUE(got->mar_metrics.empty());
}

TEST(LogEvaluationTest, OwnTrainingEventsWarnAndAHoldoutExcludesTrainingItems) {
  auto log = *data::BuildViewFromInteractions({Ev("x", "q", 1, 0.5f), Ev("y", "r", 1, 0.25f)});
  Served served;
  PropensitySource logged = PropensitySource::Logged();
  LogRankingRequest req;
  req.log = &log;
  req.dataset = "clicks";
  req.model = served.Keyed();
  req.training.dataset = "clicks";  // trained on this log, no holdout
  req.propensity = &logged;
  req.options.ks = {2};
  auto own = EvaluateRankingFromLog(req);
  ASSERT_OK(own);
  EXPECT_EQ(own->diagnostics["log_events"]["events"], "the model's own training events");
  EXPECT_THAT(own->diagnostics["warnings"].dump(), ::testing::HasSubstr("optimistic"));

  req.training.holdout = 0.5;
  auto held = EvaluateRankingFromLog(req);
  ASSERT_OK(held);
  EXPECT_EQ(held->diagnostics["log_events"]["holdout"], 0.5);
  const auto mask = data::HoldoutMask(log, 0.5, 0);
  EXPECT_EQ(held->diagnostics["log_events"]["held_out_events"],
            static_cast<int>(std::count(mask.begin(), mask.end(), 1)));
}

TEST(LogEvaluationTest, UploadedScoresAndTheMarSampleAndBadRequests) {
  auto log = *data::BuildViewFromInteractions({Ev("x", "q", 1, 0.5f), Ev("y", "r", 1, 0.25f),
                                               Ev("z", "p", 1, 0.5f)});
  std::vector<UploadedScores> up = {{"x", {"q", "p"}, {2, 1}}, {"y", {"r"}, {1}}};
  PropensitySource logged = PropensitySource::Logged();
  LogRankingRequest req;
  req.log = &log;
  req.dataset = "clicks";
  req.uploaded = &up;
  req.propensity = &logged;
  req.options.ks = {1};
  auto got = EvaluateRankingFromLog(req);
  ASSERT_OK(got);
  EXPECT_EQ(got->diagnostics["ranking"], "uploaded scores");
  EXPECT_EQ(got->diagnostics["log_users_outside_population"], 1);  // z
  // x: top q clicked at 0.5 -> weight 2; y: top r clicked at 0.25 -> 4.
  std::vector<UserRanking> users(2);
  users[0].ranked = {0};  // eval ids: q 0, p 1, r 2
  users[0].clicked = {0};
  users[0].clicked_propensity = {0.5};
  users[1].ranked = {2};
  users[1].clicked = {2};
  users[1].clicked_propensity = {0.25};
  auto want = EstimateRankingMetrics(users, req.options);
  ASSERT_OK(want);
  for (const auto& [k, v] : want->metrics) EXPECT_NEAR(got->metrics.at(k), v, 1e-6 * (1 + std::abs(v))) << k;  // float propensities

  // A MAR sample: x labelled q (relevant) and p, y labelled p only.
  auto mar = *data::BuildViewFromInteractions(
      {Ev("x", "q", 1, 1), Ev("x", "p", 0, 1), Ev("y", "p", 0, 1)});
  req.mar = &mar;
  req.mar_dataset = "mar";
  auto with_mar = EvaluateRankingFromLog(req);
  ASSERT_OK(with_mar);
  EXPECT_FALSE(with_mar->mar_metrics.empty());
  EXPECT_EQ(with_mar->diagnostics["mar"]["users"], 2);

  // Both a model and uploaded scores: refused.
  Served served;
  req.model = served.Keyed();
  EXPECT_THAT(EvaluateRankingFromLog(req), StatusIs(absl::StatusCode::kInvalidArgument, "exactly one"));
  // Cancelled before it starts: CANCELLED.
  req.model.reset();
  req.options.cancelled = [] { return true; };
  EXPECT_THAT(EvaluateRankingFromLog(req), StatusIs(absl::StatusCode::kCancelled, "cancelled"));
}

TEST(LogEvaluationTest, PolicyModeIpsAndDmMatchAHandComputation) {
  // Greedy target: x's top item is q, y's is p.
  auto log = *data::BuildViewFromInteractions({Ev("x", "q", 1, 0.5f), Ev("x", "p", 1, 0.5f),
                                               Ev("y", "p", 0, 0.2f), Ev("y", "q", 1, 0.4f)});
  Served served;
  PolicyLogRequest req;
  req.log = &log;
  req.dataset = "bandit";
  req.policy = served.Keyed();
  req.rewarder = req.policy;
  req.model_id = 7;
  req.names = {"ips", "dm"};
  req.estimators = {*ParsePolicyEstimator("ips"), *ParsePolicyEstimator("dm")};
  auto got = EvaluatePolicyFromLog(req);
  ASSERT_OK(got);
  // IPS: only (x, q) matches the target: 1 / 0.5 over 4 decisions.
  EXPECT_NEAR(got->metrics.at("policy_value/ips"), 2.0 / 4, 1e-9);
  // DM: the policy's own sigmoid(score) of its top item, per decision.
  const double dm = (2 * Sigmoid(0.9f) + 2 * Sigmoid(0.8f)) / 4;
  EXPECT_NEAR(got->metrics.at("policy_value/dm"), dm, 1e-6);
  EXPECT_EQ(got->diagnostics["single_actions"], 4);
  EXPECT_EQ(got->diagnostics["reward_model"]["source"], "sigmoid(score) of the evaluated model");

  // A log without propensities cannot be evaluated as a policy.
  data::Interaction bare;
  bare.user = "x";
  bare.item = "q";
  bare.label = 1;
  auto no_prop = *data::BuildViewFromInteractions({bare});
  req.log = &no_prop;
  EXPECT_THAT(EvaluatePolicyFromLog(req), StatusIs(absl::StatusCode::kFailedPrecondition, "no logged propensities"));
}

}  // namespace
}  // namespace debias::eval
