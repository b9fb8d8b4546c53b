// Evaluating a Model on a labelled test DatasetView.
//
// Two protocols:
//  kTestItems (Coat / Yahoo! R3 MAR test, kernel-balancing code): each test
//    user ranks only that user's test items; AUC, log loss and MSE are pooled
//    over all test pairs (score = the model's logit, probability = sigmoid).
//  kAllItems (NBPO, hold-out of implicit feedback): each test user ranks every
//    item of the model except that user's items in `exclude` (e.g. the
//    training view); the user's test items are the relevant ones. "auc" is
//    then the mean over users of the per-user AUC of relevant vs candidate
//    items.
// Test ids are mapped to the model's ids by key (model_user_keys /
// model_item_keys, normally the training view's key tables), so the test and
// exclude views may number users and items differently. Test users or items
// unknown to the model are skipped and counted ("skipped_users",
// "skipped_pairs"); with empty key tables the test ids are taken as model
// ids (out-of-range ids are skipped).
// Result keys are lower-case: "auc", "logloss", "mse", "ndcg@5", "recall@5",
// "precision@5", "f1@5", "map@5", ..., "users", "pairs".
// Thread safety: reentrant; `model` must be thread-safe (all Models are).
#ifndef DEBIAS_CORE_EVAL_RANKING_EVAL_H_
#define DEBIAS_CORE_EVAL_RANKING_EVAL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/eval/metrics.h"
#include "core/model/model.h"

namespace debias::eval {

enum class Protocol { kTestItems, kAllItems };

struct RankingEvalOptions {
  Protocol protocol = Protocol::kTestItems;
  MetricOptions metrics;  // relevance_threshold applies to binarised labels
  // Test labels are binarised: label >= threshold when given, else label > 0.
  std::optional<double> threshold;
  const data::DatasetView* exclude = nullptr;  // kAllItems only
  // Evaluate at most this many test users (a seeded random subset); 0 = all.
  int64_t max_users = 0;
  uint64_t seed = 0;
  int num_threads = 1;  // in [1, 64]; results do not depend on it
  // Polled during long loops; when it returns true the call stops and
  // returns CANCELLED. May be empty; must be thread-safe.
  std::function<bool()> cancelled;
};

absl::StatusOr<std::map<std::string, double>> EvaluateRanking(
    const model::Model& model, std::span<const std::string> model_user_keys,
    std::span<const std::string> model_item_keys, const data::DatasetView& test,
    const RankingEvalOptions& opts);

}  // namespace debias::eval

#endif  // DEBIAS_CORE_EVAL_RANKING_EVAL_H_
