// Propensity estimators: P(observed | user, item) for any (user, item) pair.
//
// "Observed" means "rated" for explicit MNAR feedback and "exposed" for
// implicit feedback. An estimator is fitted on a DatasetView (ids are that
// view's dense ids) and then answers queries for any pair, observed or not.
// Some estimators also look at the pair's binarised label (naive Bayes) or at
// the event itself (logged propensities), hence the two query methods.
//
// Every value returned is finite and in (0, 1]. Out-of-range ids never crash:
// they get the estimator's fallback (its floor or its marginal).
// Thread safety: estimators are immutable after fitting; all const methods
// may be called from any number of threads at once.
#ifndef DEBIAS_CORE_PROPENSITY_ESTIMATOR_H_
#define DEBIAS_CORE_PROPENSITY_ESTIMATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/data/dataset_view.h"
#include "nlohmann/json.hpp"

namespace debias::propensity {

// Label argument of Pair()/Event() when the pair's label is not known
// (e.g. an unlabeled pair in implicit feedback).
inline constexpr int kUnknownLabel = -1;

// How event labels are binarised: positive iff label >= threshold when a
// threshold is given, else iff label > 0 (implicit clicks).
struct LabelRule {
  std::optional<double> threshold;
  bool IsPositive(float label) const {
    return threshold ? label >= *threshold : label > 0.0f;
  }
  int Binary(float label) const { return IsPositive(label) ? 1 : 0; }
};

class Estimator {
 public:
  virtual ~Estimator() = default;

  // Registry name, e.g. "popularity", "clipped(popularity)".
  virtual std::string_view name() const = 0;

  // P(observed | user, item, label) in (0, 1]. `label` is 1/0 when known,
  // kUnknownLabel otherwise (label-dependent estimators then return their
  // marginal over labels).
  virtual float Pair(uint32_t user, uint32_t item,
                     int label = kUnknownLabel) const = 0;

  // Propensity of event `e` of `view` (a view in the fitted id space, e.g.
  // the training view or a subset of it). Defaults to Pair(); the logged
  // estimator returns the propensity recorded with the event.
  virtual float Event(const data::DatasetView& view, size_t e,
                      int label) const {
    return Pair(view.user[e], view.item[e], label);
  }

  // Clipping level M when this is a clipping wrapper (see clipping.h).
  virtual std::optional<double> clip() const { return std::nullopt; }
  // The estimator before clipping (itself for unclipped estimators).
  virtual const Estimator& unclipped() const { return *this; }

  // Estimator-specific fitted values (parameters, counts, marginals).
  virtual nlohmann::json Describe() const = 0;
};

// Diagnostics of the propensities of the events of `view` (normally the
// training events): min / quantiles (p01 p05 p25 p50 p75 p95 p99) / max / mean
// of the propensities and of the inverse weights 1/p, the effective sample
// size (sum w)^2 / sum w^2 and its fraction of the events, the number and
// fraction of events whose unclipped propensity is below the clip level, and
// est.Describe() under "estimator". Thread-safe.
nlohmann::json Diagnostics(const Estimator& est, const data::DatasetView& view,
                           const LabelRule& rule);

// Same summary over a plain list of propensities (no clipping information).
nlohmann::json SummarizePropensities(std::span<const float> p);

// Per-event propensities of `view` via est.Event(), labels binarised by rule.
std::vector<float> EventPropensities(const Estimator& est,
                                     const data::DatasetView& view,
                                     const LabelRule& rule);

}  // namespace debias::propensity

#endif  // DEBIAS_CORE_PROPENSITY_ESTIMATOR_H_
