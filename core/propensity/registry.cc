#include "core/propensity/registry.h"

#include <cmath>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/util/status_macros.h"

namespace debias::propensity {
namespace {

using Params = std::map<std::string, std::string>;

absl::Status CheckKeys(std::string_view est, const Params& params,
                       const std::vector<std::string_view>& known) {
  for (const auto& [k, v] : params) {
    bool ok = k == "clip";
    for (std::string_view n : known) ok = ok || k == n;
    if (!ok) {
      std::vector<std::string> names;
      for (std::string_view n : known) names.emplace_back(n);
      names.emplace_back("clip");
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown parameter '", k, "' for propensity estimator '",
          std::string(est), "'; known: ", absl::StrJoin(names, ", ")));
    }
  }
  return absl::OkStatus();
}

const std::string* Find(const Params& p, const char* key) {
  auto it = p.find(key);
  return it == p.end() ? nullptr : &it->second;
}

absl::StatusOr<std::unique_ptr<Estimator>> FitPopularityRow(
    const data::DatasetView& train, const Params& p, const FitContext& ctx) {
  PopularityOptions o;
  if (auto* v = Find(p, "eta")) { ASSIGN_OR_RETURN(o.eta, ParseDouble("eta", *v, 1e-9, 10)); }
  if (auto* v = Find(p, "floor")) { ASSIGN_OR_RETURN(o.floor, ParseDouble("floor", *v, 1e-12, 1)); }
  if (auto* v = Find(p, "count")) {
    if (*v == "events") o.count_all_events = true;
    else if (*v == "positives") o.count_all_events = false;
    else return absl::InvalidArgumentError(absl::StrCat(
        "count=", *v, ": count must be one of positives, events"));
  }
  return FitPopularity(train, ctx.rule, o);
}

absl::StatusOr<std::unique_ptr<Estimator>> FitNaiveBayesRow(
    const data::DatasetView& train, const Params& p, const FitContext& ctx) {
  NaiveBayesOptions o;
  o.mar = ctx.mar;
  o.mar_rule = ctx.mar_rule;
  o.seed = ctx.seed;
  if (auto* v = Find(p, "p_y1")) { ASSIGN_OR_RETURN(o.p_y1, ParseDouble("p_y1", *v, 1e-9, 1 - 1e-9)); }
  if (auto* v = Find(p, "mar_fraction")) {
    ASSIGN_OR_RETURN(o.mar_fraction, ParseDouble("mar_fraction", *v, 1e-9, 1));
  }
  return FitNaiveBayes(train, ctx.rule, o);
}

absl::StatusOr<std::unique_ptr<Estimator>> FitLogisticRow(
    const data::DatasetView& train, const Params& p, const FitContext& ctx) {
  LogisticOptions o;
  o.seed = ctx.seed;
  if (auto* v = Find(p, "l2")) { ASSIGN_OR_RETURN(o.l2, ParseDouble("l2", *v, 0, 10)); }
  if (auto* v = Find(p, "lr")) { ASSIGN_OR_RETURN(o.lr, ParseDouble("lr", *v, 1e-9, 10)); }
  if (auto* v = Find(p, "epochs")) { ASSIGN_OR_RETURN(o.epochs, ParseInt("epochs", *v, 1, 10000)); }
  if (auto* v = Find(p, "neg_ratio")) {
    ASSIGN_OR_RETURN(o.neg_ratio, ParseDouble("neg_ratio", *v, 1e-9, 1000));
  }
  if (auto* v = Find(p, "batch_size")) {
    ASSIGN_OR_RETURN(o.batch_size, ParseInt("batch_size", *v, 1, 1 << 20));
  }
  std::string features = "ids";
  if (auto* v = Find(p, "features")) features = *v;
  if (features == "ids") {
    o.use_ids = true;
  } else if (features == "side" || features == "both") {
    if (ctx.user_features == nullptr && ctx.item_features == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "features=", features, ": no user or item side features were given"));
    }
    o.use_ids = features == "both";
    o.user_features = ctx.user_features;
    o.item_features = ctx.item_features;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "features=", features, ": features must be one of ids, side, both"));
  }
  return FitLogistic(train, o);
}

absl::StatusOr<std::unique_ptr<Estimator>> FitLoggedRow(
    const data::DatasetView& train, const Params& p, const FitContext&) {
  LoggedOptions o;
  if (auto* v = Find(p, "fallback")) {
    ASSIGN_OR_RETURN(o.fallback, ParseDouble("fallback", *v, 1e-12, 1));
  }
  return FitLogged(train, o);
}

}  // namespace

absl::StatusOr<double> ParseDouble(const std::string& key,
                                   const std::string& value, double lo,
                                   double hi) {
  char* end = nullptr;
  double d = std::strtod(value.c_str(), &end);
  if (value.empty() || end == nullptr || *end != '\0' || !std::isfinite(d)) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, "=", value, ": ", key, " must be a number in [", lo,
                     ", ", hi, "]"));
  }
  if (d < lo || d > hi) {
    return absl::InvalidArgumentError(absl::StrCat(
        key, "=", value, ": ", key, " must be in [", lo, ", ", hi, "]"));
  }
  return d;
}

absl::StatusOr<int64_t> ParseInt(const std::string& key,
                                 const std::string& value, int64_t lo,
                                 int64_t hi) {
  char* end = nullptr;
  errno = 0;
  long long d = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || end == nullptr || *end != '\0' || errno != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        key, "=", value, ": ", key, " must be an integer in [", lo, ", ", hi, "]"));
  }
  if (d < lo || d > hi) {
    return absl::InvalidArgumentError(absl::StrCat(
        key, "=", value, ": ", key, " must be in [", lo, ", ", hi, "]"));
  }
  return static_cast<int64_t>(d);
}

absl::StatusOr<bool> ParseBool(const std::string& key, const std::string& value) {
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  return absl::InvalidArgumentError(
      absl::StrCat(key, "=", value, ": ", key, " must be true or false"));
}

const std::vector<EstimatorInfo>& Estimators() {
  static const auto* rows = new std::vector<EstimatorInfo>{
      {"popularity",
       "(n_i / max n)^eta over positive counts (Saito et al., WSDM 2020)",
       {"eta", "floor", "count"}, &FitPopularityRow},
      {"naive-bayes",
       "P(o|y) = P(y|o)P(o)/P(y) with a MAR sample (Schnabel et al., ICML 2016)",
       {"p_y1", "mar_fraction"}, &FitNaiveBayesRow},
      {"logistic",
       "L2 logistic regression of observed vs sampled unobserved pairs on ids "
       "and/or side features",
       {"l2", "lr", "epochs", "neg_ratio", "batch_size", "features"},
       &FitLogisticRow},
      {"logged", "the propensity recorded by the logging policy with each event",
       {"fallback"}, &FitLoggedRow},
      {"impressions",
       "exposure rate of each item, (users shown it) / users, from a log with impressions",
       {}, [](const data::DatasetView& train, const Params&, const FitContext&) {
         return FitImpressions(train);
       }},
  };
  return *rows;
}

absl::StatusOr<std::unique_ptr<Estimator>> FitEstimator(
    std::string_view name, const data::DatasetView& train,
    const std::map<std::string, std::string>& params, const FitContext& ctx) {
  for (const EstimatorInfo& row : Estimators()) {
    if (row.name != name) continue;
    RETURN_IF_ERROR(CheckKeys(name, params, row.params));
    std::optional<double> clip;
    Params inner = params;
    if (auto it = inner.find("clip"); it != inner.end()) {
      ASSIGN_OR_RETURN(clip, ParseDouble("clip", it->second, 1e-12, 1));
      inner.erase(it);
    }
    ASSIGN_OR_RETURN(auto est, row.fit(train, inner, ctx));
    if (clip) return Clip(std::move(est), *clip);
    return est;
  }
  std::vector<std::string> names;
  for (const EstimatorInfo& row : Estimators()) names.emplace_back(row.name);
  return absl::NotFoundError(absl::StrCat("propensity estimator '", std::string(name),
                                          "' is not known; known: ",
                                          absl::StrJoin(names, ", ")));
}

}  // namespace debias::propensity
