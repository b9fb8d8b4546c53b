// The concrete propensity estimators (see estimator.h for the contract) and
// the clipping wrapper. Most callers pick them by name through registry.h;
// these typed entry points are for code and tests that want the options
// struct directly.
#ifndef DEBIAS_CORE_PROPENSITY_ESTIMATORS_H_
#define DEBIAS_CORE_PROPENSITY_ESTIMATORS_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/propensity/estimator.h"

namespace debias::propensity {

// popularity: p_i = (n_i / max_j n_j)^eta, n_i = number of positive events
// of item i (Rel-MF, Saito et al. WSDM 2020; dense per-item array, so items
// are never misaligned). Items with n_i = 0 get the floor; the default floor
// is the value of half an event, (0.5 / max_j n_j)^eta, so it is never 0.
// count_all_events counts every event instead of positives only (P(rated) for
// explicit feedback).
struct PopularityOptions {
  double eta = 0.5;                   // in (0, 10]
  std::optional<double> floor;        // in (0, 1]; default: half an event
  bool count_all_events = false;
};
// FAILED_PRECONDITION when no event counts (no positives); INVALID_ARGUMENT
// for options out of range.
absl::StatusOr<std::unique_ptr<Estimator>> FitPopularity(
    const data::DatasetView& train, const LabelRule& rule,
    const PopularityOptions& opts);

// naive-bayes (Schnabel et al. ICML 2016; the kernel-balancing code's
// _compute_IPS): P(o=1 | y) = P(y | o=1) P(o=1) / P(y), a function of the
// binarised label only.
//   P(o=1)     = |train events| / (num_users * num_items)   (the counts; the
//                reference uses max index products, 289 * 299 on Coat)
//   P(y=1|o=1) = share of positive training events
//   P(y=1)     = given p_y1, or the positive share of a random `mar_fraction`
//                slice of the MAR sample `mar` (the reference's 5 % of the
//                MAR test set), drawn with `seed`.
// For an unknown label the marginal P(o=1) is returned. Values are capped at 1.
struct NaiveBayesOptions {
  std::optional<double> p_y1;               // in (0, 1)
  const data::DatasetView* mar = nullptr;   // used when p_y1 is not given
  LabelRule mar_rule;                       // binarises the MAR labels
  double mar_fraction = 0.05;               // in (0, 1]
  uint64_t seed = 0;
};
// INVALID_ARGUMENT when neither p_y1 nor a non-empty MAR sample is given, or
// when a probability is degenerate (0 or 1).
absl::StatusOr<std::unique_ptr<Estimator>> FitNaiveBayes(
    const data::DatasetView& train, const LabelRule& rule,
    const NaiveBayesOptions& opts);

// impressions: p_i = (users with any event on item i) / num_users, the
// exposure rate of each item, for logs that record impressions (events with
// label 0: shown, not clicked) besides clicks; floored at half a user.
// FAILED_PRECONDITION for an empty view.
absl::StatusOr<std::unique_ptr<Estimator>> FitImpressions(const data::DatasetView& train);

// Side features: one dense row per user (or item), row-major.
struct SideFeatures {
  int dim = 0;
  std::vector<float> values;  // rows x dim
};

// logistic: P(o=1 | u, i) = sigma(b + w_u + w_i + a.x_u + c.x_i), fitted by
// Adam on the log loss of observed pairs (label 1) against `neg_ratio`
// uniformly sampled unobserved pairs per observed pair and epoch (label 0,
// redrawn every epoch, never materialising users x items), with L2 penalty
// l2 * (|w|^2 + |a|^2 + |c|^2)/2. The intercept is corrected for the
// negative subsampling by log(sampled negatives / unobserved pairs) so the
// output estimates the real observation probability. use_ids toggles the
// one-hot id terms; features, when given, add the side-feature terms.
struct LogisticOptions {
  bool use_ids = true;
  const SideFeatures* user_features = nullptr;  // num_users rows or null
  const SideFeatures* item_features = nullptr;  // num_items rows or null
  double l2 = 1e-4;        // in [0, 10]
  double lr = 0.05;        // in (0, 10]
  int epochs = 30;         // in [1, 10000]
  double neg_ratio = 4.0;  // in (0, 1000]
  int batch_size = 1024;   // in [1, 1<<20]
  double min_propensity = 1e-6;  // floor of the output, in (0, 1)
  uint64_t seed = 0;
};
absl::StatusOr<std::unique_ptr<Estimator>> FitLogistic(
    const data::DatasetView& train, const LogisticOptions& opts);

// logged: the propensity the logging policy recorded with each event
// (Interaction::propensity). Event() returns the event's own value when the
// queried view carries one; Pair() returns the mean logged value of that pair
// in the fitted view, else `fallback` (default: the smallest logged value,
// the conservative choice for pairs the logger never showed).
struct LoggedOptions {
  std::optional<double> fallback;  // in (0, 1]
};
// FAILED_PRECONDITION when the view has no logged propensities;
// INVALID_ARGUMENT when a logged value is outside (0, 1] or not finite.
absl::StatusOr<std::unique_ptr<Estimator>> FitLogged(
    const data::DatasetView& train, const LoggedOptions& opts);

// Clipping wrapper: max(p, m). Diagnostics() reports how many training
// events the clip raised. INVALID_ARGUMENT unless m is in (0, 1].
absl::StatusOr<std::unique_ptr<Estimator>> Clip(
    std::unique_ptr<Estimator> inner, double m);

}  // namespace debias::propensity

#endif  // DEBIAS_CORE_PROPENSITY_ESTIMATORS_H_
