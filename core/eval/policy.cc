#include "core/eval/policy.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace debias::eval {
namespace {

std::string Num(double x) { return absl::StrFormat("%g", x); }

// Bounds that keep weights, weighted rewards and their squares finite.
constexpr double kMinLoggingProb = 1e-12;
constexpr double kMaxAbsValue = 1e12;
bool ValidValue(double x) {
  return std::isfinite(x) && std::abs(x) <= kMaxAbsValue;
}

bool UsesRewardModel(PolicyEstimator e) {
  return e == PolicyEstimator::kDm || e == PolicyEstimator::kDr ||
         e == PolicyEstimator::kSwitchDr || e == PolicyEstimator::kDrOs;
}
bool UsesCorrection(PolicyEstimator e) {
  return e == PolicyEstimator::kDr || e == PolicyEstimator::kSwitchDr ||
         e == PolicyEstimator::kDrOs;
}

absl::Status DecisionError(size_t x, std::string_view field, size_t k, double v,
                           std::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat("decisions[", x, "].", std::string(field), "[", k,
                   "]=", Num(v), ": ", std::string(expected)));
}

absl::Status ValidateOptions(const PolicyOptions& o) {
  if (!(std::isfinite(o.clip) && o.clip >= 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("clip=", Num(o.clip),
                     ": clip must be 0 (none) or a finite weight > 0"));
  }
  if (!(o.tau > 0.0) || std::isnan(o.tau)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tau=", Num(o.tau), ": tau must be > 0"));
  }
  if (!(o.lambda > 0.0) || std::isnan(o.lambda)) {
    return absl::InvalidArgumentError(
        absl::StrCat("lambda=", Num(o.lambda), ": lambda must be > 0"));
  }
  if (o.bootstrap < 0 || o.bootstrap > 100000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bootstrap=", o.bootstrap, ": bootstrap must be in [0, 100000]"));
  }
  if (!(o.confidence >= 0.5 && o.confidence <= 0.9999)) {
    return absl::InvalidArgumentError(
        absl::StrCat("confidence=", Num(o.confidence),
                     ": confidence must be in [0.5, 0.9999]"));
  }
  if (o.num_threads < 1 || o.num_threads > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_threads=", o.num_threads, ": num_threads must be in [1, 64]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDecision(const LoggedDecision& d, size_t x,
                              PolicyEstimator est) {
  const size_t L = d.reward.size();
  if (L == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decisions[", x, "].reward: at least one position is required"));
  }
  if (d.logging_prob.size() != L || d.target_prob.size() != L) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decisions[", x,
        "]: reward, logging_prob and target_prob must have "
        "the same length, got ",
        L, ", ", d.logging_prob.size(), " and ", d.target_prob.size()));
  }
  if (UsesCorrection(est) && d.reward_hat.size() != L) {
    return absl::InvalidArgumentError(
        absl::StrCat("decisions[", x, "].reward_hat has ", d.reward_hat.size(),
                     " values for ", L, " positions; estimator ",
                     std::string(PolicyEstimatorName(est)),
                     " needs one reward-model prediction per position"));
  }
  for (size_t k = 0; k < L; ++k) {
    if (!ValidValue(d.reward[k])) {
      return DecisionError(x, "reward", k, d.reward[k],
                           "must be finite with |reward| <= 1e12");
    }
    double mu = d.logging_prob[k];
    if (!(std::isfinite(mu) && mu >= kMinLoggingProb && mu <= 1.0)) {
      return DecisionError(x, "logging_prob", k, mu,
                           "must be finite and in (0, 1] (at least 1e-12)");
    }
    double pi = d.target_prob[k];
    if (!(std::isfinite(pi) && pi >= 0.0 && pi <= 1.0)) {
      return DecisionError(x, "target_prob", k, pi,
                           "must be finite and in [0, 1]");
    }
    if (k < d.reward_hat.size() && !ValidValue(d.reward_hat[k])) {
      return DecisionError(x, "reward_hat", k, d.reward_hat[k],
                           "must be finite with |reward_hat| <= 1e12");
    }
  }
  if (UsesRewardModel(est) && !ValidValue(d.target_dm)) {
    return absl::InvalidArgumentError(
        absl::StrCat("decisions[", x, "].target_dm=", Num(d.target_dm),
                     ": must be finite with |target_dm| <= 1e12"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PolicyEstimator> ParsePolicyEstimator(std::string_view s) {
  if (s == "dm") return PolicyEstimator::kDm;
  if (s == "ips") return PolicyEstimator::kIps;
  if (s == "snips") return PolicyEstimator::kSnips;
  if (s == "dr") return PolicyEstimator::kDr;
  if (s == "switch-dr") return PolicyEstimator::kSwitchDr;
  if (s == "dr-os") return PolicyEstimator::kDrOs;
  return absl::InvalidArgumentError(absl::StrCat(
      "estimator=\"", std::string(s),
      "\": estimator must be one of dm, ips, snips, dr, switch-dr, dr-os"));
}

std::string_view PolicyEstimatorName(PolicyEstimator e) {
  switch (e) {
    case PolicyEstimator::kDm:
      return "dm";
    case PolicyEstimator::kIps:
      return "ips";
    case PolicyEstimator::kSnips:
      return "snips";
    case PolicyEstimator::kDr:
      return "dr";
    case PolicyEstimator::kSwitchDr:
      return "switch-dr";
    case PolicyEstimator::kDrOs:
      return "dr-os";
  }
  return "unknown";
}

absl::StatusOr<PolicyResult> EstimatePolicyValue(
    std::span<const LoggedDecision> decisions, const PolicyOptions& options) {
  if (absl::Status st = ValidateOptions(options); !st.ok()) return st;
  if (decisions.empty()) {
    return absl::InvalidArgumentError(
        "decisions: at least one logged decision is required");
  }
  const PolicyEstimator est = options.estimator;
  size_t max_len = 0;
  for (size_t x = 0; x < decisions.size(); ++x) {
    if (absl::Status st = ValidateDecision(decisions[x], x, est); !st.ok()) {
      return st;
    }
    max_len = std::max(max_len, decisions[x].reward.size());
  }

  // Per-decision statistics. SNIPS keeps, per position, the weighted reward,
  // the weight and the presence indicator; every other estimator is a plain
  // mean of one per-decision value.
  const bool snips = est == PolicyEstimator::kSnips;
  const int L = static_cast<int>(max_len);
  UnitStatistics table;
  table.num_stats = snips ? 3 * L : 1;
  table.values.assign(decisions.size() * table.num_stats, 0.0);
  std::vector<double> weights;
  uint64_t zero = 0, clipped = 0, switched = 0, slots = 0;
  for (size_t x = 0; x < decisions.size(); ++x) {
    const LoggedDecision& d = decisions[x];
    double* row = table.values.data() + x * table.num_stats;
    double value = UsesRewardModel(est) ? d.target_dm : 0.0;
    for (size_t k = 0; k < d.reward.size(); ++k) {
      ++slots;
      double w = d.target_prob[k] / d.logging_prob[k];
      if (options.clip > 0 && w > options.clip) {
        w = options.clip;
        ++clipped;
      }
      if (w > 0) {
        weights.push_back(w);
      } else {
        ++zero;
      }
      switch (est) {
        case PolicyEstimator::kDm:
          break;
        case PolicyEstimator::kIps:
          value += w * d.reward[k];
          break;
        case PolicyEstimator::kSnips:
          row[3 * k] = w * d.reward[k];
          row[3 * k + 1] = w;
          row[3 * k + 2] = 1.0;
          break;
        case PolicyEstimator::kDr:
          value += w * (d.reward[k] - d.reward_hat[k]);
          break;
        case PolicyEstimator::kSwitchDr:
          if (w <= options.tau) {
            value += w * (d.reward[k] - d.reward_hat[k]);
          } else {
            ++switched;
          }
          break;
        case PolicyEstimator::kDrOs: {
          double ws = std::isinf(options.lambda)
                          ? w
                          : options.lambda * w / (w * w + options.lambda);
          value += ws * (d.reward[k] - d.reward_hat[k]);
          break;
        }
      }
    }
    if (!snips) row[0] = value;
  }
  MetricsFromMeans f = [&](std::span<const double> m, std::span<double> out) {
    if (!snips) {
      out[0] = m[0];
      return;
    }
    double v = 0.0;
    for (int k = 0; k < L; ++k) {
      if (m[3 * k + 1] > 0) v += m[3 * k + 2] * m[3 * k] / m[3 * k + 1];
    }
    out[0] = v;
  };
  IntervalOptions io{options.bootstrap, options.seed, options.confidence,
                     options.num_threads, options.cancelled};
  EstimatesWithIntervals e = ComputeIntervals(table, 1, f, io);
  if (e.cancelled) return absl::CancelledError("evaluation cancelled (deadline or client)");

  PolicyResult result;
  result.value = e.estimate[0];
  result.normal_interval = e.normal[0];
  if (!e.bootstrap.empty()) result.interval = e.bootstrap[0];
  nlohmann::json& dj = result.diagnostics;
  dj["estimator"] = std::string(PolicyEstimatorName(est));
  dj["decisions"] = decisions.size();
  dj["positions"] = slots;
  dj["clip"] = options.clip;
  if (est == PolicyEstimator::kSwitchDr) {
    dj["tau"] = options.tau;
    dj["switched_to_dm"] = switched;
  }
  if (est == PolicyEstimator::kDrOs) dj["lambda"] = options.lambda;
  nlohmann::json w = SummarizeWeights(weights);
  w["zero_weights"] = zero;
  w["clipped"] = clipped;
  w["clipped_fraction"] = slots ? static_cast<double>(clipped) / slots : 0.0;
  dj["weights"] = w;
  dj["bootstrap"] = {{"resamples", options.bootstrap},
                     {"confidence", options.confidence},
                     {"seed", options.seed}};
  nlohmann::json warnings = nlohmann::json::array();
  if (est != PolicyEstimator::kDm) {
    if (weights.empty()) {
      warnings.push_back(
          "every weight is 0: the target policy never chose a logged action");
    } else {
      AppendWeightWarnings(w, warnings);
    }
  }
  if (decisions.size() < 30) {
    warnings.push_back(absl::StrCat("only ", decisions.size(),
                                    " decisions: intervals are unreliable"));
  }
  dj["warnings"] = warnings;
  return result;
}

}  // namespace debias::eval
