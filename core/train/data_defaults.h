// Defaults that come from what the data has (docs/METHODS.md, "Defaults
// from the data"): how labels become positives, which propensity estimator a
// debiased loss uses when the caller names none, and whether a trained model
// can be right at all. Every trainer of the registry calls these, so one
// rule holds for the MF family, kernel balancing and the rest, and each
// model's spec says what was chosen and why.
// Thread safety: pure functions.
#ifndef DEBIAS_CORE_TRAIN_DATA_DEFAULTS_H_
#define DEBIAS_CORE_TRAIN_DATA_DEFAULTS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/model/model.h"
#include "core/propensity/estimator.h"
#include "core/train/train_spec.h"
#include "nlohmann/json.hpp"

namespace debias::train {

// How the labels of `view` become 0/1.
//  - Labels already binary (every label 0 or 1, e.g. ingested with
//    --threshold): used as they are; a threshold given anyway must be in
//    (0, 1] (a no-op), else INVALID_ARGUMENT: the dataset was binarised at
//    ingest and is never re-thresholded.
//  - Ratings (some label outside {0, 1}): `threshold` when given, else the
//    midpoint of the observed scale, (min + max) / 2 (3 on a 1-5 scale, as
//    the kernel-balancing paper binarises Coat).
//  - Implicit feedback: label > 0 is a click unless a threshold is given.
// `source` says which case applied (for the spec).
struct ResolvedLabels {
  propensity::LabelRule rule;
  std::string source;
};
absl::StatusOr<ResolvedLabels> ResolveLabels(const data::DatasetView& view,
                                             FeedbackKind kind,
                                             std::optional<double> threshold);

// The propensity estimator a debiased loss uses when the caller names none
// (spec.propensity empty), in this order:
//  1. every event carries a logged propensity -> "logged";
//  2. implicit feedback with impressions (events with label 0: exposed, not
//     clicked) -> "impressions" (exposure rate of each item);
//  3. a MAR sample is named -> "naive-bayes" (explicit feedback);
//  4. otherwise "popularity": explicit feedback counts observed events
//     (P(rated)); implicit feedback counts clicks, eta = 1, with a warning
//     that click counts mix relevance into exposure.
// `params` are the estimator keys the choice sets (the caller's prop.* keys
// win); `reason` is one sentence for the spec; `warning` is empty or a
// sentence for the result's warnings.
struct PropensityChoice {
  std::string name;
  std::map<std::string, std::string> params;
  std::string reason;
  std::string warning;
};
PropensityChoice ChoosePropensity(const data::DatasetView& view, FeedbackKind kind,
                                  bool has_mar_sample);

// Whether a trained id-based model can be right. Scores a seeded sample of
// up to 4,096 training pairs and refuses (FAILED_PRECONDITION, message
// starting "degenerate: ", naming the cause and the knobs to change):
//  - near-constant scores: standard deviation of the logits below 1e-3;
//  - saturated logits: some |logit| above kSaturatedLogit, where the
//    sigmoid is 0 or 1 to double precision.
// `knobs` is appended to the message (e.g. "lower l2 (now 1e-3)").
// Feature-based rankers (no users/items) pass. The saturation test applies
// only when `scores_are_logits` (pointwise models whose sigmoid is a
// probability: the MF family and kernel balancing); pairwise and
// ranking-only models (bpr, nbpo, ...) may score on any scale.
inline constexpr double kSaturatedLogit = 40.0;
absl::Status CheckNotDegenerate(const model::Model& model, const data::DatasetView& view,
                                const std::string& knobs, nlohmann::json* diagnostics,
                                bool scores_are_logits = true);

}  // namespace debias::train

#endif  // DEBIAS_CORE_TRAIN_DATA_DEFAULTS_H_
