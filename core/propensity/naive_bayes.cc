// naive-Bayes estimator, see estimators.h.
#include <algorithm>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/propensity/estimators.h"

namespace debias::propensity {
namespace {

class NaiveBayes final : public Estimator {
 public:
  NaiveBayes(double p1, double p0, double po, nlohmann::json info)
      : p1_(p1), p0_(p0), po_(po), info_(std::move(info)) {}
  std::string_view name() const override { return "naive-bayes"; }
  float Pair(uint32_t, uint32_t, int label) const override {
    if (label == 1) return p1_;
    if (label == 0) return p0_;
    return po_;
  }
  nlohmann::json Describe() const override { return info_; }

 private:
  float p1_, p0_, po_;
  nlohmann::json info_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Estimator>> FitNaiveBayes(
    const data::DatasetView& train, const LabelRule& rule,
    const NaiveBayesOptions& opts) {
  if (!(opts.mar_fraction > 0 && opts.mar_fraction <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mar_fraction=", opts.mar_fraction, ": mar_fraction must be in (0, 1]"));
  }
  double py1;
  uint64_t mar_used = 0;
  if (opts.p_y1) {
    py1 = *opts.p_y1;
    if (!(py1 > 0 && py1 < 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("p_y1=", py1, ": p_y1 must be in (0, 1)"));
    }
  } else {
    if (opts.mar == nullptr || opts.mar->num_events() == 0) {
      return absl::InvalidArgumentError(
          "naive-bayes needs P(y=1): give p_y1 in (0, 1) or a non-empty MAR sample");
    }
    // A random slice of the MAR sample (the reference's 5 % of test).
    std::vector<size_t> idx(opts.mar->num_events());
    std::iota(idx.begin(), idx.end(), 0);
    std::mt19937_64 rng(opts.seed);
    std::shuffle(idx.begin(), idx.end(), rng);
    mar_used = std::max<uint64_t>(
        1, static_cast<uint64_t>(opts.mar_fraction * idx.size() + 0.5));
    mar_used = std::min<uint64_t>(mar_used, idx.size());
    uint64_t pos = 0;
    for (uint64_t k = 0; k < mar_used; ++k) {
      pos += opts.mar_rule.Binary(opts.mar->label[idx[k]]);
    }
    py1 = static_cast<double>(pos) / mar_used;
    if (!(py1 > 0 && py1 < 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "naive-bayes: the MAR slice of ", mar_used, " events has P(y=1)=", py1,
          "; it must be in (0, 1) (use a larger mar_fraction or give p_y1)"));
    }
  }
  const double n = train.num_events();
  const double grid =
      static_cast<double>(train.num_users()) * static_cast<double>(train.num_items());
  if (n == 0 || grid == 0) {
    return absl::FailedPreconditionError("naive-bayes: empty training view");
  }
  double pos = 0;
  for (float l : train.label) pos += rule.Binary(l);
  const double po = std::min(1.0, n / grid);
  const double py1_o = pos / n;
  if (py1_o <= 0 || py1_o >= 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "naive-bayes: the training labels have P(y=1|o=1)=", py1_o,
        "; explicit feedback with both labels is needed (check threshold)"));
  }
  const double p1 = std::min(1.0, py1_o * po / py1);
  const double p0 = std::min(1.0, (1 - py1_o) * po / (1 - py1));
  nlohmann::json info = {{"p_o1", po},         {"p_y1_given_o1", py1_o},
                         {"p_y1", py1},        {"p_o1_given_y1", p1},
                         {"p_o1_given_y0", p0}, {"mar_events_used", mar_used}};
  return std::unique_ptr<Estimator>(new NaiveBayes(p1, p0, po, std::move(info)));
}

}  // namespace debias::propensity
