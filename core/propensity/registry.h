// The registry of propensity estimators, one row per name.
//
// Callers (trainers, the server's GetPropensities, the CLI) fit an estimator
// by name with string parameters. Each row reads its keys through a
// util::ParamReader (default, range and doc per key; that is its schema,
// EstimatorParams) and refuses unknown ones with INVALID_ARGUMENT listing
// the known keys.
// Names: "popularity", "naive-bayes", "logistic", "logged", "impressions".
#ifndef DEBIAS_CORE_PROPENSITY_REGISTRY_H_
#define DEBIAS_CORE_PROPENSITY_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/propensity/estimator.h"
#include "core/propensity/estimators.h"
#include "core/util/params.h"

namespace debias::propensity {

// Everything an estimator may need besides the training view. Pointers are
// borrowed for the duration of the Fit call only.
struct FitContext {
  LabelRule rule;                          // binarises training labels
  uint64_t seed = 0;
  const data::DatasetView* mar = nullptr;  // MAR sample (naive-bayes)
  LabelRule mar_rule;                      // binarises the MAR labels
  const SideFeatures* user_features = nullptr;  // logistic
  const SideFeatures* item_features = nullptr;  // logistic
};

// Reads the row's parameters from `params` (all of them, before looking at
// the data), calls params.Finish(), then fits.
using FitFn = std::function<absl::StatusOr<std::unique_ptr<Estimator>>(
    const data::DatasetView& train, util::ParamReader& params, const FitContext& ctx)>;

struct EstimatorInfo {
  std::string_view name;
  std::string_view description;  // one line, with the paper
  FitFn fit;
};

// All estimators, in display order.
const std::vector<EstimatorInfo>& Estimators();

// Fits estimator `name` with `params` (keys of that row only; "clip" is
// accepted by every row and wraps the result in Clip()). NOT_FOUND listing
// the known names for an unknown name; INVALID_ARGUMENT naming the key for a
// bad or unknown parameter.
absl::StatusOr<std::unique_ptr<Estimator>> FitEstimator(
    std::string_view name, const data::DatasetView& train,
    const std::map<std::string, std::string>& params, const FitContext& ctx);

// The parameters estimator `name` reads (clip first), with their defaults,
// ranges and docs; empty for an unknown name.
std::vector<util::ParamSpec> EstimatorParams(std::string_view name);

}  // namespace debias::propensity

#endif  // DEBIAS_CORE_PROPENSITY_REGISTRY_H_
