// Off-policy estimates of a target policy's value from logged decisions.
//
// A logging policy mu chose, per context x, an action (or a slate of L
// positions) with recorded probability, and a reward was observed. Given the
// target policy pi's probability of the logged choice and, for the
// model-based estimators, a reward model r_hat, these estimate
// V(pi) = E_x E_{a~pi} [reward].
//
// Per decision x with positions k = 1..L (L = 1 for a single action), the
// importance weight is w_k = pi_k / mu_k, where pi_k and mu_k are the
// probabilities that pi and mu put the logged item a_k at position k. Slates
// use the position-based (PBM) independence assumption: the reward of a
// position depends only on the item there, so position-wise IPS
// sum_k w_k r_k is unbiased (Li et al. 2018 "offline evaluation of ranking
// policies with click models"; Open Bandit Pipeline's IIPS).
// r_hat_k = r_hat(x, a_k, k); dm_x = sum_k sum_a pi(a at k | x) r_hat(x,a,k)
// (the caller's target_dm); n_k = decisions with a k-th position.
//   kDm:       V = mean_x dm_x.
//   kIps:      V = mean_x sum_k w_k r_k (Horvitz-Thompson; OBP's IPW).
//   kSnips:    V = sum_k (n_k / n) sum_x w_k r_k / sum_x w_k (Swaminathan &
//              Joachims 2015).
//   kDr:       V = mean_x [dm_x + sum_k w_k (r_k - r_hat_k)] (Dudik et al.
//              2011).
//   kSwitchDr: as kDr, but the correction of a position is used only when
//              w_k <= tau (Wang et al. 2017, in the logged-action form of the
//              Open Bandit Pipeline). tau = 0 is DM, tau = inf is DR.
//   kDrOs:     as kDr with the shrunk weight w_k' = lambda w_k / (w_k^2 +
//              lambda) (DR with optimistic shrinkage, Su et al. 2020).
//              lambda = 0 is DM, lambda = inf is DR.
//   kSndr:     V = mean_x dm_x + sum_k (n_k / n) sum_x w_k (r_k - r_hat_k)
//              / sum_x w_k (self-normalised DR; Kallus & Uehara 2019, OBP's
//              SNDR).
//   kSubGaussianIps, kSubGaussianDr: IPS and DR with the harmonic weight
//              w_k' = w_k / ((1 - g) + g w_k), g = subgaussian_lambda in
//              [0, 1] (Metelli, Russo & Restelli, "Subgaussian and
//              differentiable importance sampling for off-policy evaluation
//              and learning", NeurIPS 2021). g = 0 is IPS / DR.
//   kBalancedIps: IPS with weights estimated, not read from mu: Sondhi,
//              Arbour & Dimmery, "Balanced off-policy evaluation in general
//              action spaces", AISTATS 2020. Their classifier separates
//              (context, action) pairs drawn from pi from the logged ones and
//              the weight is its odds. Here the classifier is the saturated
//              (tabular) one over cells c = (context, k, a_k), fitted on the
//              logged pairs and the Rao-Blackwellised target draws (every
//              logged decision contributes pi_k to its context's cells):
//              w_hat(c) = n_pi(c) / n_mu(c) = pi(a at k | x) n_{x,k} /
//              n_{x,k,a}, the odds of the fitted classifier. It needs
//              LoggedDecision::context and ::action, not mu, and assumes
//              pi_k depends only on (context, k, a_k) (a cell's pi_k are
//              averaged). Target mass on cells never logged is lost (bias
//              when the log does not cover pi's support).
//   kMips, kSnMips: marginalized IPS over action embeddings (Saito &
//              Joachims, "Off-policy evaluation for large action spaces via
//              embeddings", ICML 2022): V = mean_x sum_k w_e r_k with the
//              marginal weight w_e = p(e_k | x, pi) / p(e_k | x, mu) of the
//              logged action's embedding (category) e_k, and its
//              self-normalised form (per position, as kSnips). The marginal
//              weight is E_mu[w | x, k, e] (their Eq. for w(x, e) as the
//              conditional mean of the action weight), estimated by the
//              saturated regression: the mean of the logged w_k over the cell
//              (context, k, e_k). It needs LoggedDecision::context and
//              ::embedding, and only mu of the logged actions. Unbiased when
//              the reward depends on the action only through e ("no direct
//              effect") and the cells hold enough decisions; with one decision
//              per cell it is IPS. Its intervals use the linearised
//              per-decision term w_e r + (w - w_e) r_bar_c (r_bar_c the
//              cell's mean reward; same mean), so they include the weight
//              regression's noise.
//   kIips:     IPS position by position (the slate estimator above, named
//              as in Li et al. 2018 / OBP); on single actions it is kIps.
// Slate estimators read logging_prob[k] and target_prob[k] as the
// probabilities of a_k at k given the slate's first k-1 items (equal to the
// marginals when the policy fills positions independently, and for a
// deterministic target whose prefix matches); the prefix weight is
// w_{1:k} = prod_{j<=k} pi_j / mu_j.
//   kSips:     V = mean_x w_{1:L} sum_k r_k (standard IPS over whole slates;
//              Swaminathan et al. 2017's baseline; OBP's SIPS). Unbiased
//              for any slate reward.
//   kRips:     V = mean_x sum_k w_{1:k} r_k (reward-interaction IPS,
//              McInerney et al., KDD 2020; OBP's RIPS): unbiased when the
//              reward at k depends only on positions 1..k (cascade).
//   kCascadeDr: V = mean_x sum_k [w_{1:k} (r_k - r_hat_k) + w_{1:k-1}
//              q_pi_k], q_pi_k = E_{a ~ pi(.|x, a_{1:k-1})} r_hat(x, a, k)
//              (LoggedDecision::target_reward_hat; for L = 1 target_dm may
//              stand in). Kiyohara et al., "Doubly robust off-policy
//              evaluation for ranking policies under the cascade behavior
//              model", WSDM 2022 (here r_hat depends on the prefix only
//              through the item and position). r_hat = 0 gives kRips.
// Clipping follows the Open Bandit Pipeline: only kIps, kDr and
// kBalancedIps cap their weights at `clip`; the other estimators ignore it,
// and the diagnostics say which ("clip_applied").
// IPS and DR are unbiased when mu is the true logging probability, clip = 0
// and pi's support is covered by mu; DR is also unbiased when r_hat is
// correct. Intervals and diagnostics as in unbiased.h: percentile bootstrap
// over decisions and delta-method normal intervals (all estimators; for
// kBalancedIps the estimated weights are held fixed, so its intervals ignore
// the classifier's own sampling error).
// Diagnostics: {"estimator", "decisions", "positions", "clip",
// "clip_applied", "weights": (SummarizeWeights of the weights that multiply
// the rewards, every one > 0, plus "zero_weights", "clipped",
// "clipped_fraction"), "bootstrap": {...}, "warnings": [...]}, plus "tau" and
// "switched_to_dm" (kSwitchDr), "lambda" (kDrOs), "subgaussian_lambda", and
// "cells" (kBalancedIps, kMips, kSnMips) and "marginal_weight" (kMips,
// kSnMips).
//
// Thread safety: pure function; results do not depend on num_threads.
#ifndef DEBIAS_CORE_EVAL_POLICY_H_
#define DEBIAS_CORE_EVAL_POLICY_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/eval/unbiased.h"
#include "nlohmann/json.hpp"

namespace debias::eval {

enum class PolicyEstimator {
  kDm,
  kIps,
  kSnips,
  kDr,
  kSwitchDr,
  kDrOs,
  kSndr,
  kSubGaussianIps,
  kSubGaussianDr,
  kBalancedIps,
  kMips,
  kSnMips,
  kIips,
  kSips,
  kRips,
  kCascadeDr,
};

// "dm" | "ips" (or OBP's "ipw") | "snips" (or "snipw") | "dr" | "switch-dr" |
// "dr-os" | "sndr" | "subgaussian-ipw" | "subgaussian-dr" | "balanced-ipw" |
// "mips" | "snmips" | "iips" | "sips" | "rips" | "cascade-dr";
// INVALID_ARGUMENT naming "estimator" and the allowed names otherwise.
absl::StatusOr<PolicyEstimator> ParsePolicyEstimator(std::string_view s);
std::string_view PolicyEstimatorName(PolicyEstimator e);
// Whether `e` needs LoggedDecision::reward_hat / target_dm (dm and the DR
// family) or LoggedDecision::context / action (balanced-ipw).
bool PolicyEstimatorUsesRewardModel(PolicyEstimator e);
bool PolicyEstimatorUsesActions(PolicyEstimator e);
// Whether `e` needs LoggedDecision::embedding (mips, snmips).
bool PolicyEstimatorUsesEmbeddings(PolicyEstimator e);

// One logged decision (a slate of L >= 1 positions; L = 1 for one action).
struct LoggedDecision {
  std::vector<double> reward;        // r_k, finite, |r_k| <= 1e12
  std::vector<double> logging_prob;  // mu_k, in [1e-12, 1]
  std::vector<double> target_prob;   // pi_k, in [0, 1]
  // Model-based estimators only (kDm and the DR family, kCascadeDr):
  std::vector<double> reward_hat;  // r_hat_k (not kDm), |r_hat_k| <= 1e12
  double target_dm = 0.0;          // dm_x, |dm_x| <= 1e12
  // kBalancedIps only: the context (e.g. the user) and the logged item of
  // every position (one per position).
  uint64_t context = 0;
  std::vector<uint64_t> action;
  // kMips / kSnMips only: the logged action's embedding (a category id) per
  // position.
  std::vector<uint64_t> embedding;
  // kCascadeDr only: q_pi_k per position (see above); may be empty for
  // L = 1, then target_dm is used.
  std::vector<double> target_reward_hat;
};

struct PolicyOptions {
  PolicyEstimator estimator = PolicyEstimator::kIps;
  // Weight cap of kIps, kDr and kBalancedIps (the others ignore it, as in
  // OBP); 0 = none, else > 0.
  double clip = 0.0;
  // kSwitchDr threshold, >= 0: 0 = DM (OBP's meaning), infinity = DR.
  double tau = std::numeric_limits<double>::infinity();
  // kDrOs shrinkage, >= 0: 0 = DM (OBP's meaning), infinity = DR.
  double lambda = 1.0;
  // kSubGaussianIps / kSubGaussianDr, in [0, 1]: 0 = IPS / DR (OBP's
  // default), 1 = every weight 1.
  double subgaussian_lambda = 0.0;
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
// estimators, missing action for kBalancedIps, bad options, or no
// decisions.
absl::StatusOr<PolicyResult> EstimatePolicyValue(
    std::span<const LoggedDecision> decisions, const PolicyOptions& options);

// Several estimators on the same decisions (options.estimator is ignored):
// one result per entry of `estimators`, in order, each as
// EstimatePolicyValue would give it; the bootstraps share the seed, so they
// resample the same decisions. INVALID_ARGUMENT as above, or for an empty
// list; the first error wins.
absl::StatusOr<std::vector<PolicyResult>> EstimatePolicyValues(
    std::span<const LoggedDecision> decisions,
    std::span<const PolicyEstimator> estimators, const PolicyOptions& options);

}  // namespace debias::eval

#endif  // DEBIAS_CORE_EVAL_POLICY_H_
