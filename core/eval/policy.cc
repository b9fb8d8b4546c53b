#include "core/eval/policy.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"

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

bool UsesCorrection(PolicyEstimator e) {
  return e == PolicyEstimator::kDr || e == PolicyEstimator::kSwitchDr ||
         e == PolicyEstimator::kDrOs || e == PolicyEstimator::kSndr ||
         e == PolicyEstimator::kSubGaussianDr || e == PolicyEstimator::kCascadeDr;
}
bool UsesRewardModel(PolicyEstimator e) {
  return e == PolicyEstimator::kDm || UsesCorrection(e);
}
// As the Open Bandit Pipeline: only IPW, DR (and balanced IPW) clip.
bool Clips(PolicyEstimator e) {
  return e == PolicyEstimator::kIps || e == PolicyEstimator::kDr ||
         e == PolicyEstimator::kBalancedIps;
}
// Estimators whose value is a ratio of means per position.
bool SelfNormalised(PolicyEstimator e) {
  return e == PolicyEstimator::kSnips || e == PolicyEstimator::kSndr ||
         e == PolicyEstimator::kSnMips;
}
bool UsesEmbeddings(PolicyEstimator e) {
  return e == PolicyEstimator::kMips || e == PolicyEstimator::kSnMips;
}
// Estimators that start from DM's term dm_x (Cascade-DR adds its own
// per-position baseline instead).
bool StartsFromDm(PolicyEstimator e) {
  return UsesRewardModel(e) && e != PolicyEstimator::kCascadeDr;
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
  if (!(o.tau >= 0.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tau=", Num(o.tau), ": tau must be >= 0 (0 = DM, inf = DR)"));
  }
  if (!(o.lambda >= 0.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lambda=", Num(o.lambda), ": lambda must be >= 0 (0 = DM, inf = DR)"));
  }
  if (!(o.subgaussian_lambda >= 0.0 && o.subgaussian_lambda <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("subgaussian_lambda=", Num(o.subgaussian_lambda),
                     ": subgaussian_lambda must be in [0, 1]"));
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
  if (UsesEmbeddings(est) && d.embedding.size() != L) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decisions[", x, "].embedding has ", d.embedding.size(), " values for ", L,
        " positions; estimator ", std::string(PolicyEstimatorName(est)),
        " needs the logged action's embedding (category) at every position"));
  }
  if (est == PolicyEstimator::kCascadeDr &&
      d.target_reward_hat.size() != L && !(L == 1 && d.target_reward_hat.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decisions[", x, "].target_reward_hat has ", d.target_reward_hat.size(),
        " values for ", L, " positions; cascade-dr needs the target's expected "
        "reward-model prediction at every position (may be empty for one action)"));
  }
  for (size_t k = 0; k < d.target_reward_hat.size(); ++k) {
    if (!ValidValue(d.target_reward_hat[k])) {
      return DecisionError(x, "target_reward_hat", k, d.target_reward_hat[k],
                           "must be finite with |target_reward_hat| <= 1e12");
    }
  }
  if (est == PolicyEstimator::kBalancedIps && d.action.size() != L) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decisions[", x, "].action has ", d.action.size(), " values for ", L,
        " positions; estimator balanced-ipw needs the logged item of every "
        "position"));
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

// Weights estimated per cell (context, position, key_k) by a saturated
// (tabular) regression, for two estimators:
//  * balanced IPW (Sondhi et al. 2020), key = the item: the odds of the
//    saturated classifier, w(c) = n_pi(c) / n_mu(c), where n_mu(c) counts
//    the logged decisions in c and n_pi(c) = n_{x,k} * mean pi_k over c is
//    the expected number of target draws in c when every logged decision
//    with context x and a k-th position draws one item from pi;
//  * MIPS (Saito & Joachims 2022), key = the embedding: w(x, k, e) =
//    E_mu[w_k | x, k, e] = p(e | x, pi) / p(e | x, mu), the mean of the
//    logged action weights over the cell.
struct BalancingWeights {
  std::vector<std::vector<double>> weight;  // [decision][position]
  // Marginal only: the mean reward of the decision's cell, for the
  // linearised per-decision term w_hat r + (w - w_hat) r_bar (same mean;
  // its variance includes the weight regression's).
  std::vector<std::vector<double>> cell_reward;
  size_t cells = 0;
};
BalancingWeights FitCellWeights(std::span<const LoggedDecision> d,
                                bool marginal) {
  struct Cell {
    double n = 0, sum = 0;  // sum of pi_k (balanced) or of w_k (marginal)
    double reward = 0;
  };
  auto key = [&](const LoggedDecision& x, size_t k) {
    return std::tuple<uint64_t, size_t, uint64_t>{
        x.context, k, marginal ? x.embedding[k] : x.action[k]};
  };
  absl::flat_hash_map<std::tuple<uint64_t, size_t, uint64_t>, Cell> cells;
  absl::flat_hash_map<std::pair<uint64_t, size_t>, double> contexts;
  for (const LoggedDecision& x : d) {
    for (size_t k = 0; k < x.reward.size(); ++k) {
      Cell& c = cells[key(x, k)];
      c.n += 1;
      c.sum += marginal ? x.target_prob[k] / x.logging_prob[k] : x.target_prob[k];
      c.reward += x.reward[k];
      contexts[{x.context, k}] += 1;
    }
  }
  BalancingWeights out;
  out.cells = cells.size();
  out.weight.resize(d.size());
  if (marginal) out.cell_reward.resize(d.size());
  for (size_t i = 0; i < d.size(); ++i) {
    const LoggedDecision& x = d[i];
    out.weight[i].resize(x.reward.size());
    for (size_t k = 0; k < x.reward.size(); ++k) {
      const Cell& c = cells[key(x, k)];
      if (marginal) out.cell_reward[i].push_back(c.reward / c.n);
      out.weight[i][k] = marginal
                             ? c.sum / c.n
                             : contexts[{x.context, k}] * c.sum / c.n / c.n;
    }
  }
  return out;
}

// Stage 1 of EstimatePolicyValue: the options and every decision; sets
// *max_len to the longest slate.
absl::Status ValidateInputs(std::span<const LoggedDecision> decisions,
                            const PolicyOptions& options, size_t* max_len) {
  if (absl::Status st = ValidateOptions(options); !st.ok()) return st;
  if (decisions.empty()) {
    return absl::InvalidArgumentError(
        "decisions: at least one logged decision is required");
  }
  for (size_t x = 0; x < decisions.size(); ++x) {
    if (absl::Status st = ValidateDecision(decisions[x], x, options.estimator); !st.ok()) {
      return st;
    }
    *max_len = std::max(*max_len, decisions[x].reward.size());
  }
  return absl::OkStatus();
}

// Stage 2: the estimated weights of balanced IPW and (S)MIPS; empty for
// every other estimator.
BalancingWeights FitBalancing(std::span<const LoggedDecision> decisions,
                              PolicyEstimator est) {
  if (est == PolicyEstimator::kBalancedIps) {
    return FitCellWeights(decisions, /*marginal=*/false);
  }
  if (UsesEmbeddings(est)) return FitCellWeights(decisions, /*marginal=*/true);
  return {};
}

// Stages 3 and 4: the per-decision statistics of one estimator, then its
// diagnostics. The self-normalised estimators keep, per position, the
// weighted reward (or residual), the weight and the presence indicator, plus
// DM's term; every other estimator is a plain mean of one per-decision
// value. The pass tallies the weights it used for the diagnostics.
class PolicyPass {
 public:
  PolicyPass(const PolicyOptions& options, const BalancingWeights& balancing, int max_len)
      : options_(options),
        est_(options.estimator),
        balancing_(balancing),
        self_normalised_(SelfNormalised(est_)),
        clips_(Clips(est_) && options.clip > 0),
        L_(max_len) {}

  UnitStatistics Statistics(std::span<const LoggedDecision> decisions) {
    UnitStatistics table;
    table.num_stats = self_normalised_ ? 3 * L_ + 1 : 1;
    table.values.assign(decisions.size() * table.num_stats, 0.0);
    for (size_t x = 0; x < decisions.size(); ++x) {
      AddDecision(x, decisions[x], table.values.data() + x * table.num_stats);
    }
    return table;
  }

  // The estimate from the means of the statistics' columns.
  MetricsFromMeans ValueFromMeans() const {
    return [self_normalised = self_normalised_, L = L_](std::span<const double> m,
                                                        std::span<double> out) {
      if (!self_normalised) {
        out[0] = m[0];
        return;
      }
      double v = m[3 * L];
      for (int k = 0; k < L; ++k) {
        if (m[3 * k + 1] > 0) v += m[3 * k + 2] * m[3 * k] / m[3 * k + 1];
      }
      out[0] = v;
    };
  }

  nlohmann::json Diagnostics(size_t num_decisions) const;

 private:
  void AddDecision(size_t x, const LoggedDecision& d, double* row);
  // Adds position k's term to `value` (or to the row, self-normalised);
  // returns the weight that multiplies its reward or residual.
  double AddPosition(size_t x, const LoggedDecision& d, size_t k, double w, double raw,
                     double before, double prefix, double slate, double& value,
                     double* row);
  nlohmann::json Warnings(size_t num_decisions, const nlohmann::json& w) const;

  const PolicyOptions& options_;
  const PolicyEstimator est_;
  const BalancingWeights& balancing_;
  const bool self_normalised_;
  const bool clips_;
  const int L_;
  // Tally of the weights used.
  std::vector<double> weights_;
  uint64_t zero_ = 0, clipped_ = 0, switched_ = 0, slots_ = 0;
  bool any_target_mass_ = false;
};

void PolicyPass::AddDecision(size_t x, const LoggedDecision& d, double* row) {
  double value = StartsFromDm(est_) ? d.target_dm : 0.0;
  // Slate weights: w_{1:k-1} (prefix) and w_{1:L} (whole slate).
  double prefix = 1.0, slate = 1.0;
  for (size_t k = 0; k < d.reward.size(); ++k) {
    slate *= d.target_prob[k] / d.logging_prob[k];
  }
  for (size_t k = 0; k < d.reward.size(); ++k) {
    ++slots_;
    const bool estimated = !balancing_.weight.empty();
    double w = estimated ? balancing_.weight[x][k]
                         : d.target_prob[k] / d.logging_prob[k];
    const double before = prefix;
    const double raw = d.target_prob[k] / d.logging_prob[k];
    prefix *= raw;
    any_target_mass_ = any_target_mass_ || w > 0;
    if (clips_ && w > options_.clip) {
      w = options_.clip;
      ++clipped_;
    }
    const double used = AddPosition(x, d, k, w, raw, before, prefix, slate, value, row);
    if (used > 0) {
      weights_.push_back(used);
    } else {
      ++zero_;
    }
  }
  if (self_normalised_) {
    row[3 * L_] = est_ == PolicyEstimator::kSndr ? d.target_dm : 0.0;
  } else {
    row[0] = value;
  }
}

double PolicyPass::AddPosition(size_t x, const LoggedDecision& d, size_t k, double w,
                               double raw, double before, double prefix, double slate,
                               double& value, double* row) {
  const double g = options_.subgaussian_lambda;
  const double residual = UsesCorrection(est_) ? d.reward[k] - d.reward_hat[k] : 0.0;
  double used = w;  // the weight that multiplies the reward or residual
  switch (est_) {
    case PolicyEstimator::kDm:
      used = 0;
      break;
    case PolicyEstimator::kIps:
    case PolicyEstimator::kIips:
    case PolicyEstimator::kBalancedIps:
      value += w * d.reward[k];
      break;
    case PolicyEstimator::kMips:
      value += w * d.reward[k] + (raw - w) * balancing_.cell_reward[x][k];
      break;
    case PolicyEstimator::kSnMips:
      row[3 * k] = w * d.reward[k] + (raw - w) * balancing_.cell_reward[x][k];
      row[3 * k + 1] = raw;  // sums to sum w_hat within every cell
      row[3 * k + 2] = 1.0;
      break;
    case PolicyEstimator::kSips:
      used = slate;
      value += slate * d.reward[k];
      break;
    case PolicyEstimator::kRips:
      used = prefix;
      value += prefix * d.reward[k];
      break;
    case PolicyEstimator::kCascadeDr:
      used = prefix;
      value += prefix * residual +
               before * (d.target_reward_hat.empty() ? d.target_dm
                                                     : d.target_reward_hat[k]);
      break;
    case PolicyEstimator::kSnips:
      row[3 * k] = w * d.reward[k];
      row[3 * k + 1] = w;
      row[3 * k + 2] = 1.0;
      break;
    case PolicyEstimator::kSndr:
      row[3 * k] = w * residual;
      row[3 * k + 1] = w;
      row[3 * k + 2] = 1.0;
      break;
    case PolicyEstimator::kDr:
      value += w * residual;
      break;
    case PolicyEstimator::kSwitchDr:
      if (w <= options_.tau) {
        value += w * residual;
      } else {
        ++switched_;
      }
      break;
    case PolicyEstimator::kDrOs:
      used = std::isinf(options_.lambda)
                 ? w
                 : (options_.lambda > 0
                        ? options_.lambda * w / (w * w + options_.lambda)
                        : 0.0);
      value += used * residual;
      break;
    case PolicyEstimator::kSubGaussianIps:
      used = w > 0 ? w / ((1.0 - g) + g * w) : 0.0;
      value += used * d.reward[k];
      break;
    case PolicyEstimator::kSubGaussianDr:
      used = w > 0 ? w / ((1.0 - g) + g * w) : 0.0;
      value += used * residual;
      break;
  }
  return used;
}

nlohmann::json PolicyPass::Diagnostics(size_t num_decisions) const {
  nlohmann::json dj;
  dj["estimator"] = std::string(PolicyEstimatorName(est_));
  dj["decisions"] = num_decisions;
  dj["positions"] = slots_;
  dj["clip"] = options_.clip;
  dj["clip_applied"] = clips_;
  if (est_ == PolicyEstimator::kSwitchDr) {
    dj["tau"] = options_.tau;
    dj["switched_to_dm"] = switched_;
  }
  if (est_ == PolicyEstimator::kDrOs) dj["lambda"] = options_.lambda;
  if (est_ == PolicyEstimator::kSubGaussianIps ||
      est_ == PolicyEstimator::kSubGaussianDr) {
    dj["subgaussian_lambda"] = options_.subgaussian_lambda;
  }
  if (UsesEmbeddings(est_)) {
    dj["cells"] = balancing_.cells;
    dj["marginal_weight"] =
        "mean of the logged action weights over (context, position, "
        "embedding): E_mu[w | x, k, e] = p(e | x, pi) / p(e | x, mu)";
  }
  if (est_ == PolicyEstimator::kBalancedIps) {
    dj["cells"] = balancing_.cells;
    dj["classifier"] =
        "saturated (tabular) over (context, position, item); weight = odds "
        "n_pi / n_mu";
  }
  nlohmann::json w = SummarizeWeights(weights_);
  w["zero_weights"] = zero_;
  w["clipped"] = clipped_;
  w["clipped_fraction"] = slots_ ? static_cast<double>(clipped_) / slots_ : 0.0;
  dj["weights"] = w;
  dj["bootstrap"] = {{"resamples", options_.bootstrap},
                     {"confidence", options_.confidence},
                     {"seed", options_.seed}};
  dj["warnings"] = Warnings(num_decisions, w);
  return dj;
}

nlohmann::json PolicyPass::Warnings(size_t num_decisions, const nlohmann::json& w) const {
  nlohmann::json warnings = nlohmann::json::array();
  if (options_.clip > 0 && !Clips(est_)) {
    warnings.push_back(absl::StrCat(
        "clip=", Num(options_.clip), " not applied: ",
        std::string(PolicyEstimatorName(est_)),
        " does not clip (only ips, dr and balanced-ipw do, as in the Open "
        "Bandit Pipeline)"));
  }
  if (est_ != PolicyEstimator::kDm) {
    if (!any_target_mass_) {
      warnings.push_back(
          "every weight is 0: the target policy never chose a logged action");
    } else if (!weights_.empty()) {
      AppendWeightWarnings(w, warnings);
    }
  }
  if (num_decisions < 30) {
    warnings.push_back(absl::StrCat("only ", num_decisions,
                                    " decisions: intervals are unreliable"));
  }
  return warnings;
}

}  // namespace

absl::StatusOr<PolicyEstimator> ParsePolicyEstimator(std::string_view s) {
  if (s == "dm") return PolicyEstimator::kDm;
  if (s == "ips" || s == "ipw") return PolicyEstimator::kIps;
  if (s == "snips" || s == "snipw") return PolicyEstimator::kSnips;
  if (s == "dr") return PolicyEstimator::kDr;
  if (s == "switch-dr") return PolicyEstimator::kSwitchDr;
  if (s == "dr-os") return PolicyEstimator::kDrOs;
  if (s == "sndr") return PolicyEstimator::kSndr;
  if (s == "subgaussian-ipw") return PolicyEstimator::kSubGaussianIps;
  if (s == "subgaussian-dr") return PolicyEstimator::kSubGaussianDr;
  if (s == "balanced-ipw") return PolicyEstimator::kBalancedIps;
  if (s == "mips") return PolicyEstimator::kMips;
  if (s == "snmips" || s == "sn-mips") return PolicyEstimator::kSnMips;
  if (s == "iips") return PolicyEstimator::kIips;
  if (s == "sips") return PolicyEstimator::kSips;
  if (s == "rips") return PolicyEstimator::kRips;
  if (s == "cascade-dr") return PolicyEstimator::kCascadeDr;
  return absl::InvalidArgumentError(absl::StrCat(
      "estimator=\"", std::string(s),
      "\": estimator must be one of dm, ips, snips, dr, switch-dr, dr-os, "
      "sndr, subgaussian-ipw, subgaussian-dr, balanced-ipw, mips, snmips, "
      "iips, sips, rips, cascade-dr"));
}

bool PolicyEstimatorUsesRewardModel(PolicyEstimator e) {
  return UsesRewardModel(e);
}
bool PolicyEstimatorUsesActions(PolicyEstimator e) {
  return e == PolicyEstimator::kBalancedIps;
}
bool PolicyEstimatorUsesEmbeddings(PolicyEstimator e) {
  return UsesEmbeddings(e);
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
    case PolicyEstimator::kSndr:
      return "sndr";
    case PolicyEstimator::kSubGaussianIps:
      return "subgaussian-ipw";
    case PolicyEstimator::kSubGaussianDr:
      return "subgaussian-dr";
    case PolicyEstimator::kBalancedIps:
      return "balanced-ipw";
    case PolicyEstimator::kMips:
      return "mips";
    case PolicyEstimator::kSnMips:
      return "snmips";
    case PolicyEstimator::kIips:
      return "iips";
    case PolicyEstimator::kSips:
      return "sips";
    case PolicyEstimator::kRips:
      return "rips";
    case PolicyEstimator::kCascadeDr:
      return "cascade-dr";
  }
  return "unknown";
}

absl::StatusOr<PolicyResult> EstimatePolicyValue(
    std::span<const LoggedDecision> decisions, const PolicyOptions& options) {
  size_t max_len = 0;
  if (absl::Status st = ValidateInputs(decisions, options, &max_len); !st.ok()) {
    return st;
  }
  const BalancingWeights balancing = FitBalancing(decisions, options.estimator);
  PolicyPass pass(options, balancing, static_cast<int>(max_len));
  const UnitStatistics table = pass.Statistics(decisions);
  IntervalOptions io{options.bootstrap, options.seed, options.confidence,
                     options.num_threads, options.cancelled};
  EstimatesWithIntervals e = ComputeIntervals(table, 1, pass.ValueFromMeans(), io);
  if (e.cancelled) return absl::CancelledError("evaluation cancelled (deadline or client)");

  PolicyResult result;
  result.value = e.estimate[0];
  result.normal_interval = e.normal[0];
  if (!e.bootstrap.empty()) result.interval = e.bootstrap[0];
  result.diagnostics = pass.Diagnostics(decisions.size());
  return result;
}

absl::StatusOr<std::vector<PolicyResult>> EstimatePolicyValues(
    std::span<const LoggedDecision> decisions,
    std::span<const PolicyEstimator> estimators, const PolicyOptions& options) {
  if (estimators.empty()) {
    return absl::InvalidArgumentError(
        "estimators: at least one estimator is required");
  }
  std::vector<PolicyResult> out;
  out.reserve(estimators.size());
  PolicyOptions o = options;
  for (PolicyEstimator e : estimators) {
    o.estimator = e;
    auto r = EstimatePolicyValue(decisions, o);
    if (!r.ok()) return r.status();
    out.push_back(*std::move(r));
  }
  return out;
}

}  // namespace debias::eval
