#include "core/propensity/registry.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/util/status_macros.h"

namespace debias::propensity {
namespace {

using util::ParamReader;
using util::Range;

absl::StatusOr<std::unique_ptr<Estimator>> FitPopularityRow(
    const data::DatasetView& train, ParamReader& p, const FitContext& ctx) {
  PopularityOptions o;
  ASSIGN_OR_RETURN(o.eta, p.Double("eta", o.eta, {1e-9, 10},
                                   "exponent of the item's relative count (n_i / max n)^eta"));
  ASSIGN_OR_RETURN(o.floor, p.OptionalDouble("floor", {1e-12, 1}, "half an event",
                                             "lowest propensity (default: that of an item "
                                             "with half an event)"));
  ASSIGN_OR_RETURN(std::string count,
                   p.Choice("count", o.count_all_events ? "events" : "positives",
                            {"positives", "events"},
                            "what n_i counts: positive events, or every event (exposure "
                            "logs with negatives)"));
  o.count_all_events = count == "events";
  RETURN_IF_ERROR(p.Finish());
  return FitPopularity(train, ctx.rule, o);
}

absl::StatusOr<std::unique_ptr<Estimator>> FitNaiveBayesRow(
    const data::DatasetView& train, ParamReader& p, const FitContext& ctx) {
  NaiveBayesOptions o;
  o.mar = ctx.mar;
  o.mar_rule = ctx.mar_rule;
  o.seed = ctx.seed;
  ASSIGN_OR_RETURN(o.p_y1, p.OptionalDouble("p_y1", {1e-9, 1 - 1e-9}, "from the MAR sample",
                                            "P(y = 1) under uniform exposure; "
                                            "given, no MAR sample is needed"));
  ASSIGN_OR_RETURN(o.mar_fraction,
                   p.Double("mar_fraction", o.mar_fraction, {1e-9, 1},
                            "share of the MAR sample used to estimate P(y = 1)"));
  RETURN_IF_ERROR(p.Finish());
  return FitNaiveBayes(train, ctx.rule, o);
}

absl::StatusOr<std::unique_ptr<Estimator>> FitLogisticRow(
    const data::DatasetView& train, ParamReader& p, const FitContext& ctx) {
  LogisticOptions o;
  o.seed = ctx.seed;
  ASSIGN_OR_RETURN(o.l2, p.Double("l2", o.l2, {0, 10}, "L2 penalty"));
  ASSIGN_OR_RETURN(o.lr, p.Double("lr", o.lr, {1e-9, 10}, "learning rate"));
  ASSIGN_OR_RETURN(o.epochs, p.Int("epochs", o.epochs, 1, 10000, "passes over the data"));
  ASSIGN_OR_RETURN(o.neg_ratio, p.Double("neg_ratio", o.neg_ratio, {1e-9, 1000},
                                         "unobserved pairs sampled per observed pair"));
  ASSIGN_OR_RETURN(o.batch_size,
                   p.Int("batch_size", o.batch_size, 1, 1 << 20, "pairs per gradient step"));
  ASSIGN_OR_RETURN(std::string features,
                   p.Choice("features", "ids", {"ids", "side", "both"},
                            "what the regression sees: user and item ids, the side "
                            "features, or both"));
  RETURN_IF_ERROR(p.Finish());
  if (features == "ids") {
    o.use_ids = true;
  } else {
    if (ctx.user_features == nullptr && ctx.item_features == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "features=", features, ": no user or item side features were given"));
    }
    o.use_ids = features == "both";
    o.user_features = ctx.user_features;
    o.item_features = ctx.item_features;
  }
  return FitLogistic(train, o);
}

absl::StatusOr<std::unique_ptr<Estimator>> FitLoggedRow(
    const data::DatasetView& train, ParamReader& p, const FitContext&) {
  LoggedOptions o;
  ASSIGN_OR_RETURN(o.fallback, p.OptionalDouble("fallback", {1e-12, 1}, "none (refuse)",
                                                "propensity of events logged without one"));
  RETURN_IF_ERROR(p.Finish());
  return FitLogged(train, o);
}

absl::StatusOr<std::unique_ptr<Estimator>> FitImpressionsRow(
    const data::DatasetView& train, ParamReader& p, const FitContext&) {
  RETURN_IF_ERROR(p.Finish());
  return FitImpressions(train);
}

}  // namespace

const std::vector<EstimatorInfo>& Estimators() {
  static const auto* rows = new std::vector<EstimatorInfo>{
      {"popularity",
       "(n_i / max n)^eta over positive counts (Saito et al., WSDM 2020)",
       &FitPopularityRow},
      {"naive-bayes",
       "P(o|y) = P(y|o)P(o)/P(y) with a MAR sample (Schnabel et al., ICML 2016)",
       &FitNaiveBayesRow},
      {"logistic",
       "L2 logistic regression of observed vs sampled unobserved pairs on ids "
       "and/or side features",
       &FitLogisticRow},
      {"logged", "the propensity recorded by the logging policy with each event",
       &FitLoggedRow},
      {"impressions",
       "exposure rate of each item, (users shown it) / users, from a log with impressions",
       &FitImpressionsRow},
  };
  return *rows;
}

absl::StatusOr<std::unique_ptr<Estimator>> FitEstimator(
    std::string_view name, const data::DatasetView& train,
    const std::map<std::string, std::string>& params, const FitContext& ctx) {
  for (const EstimatorInfo& row : Estimators()) {
    if (row.name != name) continue;
    ParamReader p(params, std::string(name), "propensity estimator");
    ASSIGN_OR_RETURN(std::optional<double> clip,
                     p.OptionalDouble("clip", {1e-12, 1}, "none",
                                      "every propensity below it is raised to it (Clip)"));
    ASSIGN_OR_RETURN(auto est, row.fit(train, p, ctx));
    if (clip) return Clip(std::move(est), *clip);
    return est;
  }
  std::vector<std::string> names;
  for (const EstimatorInfo& row : Estimators()) names.emplace_back(row.name);
  return absl::NotFoundError(absl::StrCat("propensity estimator '", std::string(name),
                                          "' is not known; known: ",
                                          absl::StrJoin(names, ", ")));
}

std::vector<util::ParamSpec> EstimatorParams(std::string_view name) {
  static const data::DatasetView* const kEmpty = [] {
    auto v = data::DatasetViewBuilder().Finish({}, {}, {}, 0);
    return new data::DatasetView(std::move(*v));
  }();
  std::vector<util::ParamSpec> out;
  {
    util::ParamSchemaCapture capture(&out);
    // Every row reads all its keys before it looks at the data, so the dry
    // run on an empty view records them all; its fit error is ignored.
    FitEstimator(name, *kEmpty, {}, FitContext{}).IgnoreError();
  }
  return out;
}

}  // namespace debias::propensity
