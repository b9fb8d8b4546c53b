// popularity estimator, see estimators.h.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/propensity/estimators.h"

namespace debias::propensity {
namespace {

class Popularity final : public Estimator {
 public:
  Popularity(std::vector<float> p, float floor, double eta, double max_count,
             uint64_t zero_items)
      : p_(std::move(p)), floor_(floor), eta_(eta), max_count_(max_count),
        zero_items_(zero_items) {}
  std::string_view name() const override { return "popularity"; }
  float Pair(uint32_t, uint32_t item, int) const override {
    return item < p_.size() ? p_[item] : floor_;
  }
  nlohmann::json Describe() const override {
    return {{"eta", eta_}, {"floor", floor_}, {"max_count", max_count_},
            {"items_at_floor", zero_items_}, {"items", p_.size()}};
  }

 private:
  std::vector<float> p_;
  float floor_;
  double eta_;
  double max_count_;
  uint64_t zero_items_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Estimator>> FitPopularity(
    const data::DatasetView& train, const LabelRule& rule,
    const PopularityOptions& opts) {
  if (!(opts.eta > 0 && opts.eta <= 10)) {
    return absl::InvalidArgumentError(
        absl::StrCat("eta=", opts.eta, ": eta must be in (0, 10]"));
  }
  if (opts.floor && !(*opts.floor > 0 && *opts.floor <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("floor=", *opts.floor, ": floor must be in (0, 1]"));
  }
  // Positives count with their label when it is a click rate in (0, 1]
  // (C clicks over K exposure opportunities), else as 1.
  std::vector<double> n(train.num_items(), 0);
  for (size_t e = 0; e < train.num_events(); ++e) {
    if (train.item[e] >= n.size()) continue;
    if (opts.count_all_events) {
      n[train.item[e]] += 1;
    } else if (rule.IsPositive(train.label[e])) {
      const float l = train.label[e];
      n[train.item[e]] += !rule.threshold && l > 0 && l < 1 ? l : 1.0;
    }
  }
  double max_n = n.empty() ? 0 : *std::max_element(n.begin(), n.end());
  if (max_n == 0) {
    return absl::FailedPreconditionError(
        "popularity: no counted events (no positive labels) in the training view");
  }
  float floor = opts.floor ? static_cast<float>(*opts.floor)
                           : static_cast<float>(std::pow(0.5 / max_n, opts.eta));
  std::vector<float> p(n.size());
  uint64_t zero = 0;
  for (size_t i = 0; i < n.size(); ++i) {
    if (n[i] == 0) {
      p[i] = floor;
      ++zero;
    } else {
      p[i] = static_cast<float>(
          std::pow(static_cast<double>(n[i]) / max_n, opts.eta));
      p[i] = std::max(p[i], floor);
    }
  }
  return std::unique_ptr<Estimator>(
      new Popularity(std::move(p), floor, opts.eta, max_n, zero));
}

}  // namespace debias::propensity
