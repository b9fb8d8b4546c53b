// Test-set metrics of the kernel-balancing paper's evaluation (Li et al.,
// ICLR 2024, utils.py), with its conventions as options next to the
// standard ones. Used by the fidelity program and tests; the service's
// metrics are ranking_eval.h's.
//
// Input: labelled test pairs (user, item, label in {0, 1}), typically the
// MCAR test set. AUC is pooled over all pairs (ties get half credit);
// NDCG@K, Precision@K, Recall@K are per user over that user's test pairs,
// ranked by score (ties broken by item id), then averaged over users.
// Thread-safe: pure functions.
#ifndef DEBIAS_CORE_EVAL_KB_EVAL_H_
#define DEBIAS_CORE_EVAL_KB_EVAL_H_

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/model.h"

namespace debias::eval {

struct KbEvalOptions {
  std::vector<int> ks = {5, 10};
  // Reference convention: NDCG = 1 for a user without positives (such
  // users count in the mean). false: such users are left out of the NDCG mean.
  bool ndcg_empty_is_one = true;
  // Reference convention: F1 = 2 P R / (P + R) from the user-averaged P and
  // R. false: the mean of per-user F1.
  bool f1_from_means = true;
};

struct KbEvalResult {
  double auc = 0.0;
  std::map<int, double> ndcg, precision, recall, f1;
  size_t users = 0;  // users with at least one test pair
};

// INVALID_ARGUMENT when spans differ in length, are empty, hold a label
// other than 0/1, an id out of the model's range, or a K outside [1, 1000].
absl::StatusOr<KbEvalResult> EvaluateKb(const model::Model& model,
                                        std::span<const uint32_t> users,
                                        std::span<const uint32_t> items,
                                        std::span<const float> labels,
                                        const KbEvalOptions& options = {});

// Same on precomputed scores (one per pair).
absl::StatusOr<KbEvalResult> EvaluateKbScores(std::span<const uint32_t> users,
                                              std::span<const uint32_t> items,
                                              std::span<const float> labels,
                                              std::span<const float> scores,
                                              const KbEvalOptions& options = {});

}  // namespace debias::eval

#endif  // DEBIAS_CORE_EVAL_KB_EVAL_H_
