// Unbiased offline estimates of ranking metrics from missing-not-at-random
// implicit feedback, with bootstrap and analytic intervals and weight
// diagnostics.
//
// Model-agnostic: the caller ranks items with any model (served or uploaded
// scores) and hands over, per user, the model's top list and the user's
// logged clicks with their exposure propensities.
//
// Feedback model (Saito et al., WSDM 2020; core/synth/mnar_world.h): a click
// needs exposure and relevance, c_ui = O_ui R_ui with O ~ Bernoulli(p_ui)
// (p = P(exposed), the propensity) and R ~ Bernoulli(rel_ui); only c is
// logged, so E[c_ui / p_ui] = rel_ui.
//
// Target metrics (per user u, averaged over users; r = 1-based rank in the
// model's list, i_r the item at rank r, T_u = sum over ALL items of rel_ui):
//   dcg@K       = sum_{r<=K} rel(i_r) / log2(r + 1)
//   precision@K = sum_{r<=K} rel(i_r) / K   (K even when the list is shorter)
//   recall@K    = sum_{r<=K} rel(i_r) / T_u
//   map@K       = [sum_{r<=K} rel(i_r) (1 + sum_{j<r} rel(i_j)) / r]
//                 / min(T_u, K)
//                 (the expected AP numerator for independent binary R; the
//                 denominator uses the expected number of relevant items)
//   pointwise_loss = sum_u sum_i [rel_ui (-log s_ui) + (1 - rel_ui)
//                 (-log(1 - s_ui))] / sum_u n_u  (the ideal pointwise log
//                 loss of Saito et al. 2020 over every candidate pair; s =
//                 the model's relevance probability, clamped to [1e-7,
//                 1 - 1e-7]; reported only when every user carries its inputs)
// Every metric replaces rel by an estimate rel_hat; w_ui = 1 / max(p_ui, clip)
// is the inverse weight (clip = 0: w = 1/p):
//   kNaive: rel_hat = c (the click itself; T_u = the user's click count).
//   kIps:   rel_hat = c w. With clip = 0 and true propensities, dcg, precision
//           and pointwise_loss are unbiased; recall and map are per-user
//           ratios (T_u estimated by T_hat = sum_clicked w), so they are
//           consistent as the user's clicks grow, not exactly unbiased;
//           both average over the users with at least one click (for map the
//           denominator is min(T_hat, K)).
//           recall@K = (A / T_hat)(1 - S / T_hat^2 + S_K / (A T_hat)), A =
//           sum_{r<=K} rel_hat, S = sum_clicked w^2, S_K = the same over the
//           top K: the second-order (delta-method) correction of the
//           ratio's bias E[A/T_hat] - A/T (Var and Cov of the clicks
//           estimated by S and S_K); it is 1 for naive, and stays in [0, 1].
//   kSnips: global self-normalisation: rel_hat = c w / w_bar with w_bar the
//           mean of w over ALL logged clicks, so the weights average to 1 and
//           sum to the click count. Under implicit feedback the exposures are
//           not logged, so no normaliser with a known expectation exists and
//           the absolute scale of rel is not identifiable from clicks alone
//           (p and rel trade off). SNIPS therefore estimates kappa x the
//           metric with kappa = E[#clicks] / sum_ui rel_ui (the
//           relevance-weighted mean exposure), one constant for every model
//           scored on the same log: it orders and compares models like IPS
//           and is invariant to a global scale error of the propensities
//           (which a popularity estimator cannot identify). Its relative
//           interval width is about that of IPS (docs/results/eval.md).
//           recall@K and map@K are per-user ratios in which the scale
//           cancels, so SNIPS reports the IPS value for them.
//   kDr:    rel_hat = r_hat + (c - p r_hat) w, with r_hat the imputed
//           relevance of an imputation model. Because O is not logged, the
//           correction uses its expectation p, so with clip = 0 DR equals IPS
//           exactly; with clip > 0 the imputation removes the clipping bias:
//           E[rel_hat] = rel when p is the true propensity and either clip
//           is 0 or p >= clip or r_hat = rel, while keeping the clipped
//           (bounded) variance. DR reports dcg@K and precision@K only
//           (recall, map and the pointwise loss would need r_hat and p over
//           every item).
// Intervals:
//  - intervals: percentile bootstrap over USERS (resampled with
//    replacement, `bootstrap` times), from per-user sufficient statistics,
//    so a resample costs O(users), not O(clicks). Empty when bootstrap = 0.
//  - normal_intervals: estimate +- z sqrt(g' Sigma g / U) with Sigma the
//    covariance of the per-user statistics and g the gradient of the metric
//    in their means (the delta method; exact CLT interval for the linear
//    estimators, the ratio form for SNIPS and for recall/map's user
//    averages over users with T_hat > 0).
//
// Thread safety: pure function; uses up to num_threads threads internally.
// Results do not depend on num_threads.
#ifndef DEBIAS_CORE_EVAL_UNBIASED_H_
#define DEBIAS_CORE_EVAL_UNBIASED_H_

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace debias::eval {

enum class RelevanceEstimator { kNaive, kIps, kSnips, kDr };

// "naive" | "ips" | "snips" | "dr"; INVALID_ARGUMENT naming "estimator" and
// the allowed names otherwise.
absl::StatusOr<RelevanceEstimator> ParseRelevanceEstimator(std::string_view s);
std::string_view RelevanceEstimatorName(RelevanceEstimator e);

// One user's input, built by the caller.
struct UserRanking {
  // The model's top max(K) items among ALL items (seen items included), best
  // first; distinct ids >= 0. Longer lists are allowed (only the prefix is
  // used); shorter lists count missing ranks as non-relevant.
  std::vector<int32_t> ranked;
  // Item ids the user clicked in the log, strictly ascending, and the
  // propensity P(exposed) of each clicked pair, finite and in (0, 1]; values
  // below 1e-12 are rejected (weights above 1e12 would overflow the variance
  // sums; clip instead).
  std::vector<int32_t> clicked;
  std::vector<double> clicked_propensity;
  // kDr only (same length as `ranked`): propensity [1e-12, 1] and imputed
  // relevance [0, 1] of every ranked item. For a ranked item that was
  // clicked, clicked_propensity is used in the click term.
  std::vector<double> ranked_propensity;
  std::vector<double> ranked_imputed;
  // pointwise_loss only (optional; all users or none; not for kDr): the
  // model's relevance probability of each clicked item (same length as
  // `clicked`, in [0, 1]), the sum over the user's n candidate items (every
  // item, clicked or not) of -log(1 - s) with s clamped to [1e-7, 1 - 1e-7]
  // (in [0, 1e12]), and n (>= number of clicks). num_candidates = 0 means
  // "not given".
  std::vector<double> clicked_score;
  double negative_log_loss_sum = 0.0;
  int64_t num_candidates = 0;
};

struct UnbiasedRankingOptions {
  RelevanceEstimator estimator = RelevanceEstimator::kIps;
  std::vector<int> ks = {5, 10};  // each in [1, 1000], distinct
  // 0 = no clipping; else in (0, 1]: propensities below clip are raised to it.
  double clip = 0.0;
  int bootstrap = 0;  // resamples of users, [0, 100000]
  uint64_t seed = 0;
  double confidence = 0.95;  // in [0.5, 0.9999]
  int num_threads = 1;       // [1, 64]
  // Polled during long loops (every few users / resamples); when it returns
  // true the call stops and returns CANCELLED (a server passes "the call's
  // deadline passed or it was cancelled"). May be empty. Called from worker
  // threads: must be thread-safe.
  std::function<bool()> cancelled;
};

struct Interval {
  double low = 0.0;
  double high = 0.0;
};

struct UnbiasedRankingResult {
  // "dcg@K", "precision@K", "recall@K", "map@K" per K (dcg/precision only
  // for kDr), and "pointwise_loss" when its inputs are given (not kDr).
  std::map<std::string, double> metrics;
  std::map<std::string, Interval> intervals;         // bootstrap; same keys
  std::map<std::string, Interval> normal_intervals;  // delta method
  // {"estimator", "users", "users_with_clicks", "clicks", "clip",
  //  "weights": {"ess", "ess_fraction", "max", "mean", "p50", "p90", "p99",
  //              "top1pct_share", "clipped", "clipped_fraction"},
  //  "bootstrap": {"resamples", "confidence", "seed"},
  //  "warnings": [strings]} (weights are the inverse weights w of the
  // clicks; kNaive reports them too, for information).
  nlohmann::json diagnostics;
};

// Validates every input (INVALID_ARGUMENT naming the user index and field,
// e.g. "users[3].clicked_propensity[1]=nan: must be finite and in (0, 1]")
// and the options, then estimates. At least one user is required.
absl::StatusOr<UnbiasedRankingResult> EstimateRankingMetrics(
    std::span<const UserRanking> users, const UnbiasedRankingOptions& options);

// ---------------------------------------------------------------------------
// Shared machinery (also used by policy.h); exposed for tests and benches.

// Summary of inverse weights w (> 0): ess = (sum w)^2 / sum w^2,
// ess_fraction, max, mean, p50/p90/p99, top1pct_share (share of sum w carried
// by the largest ceil(1% n) weights). Empty input gives zeros.
nlohmann::json SummarizeWeights(std::span<const double> w);

// Appends warnings to `warnings` when the weight summary `s` (from
// SummarizeWeights) says an estimate is unreliable: ess below 1% of n (and
// below 100), top1pct_share > 0.5, n < 30.
void AppendWeightWarnings(const nlohmann::json& s, nlohmann::json& warnings);

// Per-unit statistics (rows = units such as users or logged decisions,
// `num_stats` columns, row-major) and a function mapping the column means to
// the metrics. Bootstrap resamples units with replacement.
struct UnitStatistics {
  std::vector<double> values;  // rows x num_stats
  int num_stats = 0;
  int64_t rows() const {
    return num_stats ? static_cast<int64_t>(values.size()) / num_stats : 0;
  }
};
using MetricsFromMeans =
    std::function<void(std::span<const double> means, std::span<double> out)>;

struct IntervalOptions {
  int bootstrap = 0;  // [0, 100000]
  uint64_t seed = 0;
  double confidence = 0.95;
  int num_threads = 1;
  // As UnbiasedRankingOptions::cancelled; a cancelled run sets
  // EstimatesWithIntervals::cancelled and its bootstrap is empty.
  std::function<bool()> cancelled;
};

// Point estimates f(means), percentile bootstrap intervals (empty when
// bootstrap = 0) and delta-method normal intervals of `num_metrics` metrics.
// Deterministic in (stats, f, options) and independent of num_threads.
// Requires rows >= 1 (callers validate).
struct EstimatesWithIntervals {
  std::vector<double> estimate;
  std::vector<Interval> bootstrap;  // empty when bootstrap = 0
  std::vector<Interval> normal;
  bool cancelled = false;  // IntervalOptions::cancelled fired
};
EstimatesWithIntervals ComputeIntervals(const UnitStatistics& stats,
                                        int num_metrics,
                                        const MetricsFromMeans& f,
                                        const IntervalOptions& options);

// Standard normal quantile (inverse CDF) for q in (0, 1).
double NormalQuantile(double q);

}  // namespace debias::eval

#endif  // DEBIAS_CORE_EVAL_UNBIASED_H_
