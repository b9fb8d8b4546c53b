// Off-policy estimates of a target policy's value from logged decisions.
//
// A logging policy mu chose, per context x, an action (or a slate of L
// positions) with recorded probability, and a reward was observed. Given the
// target policy pi's probability of the logged choice and, for the
// model-based estimators, a reward model r_hat, these estimate
// V(pi) = E_x E_{a~pi} [reward].
//
// Per decision x with positions k = 1..L (L = 1 for a single action), the
// weight is w_k = min(pi_k / mu_k, clip) (clip = 0: no cap), where pi_k and
// mu_k are the probabilities that pi and mu put the logged item a_k at
// position k. Slates use the position-based (PBM) independence assumption:
// the reward of a position depends only on the item there, so position-wise
// IPS sum_k w_k r_k is unbiased (Li et al. 2018 "offline evaluation of
// ranking policies with click models"; Open Bandit Pipeline's IIPS).
//   kDm:       V = mean_x dm_x, dm_x = sum_k sum_a pi(a at k | x) r_hat(x,a,k)
//              (the caller's target_dm).
//   kIps:      V = mean_x sum_k w_k r_k.
//   kSnips:    per position, V_k = (n_k / n) sum_x w_k r_k / sum_x w_k
//              (Swaminathan & Joachims 2015; n_k = decisions with a k-th
//              position), V = sum_k V_k.
//   kDr:       V = mean_x [dm_x + sum_k w_k (r_k - r_hat_k)] (Dudik et al.
//              2011), r_hat_k = r_hat(x, a_k, k).
//   kSwitchDr: as kDr, but the correction of a position is used only when
//              w_k <= tau (Wang et al. 2017, in the logged-action form of the
//              Open Bandit Pipeline).
//   kDrOs:     as kDr with the shrunk weight w_k' = lambda w_k / (w_k^2 +
//              lambda) (DR with optimistic shrinkage, Su et al. 2020).
// IPS and DR are unbiased when mu is the true logging probability, clip = 0
// and pi's support is covered by mu; DR is also unbiased when r_hat is
// correct. Intervals and diagnostics as in unbiased.h: percentile bootstrap
// over decisions and delta-method normal intervals (all estimators).
// Diagnostics: {"estimator", "decisions", "positions", "clip", "weights":
// (SummarizeWeights of every w_k > 0, plus "zero_weights", "clipped",
// "clipped_fraction"), "bootstrap": {...}, "warnings": [...]}.
//
// Thread safety: pure function; results do not depend on num_threads.
#ifndef DEBIAS_CORE_EVAL_POLICY_H_
#define DEBIAS_CORE_EVAL_POLICY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/eval/unbiased.h"
#include "nlohmann/json.hpp"

namespace debias::eval {

enum class PolicyEstimator { kDm, kIps, kSnips, kDr, kSwitchDr, kDrOs };

// "dm" | "ips" | "snips" | "dr" | "switch-dr" | "dr-os"; INVALID_ARGUMENT
// naming "estimator" and the allowed names otherwise.
absl::StatusOr<PolicyEstimator> ParsePolicyEstimator(std::string_view s);
std::string_view PolicyEstimatorName(PolicyEstimator e);

// One logged decision (a slate of L >= 1 positions; L = 1 for one action).
struct LoggedDecision {
  std::vector<double> reward;        // r_k, finite, |r_k| <= 1e12
  std::vector<double> logging_prob;  // mu_k, in [1e-12, 1]
  std::vector<double> target_prob;   // pi_k, in [0, 1]
  // Model-based estimators only (kDm, kDr, kSwitchDr, kDrOs):
  std::vector<double> reward_hat;  // r_hat_k (not kDm), |r_hat_k| <= 1e12
  double target_dm = 0.0;          // dm_x, |dm_x| <= 1e12
};

struct PolicyOptions {
  PolicyEstimator estimator = PolicyEstimator::kIps;
  double clip = 0.0;    // weight cap; 0 = none, else > 0
  double tau = 1e300;   // kSwitchDr threshold, > 0
  double lambda = 1.0;  // kDrOs shrinkage, > 0 (infinity = kDr)
  int bootstrap = 0;    // resamples of decisions, [0, 100000]
  uint64_t seed = 0;
  double confidence = 0.95;  // [0.5, 0.9999]
  int num_threads = 1;       // [1, 64]
  // Polled during long loops; when it returns true the call stops and
  // returns CANCELLED. May be empty; must be thread-safe.
  std::function<bool()> cancelled;
};

struct PolicyResult {
  double value = 0.0;
  std::optional<Interval> interval;  // bootstrap; none when bootstrap = 0
  Interval normal_interval;
  nlohmann::json diagnostics;
};

// INVALID_ARGUMENT naming the decision index and field for bad input
// ("decisions[4].logging_prob[0]=0: must be finite and in (0, 1] (at least
// 1e-12)"), for mismatched lengths, missing reward_hat for DR-family
// estimators, bad options, or no decisions.
absl::StatusOr<PolicyResult> EstimatePolicyValue(
    std::span<const LoggedDecision> decisions, const PolicyOptions& options);

}  // namespace debias::eval

#endif  // DEBIAS_CORE_EVAL_POLICY_H_
