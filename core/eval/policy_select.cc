#include "core/eval/policy_select.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace debias::eval {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Quantiles of the positive raw weights pi/mu, largest first, distinct.
std::vector<double> WeightQuantiles(std::span<const LoggedDecision> d) {
  std::vector<double> w;
  for (const LoggedDecision& x : d) {
    for (size_t k = 0; k < x.reward.size(); ++k) {
      if (k < x.logging_prob.size() && k < x.target_prob.size() &&
          x.logging_prob[k] > 0 && x.target_prob[k] > 0) {
        w.push_back(x.target_prob[k] / x.logging_prob[k]);
      }
    }
  }
  std::vector<double> out;
  if (w.empty()) return out;
  std::sort(w.begin(), w.end());
  for (double q : {0.99, 0.95, 0.9, 0.75, 0.5}) {
    const double v = w[static_cast<size_t>(q * (w.size() - 1))];
    if (out.empty() || v < out.back()) out.push_back(v);
  }
  return out;
}

}  // namespace

size_t SlopeSelect(std::span<const SlopeCandidate> c) {
  if (c.empty()) return 0;
  double lo = -kInf, hi = kInf;
  size_t chosen = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    lo = std::max(lo, c[i].value - 2 * c[i].se);
    hi = std::min(hi, c[i].value + 2 * c[i].se);
    if (lo > hi) break;
    chosen = i;
  }
  return chosen;
}

bool HasSlopeKnob(PolicyEstimator e) {
  switch (e) {
    case PolicyEstimator::kIps:
    case PolicyEstimator::kDr:
    case PolicyEstimator::kSwitchDr:
    case PolicyEstimator::kDrOs:
    case PolicyEstimator::kSubGaussianIps:
    case PolicyEstimator::kSubGaussianDr:
      return true;
    default:
      return false;
  }
}

double StandardError(const Interval& normal, double confidence) {
  const double z = NormalQuantile(0.5 + confidence / 2);
  return z > 0 ? (normal.high - normal.low) / (2 * z) : 0.0;
}

absl::StatusOr<SlopeChoice> SlopeTune(std::span<const LoggedDecision> decisions,
                                      const PolicyOptions& options) {
  const PolicyEstimator e = options.estimator;
  if (!HasSlopeKnob(e)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "slope: estimator ", std::string(PolicyEstimatorName(e)),
        " has no knob to tune (ips, dr: clip; switch-dr: tau; dr-os: lambda; "
        "subgaussian-ipw/-dr: subgaussian_lambda)"));
  }
  SlopeChoice out;
  const std::vector<double> q = WeightQuantiles(decisions);
  out.grid.push_back(e == PolicyEstimator::kSubGaussianIps ||
                             e == PolicyEstimator::kSubGaussianDr
                         ? 0.0
                         : kInf);
  switch (e) {
    case PolicyEstimator::kIps:
    case PolicyEstimator::kDr:
      out.knob = "clip";
      out.grid.insert(out.grid.end(), q.begin(), q.end());
      break;
    case PolicyEstimator::kSwitchDr:
      out.knob = "tau";
      out.grid.insert(out.grid.end(), q.begin(), q.end());
      break;
    case PolicyEstimator::kDrOs:
      out.knob = "lambda";  // w' = lambda w / (w^2 + lambda) bends near sqrt(lambda)
      for (double v : q) out.grid.push_back(v * v);
      break;
    default:
      out.knob = "subgaussian_lambda";
      for (double g : {0.001, 0.01, 0.1, 0.3}) out.grid.push_back(g);
      break;
  }
  PolicyOptions o = options;
  o.bootstrap = 0;  // the normal interval's se is what SLOPE compares
  std::vector<PolicyOptions> tried;
  for (double v : out.grid) {
    if (out.knob == "clip") o.clip = std::isinf(v) ? 0.0 : v;
    if (out.knob == "tau") o.tau = v;
    if (out.knob == "lambda") o.lambda = v;
    if (out.knob == "subgaussian_lambda") o.subgaussian_lambda = v;
    auto r = EstimatePolicyValue(decisions, o);
    if (!r.ok()) return r.status();
    out.candidates.push_back(
        {r->value, StandardError(r->normal_interval, o.confidence)});
    tried.push_back(o);
  }
  out.chosen = SlopeSelect(out.candidates);
  out.options = tried[out.chosen];
  out.options.bootstrap = options.bootstrap;
  return out;
}

nlohmann::json TrustReport(std::span<const std::string> names,
                           std::span<const PolicyEstimator> estimators,
                           std::span<const PolicyResult> results,
                           double confidence) {
  nlohmann::json out;
  out["estimators"] = nlohmann::json::object();
  // The reference: among the unbiased estimators present, the one with the
  // largest effective sample size of its weights (ties: the order below),
  // if at least kMinReferenceEss (or half the positions of a smaller log).
  // A heavy-tailed SIPS's delta-method se is far too small, and a reference
  // trusted with it would call every other estimator biased.
  constexpr double kMinReferenceEss = 10;
  int ref = -1;
  double ref_ess = 0;
  for (PolicyEstimator cand :
       {PolicyEstimator::kSips, PolicyEstimator::kIps, PolicyEstimator::kDr,
        PolicyEstimator::kSnips, PolicyEstimator::kSndr, PolicyEstimator::kRips,
        PolicyEstimator::kCascadeDr}) {
    for (size_t j = 0; j < estimators.size(); ++j) {
      if (estimators[j] != cand) continue;
      const nlohmann::json& d = results[j].diagnostics;
      const double ess = d.contains("weights") && d["weights"].contains("ess")
                             ? d["weights"]["ess"].get<double>()
                             : kMinReferenceEss;
      const double positions = d.contains("positions")
                                   ? d["positions"].get<double>()
                                   : 2 * kMinReferenceEss;
      if (ess >= std::min(kMinReferenceEss, positions / 2) &&
          (ref < 0 || ess > ref_ess)) {
        ref = static_cast<int>(j);
        ref_ess = ess;
      }
    }
  }
  const double ref_se =
      ref >= 0 ? StandardError(results[ref].normal_interval, confidence) : 0.0;
  int best = -1;
  double best_mse = kInf;
  for (size_t j = 0; j < names.size(); ++j) {
    const double se = StandardError(results[j].normal_interval, confidence);
    nlohmann::json row = {{"value", results[j].value},
                          {"se", se},
                          {"variance", se * se}};
    if (ref >= 0) {
      const double bias = results[j].value - results[ref].value;
      const double b2 = static_cast<int>(j) == ref
                            ? 0.0
                            : std::max(0.0, bias * bias - ref_se * ref_se);
      row["bias_estimate"] = static_cast<int>(j) == ref ? 0.0 : bias;
      row["squared_bias_estimate"] = b2;
      row["mse_estimate"] = b2 + se * se;
      if (b2 + se * se < best_mse) {
        best_mse = b2 + se * se;
        best = static_cast<int>(j);
      }
    } else {
      row["bias_estimate"] = nullptr;
      row["squared_bias_estimate"] = nullptr;
      row["mse_estimate"] = nullptr;
    }
    out["estimators"][names[j]] = row;
  }
  out["reference"] = ref >= 0 ? nlohmann::json(names[ref]) : nlohmann::json();
  out["recommended"] = best >= 0 ? nlohmann::json(names[best]) : nlohmann::json();
  out["note"] =
      ref >= 0
          ? absl::StrCat(
                "squared bias estimated against ", names[ref],
                " (unbiased without reward-model assumptions) as max(0, "
                "(v - v_ref)^2 - se_ref^2); mse = squared bias + se^2; "
                "recommended = smallest mse estimate")
          : "no unbiased reference (sips, ips, dr, snips or sndr) in this "
            "call: bias not estimated";
  return out;
}

absl::StatusOr<PolicyEvaluation> EvaluatePolicies(
    std::span<const LoggedDecision> decisions,
    std::span<const std::string> names,
    std::span<const PolicyEstimator> estimators, const PolicyOptions& options,
    bool slope) {
  PolicyEvaluation out;
  if (!slope) {
    auto r = EstimatePolicyValues(decisions, estimators, options);
    if (!r.ok()) return r.status();
    out.results = *std::move(r);
  } else {
    for (size_t j = 0; j < estimators.size(); ++j) {
      PolicyOptions o = options;
      o.estimator = estimators[j];
      if (HasSlopeKnob(estimators[j])) {
        auto choice = SlopeTune(decisions, o);
        if (!choice.ok()) return choice.status();
        nlohmann::json grid = nlohmann::json::array(),
                       values = nlohmann::json::array(),
                       se = nlohmann::json::array();
        for (size_t i = 0; i < choice->grid.size(); ++i) {
          grid.push_back(std::isinf(choice->grid[i])
                             ? nlohmann::json()
                             : nlohmann::json(choice->grid[i]));
          values.push_back(choice->candidates[i].value);
          se.push_back(choice->candidates[i].se);
        }
        out.slope_report[names[j]] = {
            {"knob", choice->knob},   {"grid", grid},
            {"values", values},       {"se", se},
            {"chosen", grid[choice->chosen]},
            {"chosen_value", choice->candidates[choice->chosen].value}};
        o = choice->options;
      }
      auto r = EstimatePolicyValue(decisions, o);
      if (!r.ok()) return r.status();
      out.results.push_back(*std::move(r));
    }
  }
  out.trust = TrustReport(names, estimators, out.results, options.confidence);
  return out;
}

}  // namespace debias::eval
