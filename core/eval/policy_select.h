// Data-driven choice of an estimator's knob and a "which estimator to
// trust" report (issue 27), on top of core/eval/policy.h.
//
// SLOPE (Su, Srinath & Krishnamurthy, "Adaptive estimator selection for
// off-policy evaluation", ICML 2020): candidates are ordered from the least
// biased (largest variance) to the most biased (smallest variance), e.g.
// switch-dr with tau = inf, then decreasing tau. With an interval
// I_i = [v_i - 2 se_i, v_i + 2 se_i] per candidate, SLOPE keeps the largest
// i whose intervals I_1..I_i still intersect (Lepski's principle): the
// bias it accepts stays within the noise of the less biased candidates.
// The width is the estimated standard error of each candidate (delta
// method), not the paper's worst-case bound: a practical choice of ours.
// The refinements of Tucker & Lee ("Improved estimator selection for
// off-policy evaluation", 2021) are not implemented.
//
// Trust report: per estimator an estimate of its squared bias against a
// reference unbiased estimator of the same call, max(0, (v - v_ref)^2 -
// se_ref^2) (the reference's own noise removed), its variance se^2, and
// their sum, an MSE estimate; the estimator with the smallest MSE estimate
// is recommended. The reference is, among sips, ips, dr, snips, sndr, rips
// and cascade-dr present (unbiased without a reward-model assumption; rips
// and cascade-dr under the cascade assumption), the one whose weights have
// the largest effective sample size, if at least 10 (or half the positions,
// for a log of fewer than 20): heavy-tailed weights make the delta-method se
// of a reference far too small. A biased estimator with a tiny variance is
// recommended only when its distance to the reference is within the
// reference's noise.
//
// Thread safety: pure functions.
#ifndef DEBIAS_CORE_EVAL_POLICY_SELECT_H_
#define DEBIAS_CORE_EVAL_POLICY_SELECT_H_

#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/eval/policy.h"
#include "nlohmann/json.hpp"

namespace debias::eval {

struct SlopeCandidate {
  double value = 0.0;
  double se = 0.0;  // >= 0
};

// Index of the candidate SLOPE keeps; candidates ordered least biased first.
// 0 for an empty or one-element list.
size_t SlopeSelect(std::span<const SlopeCandidate> candidates);

// Whether `e` has a knob SLOPE tunes: clip (ips, dr), tau (switch-dr),
// lambda (dr-os), subgaussian_lambda (subgaussian-ipw/-dr).
bool HasSlopeKnob(PolicyEstimator e);

struct SlopeChoice {
  std::string knob;               // "clip", "tau", "lambda", "subgaussian_lambda"
  std::vector<double> grid;       // least biased first
  std::vector<SlopeCandidate> candidates;
  size_t chosen = 0;
  PolicyOptions options;          // `options` with the chosen knob set
};

// Runs `options.estimator` over a grid of its knob (from the quantiles of
// the positive weights pi/mu: infinity, q99, q95, q90, q75, q50; lambda
// over their squares; subgaussian_lambda over 0, 0.001, 0.01, 0.1, 0.3) and
// applies SlopeSelect. INVALID_ARGUMENT as EstimatePolicyValue, or when the
// estimator has no knob.
absl::StatusOr<SlopeChoice> SlopeTune(std::span<const LoggedDecision> decisions,
                                      const PolicyOptions& options);

// The trust report (see above) for results[j] of estimator names[j]:
// {"reference": NAME or null, "recommended": NAME, "estimators": {NAME:
// {"value", "se", "bias_estimate", "squared_bias_estimate", "variance",
// "mse_estimate"}}, "note"}. Without a reference the bias and MSE
// estimates and the recommendation are null.
nlohmann::json TrustReport(std::span<const std::string> names,
                           std::span<const PolicyEstimator> estimators,
                           std::span<const PolicyResult> results,
                           double confidence);

// Several estimators on the same decisions, as EstimatePolicyValues; with
// `slope`, each estimator that HasSlopeKnob is run at its SlopeTune choice
// (the others as given). `slope_report` gets, per tuned estimator, {"knob",
// "grid", "values", "se", "chosen", "chosen_value"} (grid values of
// infinity as null) and `trust` the TrustReport of all of them.
struct PolicyEvaluation {
  std::vector<PolicyResult> results;
  nlohmann::json slope_report = nlohmann::json::object();
  nlohmann::json trust;
};
absl::StatusOr<PolicyEvaluation> EvaluatePolicies(
    std::span<const LoggedDecision> decisions,
    std::span<const std::string> names,
    std::span<const PolicyEstimator> estimators, const PolicyOptions& options,
    bool slope);

// The standard error behind a normal interval at `confidence`.
double StandardError(const Interval& normal, double confidence);

}  // namespace debias::eval

#endif  // DEBIAS_CORE_EVAL_POLICY_SELECT_H_
