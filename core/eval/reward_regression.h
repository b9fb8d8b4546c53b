// A reward model fitted on the logged decisions themselves, with K-fold
// cross-fitting, for DM and the DR family (issue 27).
//
// The regressor is hierarchical shrinkage of means (empirical-Bayes style,
// one pseudo-count `prior_strength` m at each level):
//   global mean  g      = mean of the rewards,
//   item level   r(a)   = (S_a + m g) / (n_a + m),
//   cell level   r(x,a) = (S_xa + m r(a)) / (n_xa + m),
// where S and n are the sums and counts of the logged rewards of item a (and
// of context x with item a). A (context, item) seen often gets its own mean;
// one never seen gets its item's shrunk mean, an unseen item the global mean.
// It ignores the position of a slate (positions share the item's mean).
//
// Cross-fitting (Chernozhukov et al. 2018, "Double/debiased machine
// learning"; as used for DR in OPE by e.g. Kallus & Uehara 2019): decisions
// are split into K folds by a seeded permutation; the prediction for any
// decision of fold f uses only the other K-1 folds, so r_hat never saw the
// reward it is subtracted from. K = 1 means in-sample (no cross-fitting).
//
// Thread safety: const methods may be called from any number of threads.
#ifndef DEBIAS_CORE_EVAL_REWARD_REGRESSION_H_
#define DEBIAS_CORE_EVAL_REWARD_REGRESSION_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/eval/policy.h"
#include "nlohmann/json.hpp"

namespace debias::eval {

struct RewardObservation {
  uint64_t decision = 0;  // index of the decision the reward belongs to
  uint64_t context = 0;
  uint64_t action = 0;
  double reward = 0.0;  // finite
};

struct RewardRegressionOptions {
  int folds = 5;                // [1, 20]; 1 = in-sample
  double prior_strength = 5.0;  // m, finite and in (0, 1e6]
  uint64_t seed = 0;            // the fold permutation
};

class CrossFitRewardModel {
 public:
  // `observations` may hold several per decision (slates); decisions are
  // numbered 0..num_decisions-1. INVALID_ARGUMENT naming the option or the
  // observation for bad input; FAILED_PRECONDITION when a fold would be
  // empty (fewer decisions than folds).
  static absl::StatusOr<CrossFitRewardModel> Fit(
      std::span<const RewardObservation> observations, uint64_t num_decisions,
      const RewardRegressionOptions& options);

  // The fold of a decision, in [0, folds).
  int FoldOf(uint64_t decision) const { return fold_[decision]; }
  // r_hat(x, a) fitted without fold `fold` (any fold >= folds, e.g. with
  // folds = 1, means all data).
  double Predict(int fold, uint64_t context, uint64_t action) const;
  int folds() const { return folds_; }

 private:
  struct Sums {
    std::vector<double> sum, n;  // per fold
  };
  // Out-of-fold sum and count.
  std::pair<double, double> Out(const Sums& s, int fold) const;

  int folds_ = 1;
  double m_ = 5.0;
  std::vector<int> fold_;
  Sums global_;
  absl::flat_hash_map<uint64_t, Sums> item_;
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, Sums> cell_;
};

// The target policy's distribution over actions at every position of every
// decision, shared between decisions (all single-action decisions of a user
// point at one list).
struct TargetDistributions {
  std::vector<std::vector<std::pair<uint64_t, double>>> table;  // (action, pi)
  std::vector<std::vector<uint32_t>> of;  // [decision][position] -> table row
};

// Fits a CrossFitRewardModel on the decisions' (context, action[k],
// reward[k]) and fills, for every decision i of fold f, reward_hat[k] =
// r_hat^{-f}(x, a_k), target_reward_hat[k] = sum_a pi_k(a) r_hat^{-f}(x, a)
// (slates; left empty for one action) and target_dm = the sum over
// positions. Every decision needs `action`; targets.of must have one row
// index per position. Returns diagnostics {"source", "folds",
// "prior_strength", "seed", "observations"}. INVALID_ARGUMENT /
// FAILED_PRECONDITION as CrossFitRewardModel::Fit or for mismatched shapes.
absl::StatusOr<nlohmann::json> FillCrossFitRewards(
    std::span<LoggedDecision> decisions, const TargetDistributions& targets,
    const RewardRegressionOptions& options);

}  // namespace debias::eval

#endif  // DEBIAS_CORE_EVAL_REWARD_REGRESSION_H_
