#include "core/train/data_defaults.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace debias::train {

absl::StatusOr<ResolvedLabels> ResolveLabels(const data::DatasetView& view,
                                             FeedbackKind kind,
                                             std::optional<double> threshold) {
  if (threshold && !std::isfinite(*threshold)) {
    return absl::InvalidArgumentError("threshold must be a finite number");
  }
  ResolvedLabels out;
  if (kind == FeedbackKind::kImplicit) {
    out.rule.threshold = threshold;
    out.source = threshold ? "clicks: label >= threshold" : "clicks: label > 0";
    return out;
  }
  bool binary = true;
  float lo = 0, hi = 0;
  for (size_t e = 0; e < view.num_events(); ++e) {
    const float l = view.label[e];
    if (e == 0 || l < lo) lo = l;
    if (e == 0 || l > hi) hi = l;
    binary = binary && (l == 0.0f || l == 1.0f);
  }
  if (binary) {
    if (threshold && !(*threshold > 0 && *threshold <= 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "threshold=", *threshold,
          ": the dataset's labels are already 0/1 (binarised at ingest), so a "
          "threshold would turn every label into ", *threshold > 1 ? "0" : "1",
          "; leave threshold unset (labels are used as they are)"));
    }
    out.rule.threshold = 0.5;
    out.source = "labels already 0/1 (binarised at ingest): used as they are";
    return out;
  }
  if (threshold) {
    out.rule.threshold = *threshold;
    out.source = absl::StrCat("ratings: label >= ", *threshold, " (given)");
    return out;
  }
  out.rule.threshold = 0.5 * (static_cast<double>(lo) + hi);
  out.source = absl::StrCat("ratings ", lo, "..", hi, ": label >= ", *out.rule.threshold,
                            ", the midpoint of the scale (set threshold to change)");
  return out;
}

PropensityChoice ChoosePropensity(const data::DatasetView& view, FeedbackKind kind,
                                  bool has_mar_sample) {
  PropensityChoice c;
  bool all_logged = view.has_propensities() && view.num_events() > 0;
  for (size_t e = 0; all_logged && e < view.num_events(); ++e) {
    const float p = view.propensity[e];
    all_logged = std::isfinite(p) && p > 0 && p <= 1;
  }
  if (all_logged) {
    c.name = "logged";
    c.reason = "logged, because every event carries a propensity";
    return c;
  }
  if (kind == FeedbackKind::kImplicit) {
    size_t impressions = 0;
    for (size_t e = 0; e < view.num_events(); ++e) impressions += view.label[e] == 0.0f;
    if (impressions > 0) {
      c.name = "impressions";
      c.reason = absl::StrCat("impressions, because the log records ", impressions,
                              " exposures without a click (label 0): exposure is "
                              "estimated from what was shown, not from clicks");
      return c;
    }
    c.name = "popularity";
    c.params["eta"] = "1";
    c.reason =
        "popularity (click counts, eta 1), because the log has only clicks: no logged "
        "propensities, no impressions";
    c.warning =
        "propensity estimated from click counts, which mix relevance into exposure: "
        "log impressions (label 0 events) or the logging policy's propensities for an "
        "exposure estimate that does not";
    return c;
  }
  if (has_mar_sample) {
    c.name = "naive-bayes";
    c.reason = "naive-bayes, because a missing-at-random sample is named (mar_dataset)";
    return c;
  }
  c.name = "popularity";
  c.params["count"] = "events";
  c.reason =
      "popularity of observed events (P(rated) per item), because no logged "
      "propensities and no missing-at-random sample were given";
  c.warning =
      "propensity from observation counts only: it cannot see selection that depends "
      "on the rating itself; name a missing-at-random sample (mar_dataset) for "
      "naive-bayes propensities";
  return c;
}

absl::Status CheckNotDegenerate(const model::Model& model, const data::DatasetView& view,
                                const std::string& knobs, nlohmann::json* diagnostics,
                                bool scores_are_logits) {
  const size_t n = view.num_events();
  if (model.num_users() == 0 || model.num_items() == 0 || n == 0) return absl::OkStatus();
  constexpr size_t kSample = 4096;
  std::mt19937_64 rng(0x6465676eULL);
  std::vector<double> scores;
  scores.reserve(std::min(n, kSample));
  float out = 0;
  for (size_t k = 0; k < std::min(n, kSample); ++k) {
    const size_t e = n <= kSample ? k : std::uniform_int_distribution<size_t>(0, n - 1)(rng);
    const uint32_t u = view.user[e], i = view.item[e];
    if (u >= model.num_users() || i >= model.num_items()) continue;
    model.ScoreItems(u, {&i, 1}, {&out, 1});
    scores.push_back(out);
  }
  if (scores.size() < 2) return absl::OkStatus();
  double mean = 0, max_abs = 0;
  for (double s : scores) {
    mean += s;
    max_abs = std::max(max_abs, std::abs(s));
  }
  mean /= scores.size();
  double var = 0;
  for (double s : scores) var += (s - mean) * (s - mean);
  const double sd = std::sqrt(var / (scores.size() - 1));
  if (diagnostics != nullptr) {
    (*diagnostics)["score_check"] = {{"pairs", scores.size()}, {"std", sd}, {"max_abs", max_abs}};
  }
  if (!std::isfinite(sd) || !std::isfinite(max_abs)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "degenerate: non-finite scores on the training pairs; ", knobs));
  }
  if (sd < 1e-3) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "degenerate: near-constant scores (std %.3g of the logits over %d training pairs): "
        "the model learned nothing; %s",
        sd, scores.size(), knobs));
  }
  if (scores_are_logits && max_abs > kSaturatedLogit) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "degenerate: saturated logits (|logit| up to %.3g over %d training pairs: the "
        "probabilities are exactly 0 or 1); %s",
        max_abs, scores.size(), knobs));
  }
  return absl::OkStatus();
}

}  // namespace debias::train
